// Behaviour every migratable device must show, checked the same way on the mock and on a real
// kernel (the guest harness names real devices through the environment; see ConformanceTarget).
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices

/// Saves `driver`'s device into memory and leaves it RUNNING.
private func capture(_ driver: MigrationDriver, preCopy: Bool = true) throws -> MemoryCapture {
    let memory = MemoryCapture(deviceCount: 1)
    let session = try SaveSession(drivers: [driver], options: SaveOptions(chunkSize: 64 << 10, preCopy: preCopy))
    try session.run(into: memory, policy: PendingBytesPolicy(maxRounds: 4), leaving: .running)
    return memory
}

@Suite(.serialized) struct MigrationConformanceTests {
    @Test(arguments: Targets.migratable)
    func reportsDefinedFlagsAndStartsRunning(target: MigrationTarget) throws {
        let (_, source, _) = try target.open()
        let driver = try MigrationDriver(device: source)
        #expect(driver.flags.isDefinedCombination, "\(driver.flags)")
        #expect(try driver.refreshState() == .running)
    }

    /// Every (from, to) pair the device's flags allow: the kernel reaches `to`, and a data fd
    /// exists exactly in the saving and resuming states.
    @Test(arguments: Targets.migratable)
    func everyLegalPairReachesItsTarget(target: MigrationTarget) throws {
        let (_, source, _) = try target.open()
        let driver = try MigrationDriver(device: source)
        let saved = try capture(driver, preCopy: false)
        let states = MigrationState.allCases.filter { $0 != .error && $0.isSupported(by: driver.flags) }
        var pairs = 0
        for from in states {
            for to in states where (try? TransitionTable.check(from: from, to: to, flags: driver.flags)) != nil {
                try driver.resetDevice()
                try driver.transition(to: from)
                if from == .resuming {
                    // Leaving RESUMING validates; give the device a complete state of its own.
                    for chunk in saved.chunks {
                        let buffer = IOBuffer(capacity: max(1, chunk.bytes.count))
                        buffer.write(chunk.bytes, at: 0)
                        try driver.writeResumeData(from: buffer, range: 0..<chunk.bytes.count)
                    }
                }
                try driver.transition(to: to)
                #expect(try driver.refreshState() == to, "\(from) -> \(to)")
                #expect(driver.hasSession == (to.isSaving || to == .resuming), "\(from) -> \(to): data fd")
                pairs += 1
            }
        }
        try driver.resetDevice()
        #expect(pairs > 0)
    }

    @Test(arguments: Targets.migratable)
    func kernelRefusesImpossibleRequests(target: MigrationTarget) throws {
        let (_, source, _) = try target.open()
        let driver = try MigrationDriver(device: source)
        // Raw SETs, bypassing the engine's own validation: the kernel must say EINVAL.
        #expect(throws: VFIOError.self) { _ = try source.setState(.error) }
        for state in MigrationState.allCases where state != .error && !state.isSupported(by: driver.flags) {
            do {
                _ = try source.setState(state)
                Issue.record("\(state) accepted by a device with flags \(driver.flags)")
            } catch {
                #expect(error.errno == .invalidArgument, "\(state): \(error)")
            }
        }
        #expect(try driver.refreshState() == .running)
    }

    @Test(arguments: Targets.migratable)
    func stopCopyReadsToEndAndTheFdDiesWithTheSession(target: MigrationTarget) throws {
        let (_, source, _) = try target.open()
        _ = try source.setState(.stop)
        guard let session = try source.setState(.stopCopy) else {
            Issue.record("STOP -> STOP_COPY returned no data fd")
            return
        }
        let channel = session.io
        let buffer = IOBuffer(capacity: 64 << 10)
        var total = 0
        reading: while true {
            switch try channel.read(into: buffer, range: 0..<buffer.capacity, phase: .stopCopy) {
            case .bytes(let n): total += n
            case .endOfStream: break reading
            case .noDataNow, .wouldBlock: Issue.record("STOP_COPY must end with read() == 0")
                break reading
            }
        }
        #expect(total > 0)
        #expect(try source.setState(.stop) == nil, "STOP_COPY -> STOP opens no session")
        do {
            _ = try channel.read(into: buffer, range: 0..<buffer.capacity, phase: .stopCopy)
            Issue.record("read after STOP_COPY -> STOP must fail")
        } catch {
            #expect(error.code == .sessionEnded, "\(error)")
        }
        session.close()
        try source.reset()
    }

    @Test(arguments: Targets.migratable.filter { !$0.isMock || $0.description.contains("pre-copy") })
    func preCopyReportsAndDrainsInitialBytes(target: MigrationTarget) throws {
        let (_, source, _) = try target.open()
        let driver = try MigrationDriver(device: source)
        guard driver.flags.contains(.preCopy) else { return } // kernels before 6.2
        try driver.transition(to: .preCopy)
        let first = try driver.preCopyInfo()
        #expect(first.initialBytes > 0)
        let buffer = IOBuffer(capacity: 64 << 10)
        var read = 0
        draining: while true {
            switch try driver.readSaveData(into: buffer, range: 0..<buffer.capacity) {
            case .bytes(let n): read += n
            case .noDataNow: break draining
            case .endOfStream: Issue.record("PRE_COPY never ends the stream")
                break draining
            case .wouldBlock: continue
            }
        }
        #expect(read > 0)
        #expect(try driver.preCopyInfo().initialBytes == 0)
        try driver.transition(to: .stopCopy)
        do {
            _ = try driver.preCopyInfo()
            Issue.record("PRECOPY_INFO outside PRE_COPY must fail")
        } catch {
            #expect(error.errno == .invalidArgument, "\(error)")
        }
        try driver.resetDevice()
    }

    @Test(arguments: Targets.migratable)
    func saveResetLoadRestoresTheState(target: MigrationTarget) throws {
        let (_, source, destination) = try target.open()
        try target.dirtySourceState(source)
        let saved = try capture(try MigrationDriver(device: source))
        #expect(saved.isComplete)
        if source === destination { try source.reset() }
        let targetDriver = try MigrationDriver(device: destination)
        try LoadSession(drivers: [targetDriver]).run(from: saved, leaving: .running)
        #expect(try target.sameState(source, destination))
        #expect(try targetDriver.refreshState() == .running)
    }

    @Test(arguments: Targets.migratable.filter { if case .hardware = $0.kind { false } else { true } })
    func alteredStateIsRefusedAndTheTargetReset(target: MigrationTarget) throws {
        let (_, source, destination) = try target.open()
        let saved = try capture(try MigrationDriver(device: source), preCopy: false)
        var bytes = saved.bytes(of: 0)
        bytes[bytes.count / 2] ^= 0x5A
        saved.replaceBytes(of: 0, with: bytes)
        let driver = try MigrationDriver(device: destination)
        do {
            try LoadSession(drivers: [driver]).run(from: saved, leaving: .running)
            Issue.record("an altered stream was accepted")
        } catch {
            #expect(error.outcomes.map(\.recovery) == [.reset], "\(error)")
            #expect(error.outcomes.allSatisfy { $0.isRunning }, "\(error)")
        }
        #expect(try driver.refreshState() == .running)
    }

    @Test(arguments: Targets.migratable.filter { if case .hardware = $0.kind { false } else { true } })
    func foreignStateIsRefused(target: MigrationTarget) throws {
        let (_, _, destination) = try target.open()
        // Another kind of device's state: a mock device with a different compatibility id.
        let other = DeviceEnvironment.withMockDevices()
        let foreign = try other.open("mock:foreign?compat=other-vendor-9&state=64KiB")
        let saved = try capture(try MigrationDriver(device: foreign), preCopy: false)
        let driver = try MigrationDriver(device: destination)
        #expect(throws: VFIOError.self) { try LoadSession(drivers: [driver]).run(from: saved, leaving: .running) }
        #expect(try driver.refreshState() == .running)
    }
}
