// Test harness for driving MockKernel through KernelInterface exactly as the engine's typed fd
// owners do: hand-built argument structs in caller memory, passed as pointer arguments.
// The pinning helper is the only unsafe code in these tests.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

/// Caller memory for one ioctl: 8-byte aligned little-endian words, `byteCount` bytes visible.
final class UserBuffer {
    var words: [UInt64]
    let byteCount: Int

    init(bytes: Int) {
        words = [UInt64](repeating: 0, count: max(1, (bytes + 7) / 8))
        byteCount = bytes
    }

    convenience init(cString: String) {
        let utf8 = Array(cString.utf8) + [0]
        self.init(bytes: utf8.count)
        for (i, b) in utf8.enumerated() { words[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
    }

    func u32(_ offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: words[offset / 8] >> (8 * UInt64(offset % 8))) }
    func i32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }
    func u64(_ offset: Int) -> UInt64 {
        precondition(offset % 8 == 0)
        return words[offset / 8]
    }

    func set(_ offset: Int, u32 value: UInt32) {
        let shift = 8 * UInt64(offset % 8)
        words[offset / 8] = words[offset / 8] & ~(0xFFFF_FFFF << shift) | UInt64(value) << shift
    }

    func set(_ offset: Int, i32 value: Int32) { set(offset, u32: UInt32(bitPattern: value)) }
    func set(_ offset: Int, u64 value: UInt64) {
        precondition(offset % 8 == 0)
        words[offset / 8] = value
    }

    /// Bit `i` of the buffer read as a u64 bitmap.
    func bit(_ i: Int) -> Bool { words[i / 64] >> UInt64(i % 64) & 1 == 1 }
    var setBits: [Int] { (0..<byteCount * 8).filter { bit($0) } }
}

/// Pins `buffers` for one call and passes their addresses and the memory they make reachable.
func withUserMemory<R>(_ buffers: [UserBuffer], _ body: ([UInt], UserMemory) throws(Errno) -> R) throws(Errno) -> R {
    func pin(_ i: Int, _ addresses: [UInt], _ regions: [UserRegion]) -> Result<R, Errno> {
        if i == buffers.count {
            return Result { () throws(Errno) -> R in try body(addresses, UserMemory(regions)) }
        }
        let count = buffers[i].byteCount
        return buffers[i].words.withUnsafeMutableBytes { raw in
            // SAFETY: the address is used only while this closure keeps the array pinned.
            let address = UInt(bitPattern: raw.baseAddress)
            return pin(i + 1, addresses + [address], regions + [UserRegion(address: address, count: count, writable: true)])
        }
    }
    return try pin(0, [], []).get()
}

extension MockKernel {
    /// ioctl with a pointer to `buffer`; `also` are further buffers the call may reach, and
    /// `prepare` can store their addresses into the struct first.
    @discardableResult
    func call(_ fd: CInt, _ request: UInt, _ buffer: UserBuffer, also: [UserBuffer] = [],
              prepare: ([UInt], UserMemory) throws(Errno) -> Void = { _, _ in }) throws(Errno) -> CInt {
        try withUserMemory([buffer] + also) { (addresses, memory) throws(Errno) -> CInt in
            try prepare(addresses, memory)
            return try ioctl(fd, request, .pointer(address: addresses[0], memory: memory))
        }
    }

    /// Reads everything until EOF (0), retrying EINTR like the engine's loop.
    func readAll(_ fd: CInt, chunk: Int = 1 << 20) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n: Int
            do { n = try readBytes(fd, into: &buffer, byteRange: 0..<chunk) } catch .interrupted { continue }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    /// Writes all of `bytes`, in `chunk`-sized writes, retrying short writes and EINTR.
    func writeAll(_ fd: CInt, _ bytes: [UInt8], chunk: Int = 1 << 20) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            do {
                offset += try writeBytes(fd, from: bytes, byteRange: offset..<min(bytes.count, offset + chunk))
            } catch .interrupted {
                continue
            }
        }
    }
}

/// Request numbers and flag values, restated for the tests from the fact sheet.
enum R {
    static let getAPIVersion: UInt = 0x3B64, checkExtension: UInt = 0x3B65, setIOMMU: UInt = 0x3B66
    static let groupStatus: UInt = 0x3B67, setContainer: UInt = 0x3B68, unsetContainer: UInt = 0x3B69
    static let getDeviceFD: UInt = 0x3B6A, deviceInfo: UInt = 0x3B6B, regionInfo: UInt = 0x3B6C
    static let irqInfo: UInt = 0x3B6D, setIRQs: UInt = 0x3B6E, reset: UInt = 0x3B6F
    static let iommuInfo: UInt = 0x3B70, mapDMA: UInt = 0x3B71, unmapDMA: UInt = 0x3B72
    static let dirtyPages: UInt = 0x3B75, feature: UInt = 0x3B75, precopyInfo: UInt = 0x3B79
    static let get: UInt32 = 0x10000, set: UInt32 = 0x20000, probe: UInt32 = 0x40000
}

/// A container, group and device opened on a MockKernel the canonical way.
struct Opened {
    let kernel: MockKernel
    let device: MockDevice
    let container: CInt
    let group: CInt
    let fd: CInt

    /// open container → API version → CHECK_EXTENSION(TYPE1v2) → open group → GET_STATUS →
    /// SET_CONTAINER → SET_IOMMU(TYPE1v2) → GET_DEVICE_FD.
    init(_ spec: String, kernel: MockKernel = MockKernel()) throws {
        self.kernel = kernel
        device = try kernel.addDevice(spec: spec)
        container = try kernel.open("/dev/vfio/vfio", .readWrite)
        #expect(try kernel.ioctl(container, R.getAPIVersion, .none) == 0)
        #expect(try kernel.ioctl(container, R.checkExtension, .value(3)) == 1)
        group = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        let status = UserBuffer(bytes: 8)
        status.set(0, u32: 8)
        try kernel.call(group, R.groupStatus, status)
        #expect(status.u32(4) & 1 == 1)
        let containerFD = UserBuffer(bytes: 4)
        containerFD.set(0, i32: container)
        try kernel.call(group, R.setContainer, containerFD)
        #expect(try kernel.ioctl(container, R.setIOMMU, .value(3)) == 0)
        fd = try kernel.call(group, R.getDeviceFD, UserBuffer(cString: device.kernelName))
    }

    /// Already opened objects (a device fd reopened on the same group, for example).
    init(kernel: MockKernel, device: MockDevice, container: CInt, group: CInt, fd: CInt) {
        self.kernel = kernel
        self.device = device
        self.container = container
        self.group = group
        self.fd = fd
    }

    func close() throws {
        try kernel.close(fd)
        try kernel.close(group)
        try kernel.close(container)
    }

    /// VFIO_DEVICE_FEATURE with `flags` and a payload of `payload` bytes (argsz = 8 + payload).
    func feature(_ flags: UInt32, payload: Int, argsz: UInt32? = nil, fill: (UserBuffer) -> Void = { _ in }) throws(Errno) -> UserBuffer {
        let buffer = UserBuffer(bytes: 8 + payload)
        buffer.set(0, u32: argsz ?? UInt32(8 + payload))
        buffer.set(4, u32: flags)
        fill(buffer)
        try kernel.call(fd, R.feature, buffer)
        return buffer
    }

    /// MIG_DEVICE_STATE SET; returns the data fd (or -1).
    @discardableResult
    func set(_ state: MockDeviceState) throws(Errno) -> CInt {
        try feature(R.set | 2, payload: 8) { $0.set(8, u32: state.rawValue) }.i32(12)
    }

    /// MIG_DEVICE_STATE GET.
    func state() throws(Errno) -> MockDeviceState {
        MockDeviceState(rawValue: try feature(R.get | 2, payload: 8).u32(8))!
    }

    /// Saves the whole state: STOP → STOP_COPY, read to EOF, STOP_COPY → STOP.
    func saveStopCopy() throws -> [UInt8] {
        if try state() != .stop { try set(.stop) }
        let data = try set(.stopCopy)
        let bytes = try kernel.readAll(data)
        try set(.stop)
        try kernel.close(data)
        return bytes
    }

    /// Loads a stream: → RESUMING, write it, RESUMING → STOP (throws its errno).
    func load(_ bytes: [UInt8], chunk: Int = 1 << 20) throws(Errno) {
        if try state() != .stop { try set(.stop) }
        let data = try set(.resuming)
        defer { try? kernel.close(data) }
        try kernel.writeAll(data, bytes, chunk: chunk)
        try set(.stop)
    }
}

/// Spec suffixes for tests that must hold for both kinds of state source.
enum StateSources {
    static let all = ["", "&source=fast"]
}

func expectErrno(_ expected: Errno, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(expected), the call succeeded", sourceLocation: sourceLocation)
    } catch {
        #expect(error as? Errno == expected, sourceLocation: sourceLocation)
    }
}

@Suite struct MockHarnessTests {
    @Test func canonicalOpenSequenceWorksAndLeavesNothingOpen() throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:vf0?state=4KiB", kernel: kernel)
        let info = UserBuffer(bytes: 24)
        info.set(0, u32: 24)
        try kernel.call(opened.fd, R.deviceInfo, info)
        #expect(info.u32(4) == 0b11) // RESET | PCI
        #expect(info.u32(8) == 9)
        #expect(info.u32(12) == 5)
        #expect(kernel.openDescriptorCount == 3)
        #expect(kernel.emulatorDescriptorCount == 3)
        try opened.close()
        #expect(kernel.openDescriptorCount == 0)
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func unknownDescriptorIsEBADF() {
        let kernel = MockKernel()
        expectErrno(.badFileDescriptor) { _ = try kernel.ioctl(987_654, R.getAPIVersion, .none) }
        expectErrno(.badFileDescriptor) { try kernel.close(987_654) }
    }
}
