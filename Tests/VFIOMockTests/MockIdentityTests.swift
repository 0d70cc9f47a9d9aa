// What a stream descriptor needs about a mock device (vendorCompatibility) and the way back:
// a fault-free target shaped like a descriptor, which accepts the described device's streams,
// including a stream captured from that device and replayed.
import SystemPackage
import Testing
import VFIOMock
import VFIOStream
import VFIOSyscalls

extension MockDeviceConfiguration {
    /// The descriptor a stream writer records for this device (fault options excluded).
    var descriptor: DeviceDescriptor {
        DeviceDescriptor(
            name: "mock:\(name)", deviceAPI: "vfio-pci", driverName: driverName, driverVersion: driverVersion,
            pci: PCIIdentity(vendorID: vendorID, deviceID: deviceID, subsystemVendorID: subsystemVendorID,
                             subsystemDeviceID: subsystemID, revision: revision, classCode: classCode),
            mdev: mdevType.map { MdevDefinition(type: $0) }, migrationFlags: MigrationFlags(rawValue: UInt64(migrationFlags)),
            expectedStateSize: stateSize, vendorCompatibility: vendorCompatibility)
    }
}

@Suite struct MockIdentityTests {
    @Test func vendorCompatibilityCarriesWhatATargetMustShare() throws {
        #expect(MockDeviceConfiguration(name: "a").vendorCompatibility == "compat=mock-1;block-size=65536;source=generated")
        let c = try MockDeviceConfiguration(spec: "mock:b?compat=acme-v2&block-size=4KiB&source=fast")
        #expect(c.vendorCompatibility == "compat=acme-v2;block-size=4096;source=fast")
    }

    @Test(arguments: [
        "mock:src?state=300KiB&block-size=16KiB&compat=acme&seed=5&flags=stop-copy,pre-copy&vendor=0x8086&revision=0x07&class=0x120000&driver=acme_vf&driver-version=3.2",
        "mock:src?state=100KiB&source=fast&mdev-type=acme-4&flags=stop-copy,p2p",
        "mock:src?state=1&fail-arc=STOP>RUNNING_P2P:EIO&short-read=100&reinit-after=1MiB&precopy-info-v2=no",
    ])
    func aTargetShapedLikeTheDescriptorAcceptsTheDevicesStream(spec: String) throws {
        let source = try MockDeviceConfiguration(spec: spec)
        let shaped = try MockDeviceConfiguration(name: "tgt", shapedLike: source.descriptor)
        #expect(shaped.stateSize == source.stateSize && shaped.blockSize == source.blockSize)
        #expect(shaped.migrationFlags == source.migrationFlags && shaped.compat == source.compat)
        #expect(shaped.stateSource == source.stateSource && shaped.mdevType == source.mdevType)
        #expect(shaped.vendorID == source.vendorID && shaped.revision == source.revision && shaped.classCode == source.classCode)
        #expect(shaped.driverName == source.driverName && shaped.driverVersion == source.driverVersion)
        #expect(shaped.faults.isEmpty && shaped.reinitAfterBytes == nil && shaped.offersPrecopyInfoV2)
        #expect(shaped.descriptor.vendorCompatibility == source.descriptor.vendorCompatibility)
        #expect(compatibility(of: source.descriptor, with: shaped.descriptor).isEmpty)

        var clean = source
        clean.faults = MockFaults()
        let kernel = MockKernel()
        let from = try Opened(clean.spec, kernel: kernel)
        let to = try Opened(shaped.spec, kernel: kernel)
        from.device.mutateState(blocks: 2)
        try to.load(try from.saveStopCopy())
        #expect(to.device.stateDigest == from.device.stateDigest)
        try from.close()
        try to.close()
    }

    @Test func streamsWrittenBeforeTheEncodingCarryABareID() throws {
        var old = try MockDeviceConfiguration(spec: "mock:old?block-size=4KiB&compat=mock-1").descriptor
        old.vendorCompatibility = "mock-1"
        old.name = "mock:old?block-size=4KiB&state=64KiB"
        let shaped = try MockDeviceConfiguration(name: "t", shapedLike: old)
        #expect(shaped.compat == "mock-1" && shaped.blockSize == 4096 && shaped.stateSource == .generated)
        old.name = "0000:3b:00.2"
        #expect(try MockDeviceConfiguration(name: "t", shapedLike: old).blockSize == 64 << 10)
    }

    @Test func aDescriptorNoMockCanMatchIsAnErrorSayingWhy() throws {
        let good = MockDeviceConfiguration(name: "g").descriptor
        var cases: [(DeviceDescriptor, String)] = []
        var d = good; d.deviceAPI = "vfio-ccw"; cases.append((d, "device API vfio-ccw"))
        d = good; d.pci = nil; cases.append((d, "no PCI identity"))
        d = good; d.expectedStateSize = nil; cases.append((d, "no expectedStateSize"))
        d = good; d.migrationFlags = [.preCopy]; cases.append((d, "migration flags"))
        d = good; d.migrationFlags = MigrationFlags(rawValue: 0x11); cases.append((d, "migration flags"))
        d = good; d.vendorCompatibility = "cx7 fw 28.39"; cases.append((d, "vendor compatibility 'cx7 fw 28.39'"))
        d = good; d.vendorCompatibility = "compat=a;block-size=12"; cases.append((d, "not a mock device's"))
        d = good; d.vendorCompatibility = "compat=a;block-size=4096;source=warp"; cases.append((d, "not a mock device's"))
        d = good; d.driverName = "has space"; cases.append((d, "driver name 'has space'"))
        d = good; d.mdev = MdevDefinition(type: "t", attributes: [MdevAttribute(name: "assign_domain", value: "1")])
        cases.append((d, "mdev attributes (assign_domain)"))
        for (descriptor, message) in cases {
            do {
                _ = try MockDeviceConfiguration(name: "t", shapedLike: descriptor)
                Issue.record("\(message): shaped anyway")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
        #expect(throws: MockShapeError.self) { try MockDeviceConfiguration(name: "bad name", shapedLike: good) }
    }

    /// Capture a mock device's save as a stream file, replay it from a replay device, and load
    /// what the replay device serves into a target shaped from the capture's descriptor.
    @Test func aCapturedSaveReplaysIntoAShapedTarget() throws {
        let sourceKernel = MockKernel()
        let source = try Opened("mock:cap?state=200KiB&block-size=16KiB&compat=acme&seed=5&dirty-rate=1/64KiB", kernel: sourceKernel)
        let config = source.device.configuration
        var encoder = try StreamEncoder(header: StreamHeader(creationTimeNanoseconds: 0, devices: [config.descriptor]))
        var file = encoder.encodeHeader()
        let data = try source.set(.preCopy)
        var readings: [(initial: UInt64, dirty: UInt64)] = []
        while true {
            let info = try source.precopyInfo(data)
            guard let chunk = try source.readUnlessDrained(data, 50_000) else { break }
            readings.append(info)
            try encoder.appendPreCopyProgress(device: 0, initialBytes: info.initial, dirtyBytes: info.dirty, to: &file)
            try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: chunk, to: &file)
        }
        try source.set(.stopCopy)
        while true {
            let chunk = try source.readOnce(data, 50_000)
            if chunk.isEmpty { break }
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: chunk, to: &file)
        }
        try source.set(.stop)
        try sourceKernel.close(data)
        try encoder.appendDeviceDigest(device: 0, to: &file)
        try encoder.appendEndOfDevice(device: 0, to: &file)
        try encoder.appendEndOfStream(to: &file)
        let capture = try CaptureFile(file)

        let kernel = MockKernel()
        let replay = try Opened("mock:rep?replay=\(capture.path)", kernel: kernel)
        let shaped = try MockDeviceConfiguration(name: "tgt", shapedLike: MockCapture(path: capture.path).descriptor)
        let target = try Opened(shaped.spec, kernel: kernel)
        let out = try replay.set(.preCopy)
        var stream: [UInt8] = []
        var replayed: [(initial: UInt64, dirty: UInt64)] = []
        while true {
            let info = try replay.precopyInfo(out)
            guard let chunk = try replay.readUnlessDrained(out, 50_000) else { break }
            replayed.append(info)
            stream += chunk
        }
        #expect(replayed.map(\.initial) == readings.map(\.initial))
        #expect(replayed.map(\.dirty) == readings.map(\.dirty))
        try replay.set(.stopCopy)
        stream += try kernel.readAll(out)
        try replay.set(.stop)
        try kernel.close(out)
        try target.load(stream)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try replay.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
    }
}
