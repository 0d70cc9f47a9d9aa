// The raw baselines move exactly the device's bytes and leave every device RUNNING; the memory
// stream and the pipe sink give back what was written; the sampler sees the counters move.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices

@Suite struct BenchBaselineTests {
    private func fast(_ env: DeviceEnvironment, _ name: String, _ size: Int, p2p: Bool = false) throws -> VFIODevice {
        try env.open("mock:\(name)?state=\(size)&source=fast&flags=stop-copy\(p2p ? ",p2p" : "")")
    }

    @Test func theRawCopyIsTheDevicesOwnStreamAndLoadsIntoATarget() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try fast(env, "s", 3 << 20)
        let target = try fast(env, "t", 3 << 20)
        let memory = MemoryStream(segmentSize: 1 << 20)
        let saved = try RawCopy.save(source, into: memory, chunkSize: 256 << 10)
        #expect(saved == memory.length)
        #expect(saved >= 3 << 20, "the device's stream holds its 3 MiB of state")
        #expect(try source.currentState() == .running)
        memory.rewindForReading()
        #expect(try RawCopy.load(target, from: memory, chunkSize: 64 << 10) == saved)
        #expect(try target.currentState() == .running)
    }

    @Test func aCorruptRawStreamFailsTheLoadAndTheTargetEndsRunning() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try fast(env, "s", 1 << 20)
        let target = try fast(env, "t", 1 << 20)
        let memory = MemoryStream()
        let saved = try RawCopy.save(source, into: memory, chunkSize: 1 << 20)
        // Every byte but the middle one, then a wrong one: the fast target checks each byte.
        memory.rewindForReading()
        let all = IOBuffer(capacity: Int(saved))
        #expect(try memory.read(into: all, 0..<Int(saved)) == Int(saved))
        all[Int(saved) / 2] ^= 0xFF
        let corrupt = MemoryStream()
        try corrupt.write(all, 0..<Int(saved))
        #expect(throws: VFIOError.self) { try RawCopy.load(target, from: corrupt, chunkSize: 1 << 20) }
        #expect(try target.currentState() == .running)
    }

    @Test func theMemoryStreamReadsBackWhatWasWrittenAcrossSegments() throws {
        let stream = MemoryStream(segmentSize: 4096)
        let buffer = IOBuffer(capacity: 10_000)
        BenchBytes.fill(buffer, 0..<10_000, seed: 3)
        try stream.write(buffer, 0..<3000)
        try stream.write(buffer, 3000..<10_000)
        let back = IOBuffer(capacity: 10_000)
        var got = 0
        while true {
            let n = try stream.read(into: back, got..<min(10_000, got + 1500))
            if n == 0 { break }
            got += n
        }
        #expect(got == 10_000)
        #expect(back.bytes(0..<10_000) == buffer.bytes(0..<10_000))
        stream.rewind()
        #expect(stream.length == 0)
        #expect(try stream.read(into: back, 0..<100) == 0)
    }

    @Test func aPipeSinkDrainsEveryByte() throws {
        let pipe = try PipeSink(size: 64 << 10)
        let buffer = IOBuffer(capacity: 1 << 20)
        for _ in 0..<5 { try pipe.write(buffer, 0..<(1 << 20)) }
        #expect(try pipe.finish() == 5 << 20)
        #expect(throws: VFIOError.self) { try pipe.write(buffer, 0..<1) }
    }

    @Test func theSamplerSeesEachCounterMove() throws {
        let counters = [ByteCounter(), ByteCounter()]
        let sampler = ThroughputSampler(counters, interval: .milliseconds(2))
        counters[0].add(100)
        Thread.sleep(forTimeInterval: 0.02)
        counters[1].add(7)
        Thread.sleep(forTimeInterval: 0.02)
        let samples = sampler.stop()
        #expect(samples.count >= 3)
        #expect(samples.last?.bytes == [100, 7])
        #expect(zip(samples, samples.dropFirst()).allSatisfy { $0.time <= $1.time && $0.bytes[0] <= $1.bytes[0] })
        #expect(sampler.stop().count == samples.count, "stopping twice returns the same readings")
    }

    @Test func loopbackRunsMoveEveryDevicesStateAndLeaveThemRunning() throws {
        let env = DeviceEnvironment.withMockDevices()
        let sources = try (0..<2).map { try fast(env, "s\($0)", 2 << 20, p2p: true) }
        let targets = try (0..<2).map { try fast(env, "t\($0)", 2 << 20, p2p: true) }
        let raw = try LoopbackRun.raw(sources, into: targets, chunkSize: 1 << 20)
        #expect(raw.bytes >= 4 << 20 && raw.seconds > 0)
        let engine = try LoopbackRun.engine(sources, into: targets, channels: 2, save: SaveOptions(preCopy: false))
        #expect(engine.timing.bytes == engine.send.report.totalBytes)
        #expect(engine.send.pipeline.channels.count == 2)
        for device in sources + targets { #expect(try device.currentState() == .running, "\(device.name)") }
    }
}
