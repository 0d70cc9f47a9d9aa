// MockKernel: a VFIO kernel emulator behind the same KernelInterface as LinuxKernel. The
// engine's typed fd owners open /dev/vfio paths, issue ioctls and read/write data fds on it
// exactly as on Linux; the emulator decodes arguments only through UserMemory and answers with
// the kernel's errnos. Every emulated object has a real, unique descriptor number (container,
// group and device fds are reserved /dev/null descriptors; data fds are real pipe ends), so
// descriptor leaks show up in /proc/self/fd.
//
// Paths outside /dev/vfio and /dev/iommu pass through to the real kernel (tracked, so reads,
// writes and closes on them work too).
import Foundation
import SystemPackage
import VFIOSyscalls

public final class MockKernel: KernelInterface, @unchecked Sendable {
    public let name = "mock"

    private enum OpenFile {
        case container(MockContainer)
        case group(MockGroup)
        case device(DeviceFile)
        case save(MockSaveSession)
        case resume(MockResumeSession)
        case passthrough
    }

    private final class DeviceFile {
        let device: MockDevice
        var position: Int64 = 0
        init(device: MockDevice) { self.device = device }
    }

    private let lock = NSCondition()
    private let ledger = DescriptorLedger()
    private var files: [CInt: OpenFile] = [:]
    private var groups: [Int: MockGroup] = [:]
    private var deviceList: [MockDevice] = []

    /// The devices' time: advancing it performs their DMA workloads.
    public let clock = MockClock()

    public init() {
        clock.kernel = self
    }

    /// What every device does in a period of the clock (its DMA workload).
    func performDeviceWork(nanoseconds: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        for device in deviceList { device.runDMAWorkloadLocked(nanoseconds: nanoseconds) }
    }

    // MARK: devices

    /// Adds a device (its group is created on first use). Device names must be unique.
    @discardableResult
    public func addDevice(_ configuration: MockDeviceConfiguration) -> MockDevice {
        lock.lock()
        defer { lock.unlock() }
        precondition(!deviceList.contains { $0.name == configuration.name }, "mock device \(configuration.name) already exists")
        let index = deviceList.count
        let number: Int
        let group: MockGroup
        if let wanted = configuration.group, let existing = groups[wanted] {
            precondition(!existing.emulated, "group \(wanted) is an mdev group")
            number = wanted
            group = existing
        } else {
            number = configuration.group ?? ((groups.keys.max() ?? 0) + 1)
            group = MockGroup(number: number, emulated: configuration.isMediated)
            groups[number] = group
        }
        let kernelName = configuration.isMediated
            ? configuration.uuid ?? Self.uuid(for: configuration)
            : configuration.pciAddress ?? Self.pciAddress(index: index)
        precondition(!deviceList.contains { $0.kernelName == kernelName }, "kernel name \(kernelName) already used")
        let device = MockDevice(configuration: configuration, kernelName: kernelName, groupNumber: number, lock: lock, ledger: ledger)
        device.group = group
        group.devices.append(device)
        deviceList.append(device)
        return device
    }

    /// Parses `spec` and adds the device; a spec that clashes with a device already added
    /// (same name, PCI address or UUID, or a PCI device in an mdev's group) is an error.
    @discardableResult
    public func addDevice(spec: String) throws(MockSpecError) -> MockDevice {
        let configuration = try MockDeviceConfiguration(spec: spec)
        func clash(_ message: String) -> MockSpecError { MockSpecError(spec: spec, message: message) }
        lock.lock()
        let existing = deviceList
        let mdevGroup = configuration.group.flatMap { groups[$0] }?.emulated ?? false
        lock.unlock()
        if existing.contains(where: { $0.name == configuration.name }) {
            throw clash("a device named '\(configuration.name)' already exists")
        }
        if let kernelName = configuration.pciAddress ?? configuration.uuid, existing.contains(where: { $0.kernelName == kernelName }) {
            throw clash("another device already uses '\(kernelName)'")
        }
        if mdevGroup { throw clash("group \(configuration.group!) belongs to an mdev device") }
        return addDevice(configuration)
    }

    /// A device by mock name (`vf0`) or kernel name (PCI address or UUID).
    public func device(named name: String) -> MockDevice? {
        lock.lock()
        defer { lock.unlock() }
        return deviceList.first { $0.name == name || $0.kernelName == name }
    }

    public var devices: [MockDevice] {
        lock.lock()
        defer { lock.unlock() }
        return deviceList
    }

    /// The IOMMU group number of a device (by mock or kernel name): open `/dev/vfio/<N>`.
    public func groupNumber(ofDevice name: String) -> Int? { device(named: name)?.groupNumber }

    /// Descriptors this kernel handed out to its caller that are still open.
    public var openDescriptorCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return files.count
    }

    /// Real descriptors the emulator holds (handed out or internal: pipe ends, reserved
    /// numbers). Zero once the caller closed everything and every session was torn down.
    public var emulatorDescriptorCount: Int { ledger.openDescriptors }

    /// Producer and consumer threads still running (zero once every session ended).
    public var liveThreadCount: Int { ledger.liveThreads }

    static func pciAddress(index: Int) -> String {
        let slot = index % 32 + 1, bus = index / 32 + 1
        return "0000:" + hex(bus, 2) + ":" + hex(slot, 2) + ".0"
    }

    static func uuid(for c: MockDeviceConfiguration) -> String {
        let a = mixAll(fnv1a(c.name), c.seed, 1), b = mixAll(fnv1a(c.name), c.seed, 2)
        let h = hex(Int(truncatingIfNeeded: a >> 32), 8) + hex(Int(truncatingIfNeeded: a & 0xFFFF_FFFF), 8)
            + hex(Int(truncatingIfNeeded: b >> 32), 8) + hex(Int(truncatingIfNeeded: b & 0xFFFF_FFFF), 8)
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    private static func hex(_ v: Int, _ width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    // MARK: open / close

    package func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        if path == "/dev/iommu" || path.hasPrefix("/dev/vfio/devices/") { throw .noSuchFileOrDirectory }
        guard path.hasPrefix("/dev/vfio/") else {
            let fd = try ledger.open(path, flags)
            register(fd, .passthrough)
            return fd
        }
        let leaf = String(path.dropFirst("/dev/vfio/".count))
        if leaf == "vfio" {
            let fd = try ledger.reserve()
            register(fd, .container(MockContainer()))
            return fd
        }
        guard let number = Int(leaf), String(number) == leaf else { throw .noSuchFileOrDirectory }
        lock.lock()
        defer { lock.unlock() }
        guard let group = groups[number] else { throw .noSuchFileOrDirectory }
        if group.isGone { throw .noDevice }
        if group.isHeld { throw .resourceBusy }
        let fd = try ledger.reserve()
        group.fdOpen = true
        files[fd] = .group(group)
        return fd
    }

    private func register(_ fd: CInt, _ file: OpenFile) {
        lock.lock()
        files[fd] = file
        lock.unlock()
    }

    package func close(_ fd: CInt) throws(Errno) {
        lock.lock()
        guard let file = files.removeValue(forKey: fd) else {
            lock.unlock()
            throw .badFileDescriptor
        }
        var teardown: DataSession?
        var extraClose: CInt?
        switch file {
        case .container(let container):
            container.fdOpen = false
        case .group(let group):
            group.fdOpen = false
            group.releaseIfUnused()
        case .device(let handle):
            let device = handle.device
            device.openCount -= 1
            if device.openCount == 0 {
                // Last close: the driver disables migration and logging; a reopen starts RUNNING.
                if device.transitionBusy {
                    device.deferredReset = true
                } else {
                    teardown = device.resetLocked()
                }
                device.dmaLog = nil
                device.preCopyInfoV2 = false
            }
            if let group = device.group {
                group.deviceFDs -= 1
                group.releaseIfUnused()
            }
        case .save(let session):
            // Stop the producer before the read end goes, so it never writes into a closed pipe.
            if let current = session.device.endSessionIfCurrent(.save(session)) { teardown = current }
        case .resume(let session):
            if session.dead {
                teardown = .resume(session)
            } else {
                extraClose = session.callerClosed()
            }
        case .passthrough:
            break
        }
        lock.unlock()
        teardown?.finishTeardown()
        defer { if let extraClose { try? ledger.close(extraClose) } }
        try ledger.close(fd)
    }

    // MARK: ioctl

    package func ioctl(_ fd: CInt, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        switch try file(fd) {
        case .container(let container):
            return try locked { () throws(Errno) in try container.ioctl(request, argument) }
        case .group(let group):
            return try groupIoctl(group, request, argument)
        case .device(let handle):
            return try handle.device.ioctl(request, argument) { session in install(session) }
        case .save(let session):
            return try dataIoctl(session, request, argument)
        case .resume:
            throw .noIoctl
        case .passthrough:
            return try LinuxKernel.shared.ioctl(fd, request, argument)
        }
    }

    private func file(_ fd: CInt) throws(Errno) -> OpenFile {
        lock.lock()
        defer { lock.unlock() }
        guard let file = files[fd] else { throw .badFileDescriptor }
        return file
    }

    private func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Registers a new data session's caller end as an open file.
    private func install(_ session: DataSession) -> CInt {
        switch session {
        case .save(let s):
            register(s.userFD, .save(s))
            return s.userFD
        case .resume(let s):
            register(s.userFD, .resume(s))
            return s.userFD
        }
    }

    private func groupIoctl(_ group: MockGroup, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        lock.lock()
        defer { lock.unlock() }
        switch request {
        case Request.groupGetStatus:
            let arg = try UserStruct(argument)
            guard try arg.u32(0) >= 8 else { throw .invalidArgument }
            if group.isGone { throw .noDevice }
            try arg.set(4, u32: GroupFlag.viable | (group.container != nil ? GroupFlag.containerSet : 0))
            return 0
        case Request.groupSetContainer:
            let containerFD = try UserStruct(argument).i32(0)
            guard containerFD >= 0 else { throw .badFileDescriptor }
            if group.container != nil { throw .invalidArgument }
            guard case .container(let container)? = files[containerFD] else { throw .invalidArgument }
            if group.isGone { throw .noDevice }
            container.groups.append(group)
            group.container = container
            return 0
        case Request.groupUnsetContainer:
            guard let container = group.container else { throw .invalidArgument }
            if group.deviceFDs > 0 { throw .resourceBusy }
            group.detach(from: container)
            return 0
        case Request.groupGetDeviceFD:
            guard case .pointer(let address, let memory) = argument else { throw .badAddress }
            let name: String
            do {
                name = try memory.loadCString(at: address, limit: 4096)
            } catch .fileNameTooLong {
                throw .invalidArgument
            }
            guard let device = group.devices.first(where: { $0.kernelName == name && !$0.gone }) else { throw .noDevice }
            guard group.container?.iommu != nil else { throw .invalidArgument }
            let fd = try ledger.reserve()
            device.openCount += 1
            group.deviceFDs += 1
            files[fd] = .device(DeviceFile(device: device))
            return fd
        default:
            throw .noIoctl
        }
    }

    private func dataIoctl(_ session: MockSaveSession, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        guard request == Request.migGetPrecopyInfo else { throw .noIoctl }
        let arg = try UserStruct(argument)
        guard try arg.u32(0) >= 24 else { throw .invalidArgument }
        let device = session.device
        let info = try locked { () throws(Errno) in
            try device.injectInterrupt()
            return try device.precopyInfo(session)
        }
        // Without the MIG_PRECOPY_INFOv2 opt-in `flags` is reserved: left as the caller passed it.
        if let flags = info.flags { try arg.set(4, u32: flags) }
        try arg.set(8, u64: info.initial)
        try arg.set(16, u64: info.dirty)
        return 0
    }

    // MARK: read / write

    package func read(_ fd: CInt, into region: UserRegion) throws(Errno) -> Int {
        switch try file(fd) {
        case .container, .group:
            throw .invalidArgument
        case .device(let handle):
            let position = locked { handle.position }
            let n = try handle.device.readRegion(at: position, into: region)
            locked { handle.position += Int64(n) }
            return n
        case .save(let session):
            return try session.device.readSaveData(session, into: region)
        case .resume:
            throw .badFileDescriptor // resume fds are write-only
        case .passthrough:
            return try LinuxKernel.shared.read(fd, into: region)
        }
    }

    package func write(_ fd: CInt, from region: UserRegion) throws(Errno) -> Int {
        switch try file(fd) {
        case .container, .group:
            throw .invalidArgument
        case .device(let handle):
            let position = locked { handle.position }
            let n = try handle.device.writeRegion(at: position, from: region)
            locked { handle.position += Int64(n) }
            return n
        case .resume(let session):
            return try session.device.writeResumeData(session, from: region)
        case .save:
            throw .badFileDescriptor // save fds are read-only
        case .passthrough:
            return try LinuxKernel.shared.write(fd, from: region)
        }
    }

    package func pread(_ fd: CInt, into region: UserRegion, offset: Int64) throws(Errno) -> Int {
        switch try file(fd) {
        case .container, .group: throw .invalidArgument
        case .device(let handle): return try handle.device.readRegion(at: offset, into: region)
        case .save, .resume: throw .illegalSeek
        case .passthrough: return try LinuxKernel.shared.pread(fd, into: region, offset: offset)
        }
    }

    package func pwrite(_ fd: CInt, from region: UserRegion, offset: Int64) throws(Errno) -> Int {
        switch try file(fd) {
        case .container, .group: throw .invalidArgument
        case .device(let handle): return try handle.device.writeRegion(at: offset, from: region)
        case .save, .resume: throw .illegalSeek
        case .passthrough: return try LinuxKernel.shared.pwrite(fd, from: region, offset: offset)
        }
    }

    package func setNonBlocking(_ fd: CInt, _ enabled: Bool) throws(Errno) {
        let file = try file(fd)
        try LinuxKernel.shared.setNonBlocking(fd, enabled)
        switch file {
        case .save(let s): locked { s.nonBlocking = enabled }
        case .resume(let s): locked { s.nonBlocking = enabled }
        default: break
        }
    }
}
