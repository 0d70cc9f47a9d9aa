// `mock:NAME?options` device specs: parsing, printing back, and the errors for bad input.
import SystemPackage
import Testing
import VFIOMock

@Suite struct MockSpecTests {
    @Test func theIssueExampleParses() throws {
        let c = try MockDeviceConfiguration(spec: "mock:vf0?state=64MiB&flags=stop-copy,p2p,pre-copy&seed=7")
        #expect(c.name == "vf0")
        #expect(c.stateSize == 64 << 20)
        #expect(c.migrationFlags == 0x7)
        #expect(c.seed == 7)
        #expect(c.spec == "mock:vf0?state=64MiB&seed=7") // flags are the default
    }

    @Test func everyOptionPrintsBackToAnEqualConfiguration() throws {
        let spec = "mock:all?state=16GiB&flags=stop-copy,p2p&seed=0x10&compat=acme-v2&driver=acme_vf"
            + "&driver-version=5.1.0&vendor=0x15b3&device=0x101e&subsystem-vendor=15b3&subsystem=0x0042"
            + "&bdf=0000:3b:00.2&group=42&block-size=1MiB&dirty-rate=3/2MiB&precopy-end=zero&data-size=no"
            + "&dma-logging=no&resume-failure=error&bar0=1MiB&fail-arc=RUNNING>STOP:EIO:error"
            + "&fail-arc=STOP_COPY>STOP:5:once&short-read=1000&short-write=4KiB&eintr=7&eagain=3"
            + "&enodev-after=1GiB&reset-after=12345&disappear-after=2G&source=fast&revision=0x0a&class=0x120000"
            + "&precopy-info-v2=no&reinit-after=8MiB&dma-rate=64MiB/s&dma-hot=16MiB&dma-hot-fraction=0.75"
            + "&dma-pattern=hot-cold&dma-seed=42"
        let c = try MockDeviceConfiguration(spec: spec)
        #expect(c.stateSize == 16 << 30)
        #expect(c.migrationFlags == 0x3)
        #expect(c.seed == 16)
        #expect(c.vendorID == 0x15B3 && c.subsystemVendorID == 0x15B3 && c.subsystemID == 0x42)
        #expect(c.pciAddress == "0000:3b:00.2" && c.group == 42)
        #expect(c.dirtyRate == .init(blocks: 3, perBytes: 2 << 20))
        #expect(c.faults.arcFailures == [
            .init(from: .running, to: .stop, errno: .ioError, landInError: true),
            .init(from: .stopCopy, to: .stop, errno: .ioError, remaining: 1),
        ])
        #expect(c.faults.shortWriteLimit == 4096 && c.faults.interruptEvery == 7 && c.faults.wouldBlockEvery == 3)
        #expect(c.faults.disappearAfterBytes == 2 << 30)
        #expect(c.stateSource == .fast && c.revision == 0x0A && c.classCode == 0x12_0000)
        #expect(!c.offersPrecopyInfoV2 && c.reinitAfterBytes == 8 << 20)
        #expect(c.dmaWorkload == MockDMAWorkload(rate: 64 << 20, hotSet: 16 << 20, hotFraction: 0.75, pattern: .hotCold, seed: 42))
        #expect(try MockDeviceConfiguration(spec: c.spec) == c)
        let workload = try MockDeviceConfiguration(spec: "mock:w?dma-rate=64MiB/s&dma-hot=16MiB&dma-pattern=random")
        #expect(workload.dmaWorkload == MockDMAWorkload(rate: 64 << 20, hotSet: 16 << 20))
        #expect(workload.spec == "mock:w?dma-rate=64MiB/s&dma-hot=16MiB") // random is the default
        #expect(try MockDeviceConfiguration(spec: "mock:l?dma-logging=no").dmaWorkload == nil) // not a workload option

        let mdev = try MockDeviceConfiguration(spec: "mock:m?mdev-type=mtty-2&uuid=83B8F4F2-509F-382F-3C1E-E6BFE0FA1001")
        #expect(mdev.isMediated && mdev.uuid == "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001")
        #expect(try MockDeviceConfiguration(spec: mdev.spec) == mdev)
        #expect(try MockDeviceConfiguration(spec: "mock:d").spec == "mock:d")
    }

    @Test(arguments: [
        ("vf0", "must start with 'mock:'"),
        ("mock:", "device name"),
        ("mock:a b", "device name"),
        ("mock:a?colour=red", "unknown option 'colour'"),
        ("mock:a?state", "not key=value"),
        ("mock:a?state=12XB", "option 'state'"),
        ("mock:a?state=4kb", "option 'state'"),
        ("mock:a?flags=p2p", "stop-copy is required"),
        ("mock:a?flags=stop-copy,turbo", "option 'flags'"),
        ("mock:a?seed=1&seed=2", "given twice"),
        ("mock:a?fail-arc=STOP>SIDEWAYS:EIO", "FROM>TO:ERRNO"),
        ("mock:a?fail-arc=STOP>RUNNING:EWHAT", "FROM>TO:ERRNO"),
        ("mock:a?mdev-type=x&bdf=0000:00:01.0", "PCI devices"),
        ("mock:a?uuid=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "needs 'mdev-type'"),
        ("mock:a?block-size=12", "multiple of 8"),
        ("mock:a?eintr=1", "N ≥ 2"),
        ("mock:a?bar0=3000", "power of two"),
        ("mock:a?vendor=0x12345", "16-bit"),
        ("mock:a?data-size=maybe", "yes or no"),
        ("mock:a?dirty-rate=fast", "BLOCKS/SIZE"),
        ("mock:a?state=1TiB&block-size=8", "2^31 blocks"),
        ("mock:a?source=slow", "generated or fast"),
        ("mock:a?revision=0x100", "8-bit"),
        ("mock:a?class=0x1000000", "24-bit"),
        ("mock:a?precopy-info-v2=sometimes", "yes or no"),
        ("mock:a?reinit-after=soon", "option 'reinit-after'"),
        ("mock:a?replay=", "stream file"),
        ("mock:a?replay-device=1", "'replay-device' needs 'replay'"),
        ("mock:a?dma-rate=64MiB", "per second"),
        ("mock:a?dma-hot=16MiB", "'dma-hot' needs 'dma-rate'"),
        ("mock:a?dma-rate=1MiB/s&dma-hot=100", "4KiB page"),
        ("mock:a?dma-rate=1MiB/s&dma-hot-fraction=1.5", "fraction from 0 to 1"),
        ("mock:a?dma-rate=1MiB/s&dma-pattern=zigzag", "sequential, random, hot-cold"),
    ] as [(String, String)])
    func badSpecsSayWhatIsWrong(spec: String, message: String) {
        do {
            _ = try MockDeviceConfiguration(spec: spec)
            Issue.record("'\(spec)' parsed")
        } catch {
            #expect(error.spec == spec)
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    @Test func kernelNamesAndGroups() throws {
        let kernel = MockKernel()
        let a = try kernel.addDevice(spec: "mock:a")
        let b = try kernel.addDevice(spec: "mock:b?bdf=0000:3b:00.2&group=7")
        let c = try kernel.addDevice(spec: "mock:c?group=7")
        let m = try kernel.addDevice(spec: "mock:m?mdev-type=mock-1")
        #expect(a.kernelName == "0000:01:01.0")
        #expect(b.kernelName == "0000:3b:00.2" && b.groupNumber == 7 && c.groupNumber == 7)
        #expect(Set([a.groupNumber, 7, m.groupNumber]).count == 3)
        #expect(kernel.device(named: "m") === m && kernel.device(named: m.kernelName) === m)
        #expect(kernel.groupNumber(ofDevice: "0000:3b:00.2") == 7)
        #expect(kernel.groupNumber(ofDevice: "nope") == nil)
        for clash in ["mock:a", "mock:x?bdf=0000:3b:00.2", "mock:y?group=\(m.groupNumber)"] {
            #expect(throws: MockSpecError.self) { try kernel.addDevice(spec: clash) }
        }
        // Two devices in one group: both are reachable through the one group fd.
        let container = try kernel.open("/dev/vfio/vfio", .readWrite)
        let group = try kernel.open("/dev/vfio/7", .readWrite)
        let fd = UserBuffer(bytes: 4)
        fd.set(0, i32: container)
        try kernel.call(group, R.setContainer, fd)
        #expect(try kernel.ioctl(container, R.setIOMMU, .value(3)) == 0)
        let fb = try kernel.call(group, R.getDeviceFD, UserBuffer(cString: b.kernelName))
        let fc = try kernel.call(group, R.getDeviceFD, UserBuffer(cString: c.kernelName))
        #expect(fb != fc)
        for f in [fb, fc, group, container] { try kernel.close(f) }
        #expect(kernel.emulatorDescriptorCount == 0)
    }
}
