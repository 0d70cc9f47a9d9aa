// The emulator's save fd alone: one mock device opened through the syscall layer's typed fds
// (no engine above them), STOP → STOP_COPY, the data fd read to its end in fixed chunks into
// one IOBuffer, timed from the first read to EOF. And the baseline: a plain read(2) of a
// memfd holding the same bytes into the same place of the same buffer.
#if canImport(Glibc)
import Glibc
#endif
import VFIOBuffers
import VFIOMock
import VFIOSyscalls

public struct ReadMeasurement: Sendable {
    public var bytes: Int
    public var seconds: Double
    public var bytesPerSecond: Double { Double(bytes) / seconds }
}

/// A mock device on its own MockKernel, kept open across measurements.
public final class MockSourceDevice {
    public let spec: String
    private let kernel: MockKernel
    private let container: ContainerFD
    private let group: GroupFD
    private let device: DeviceFD

    public init(spec: String) throws {
        self.spec = spec
        kernel = MockKernel()
        let mock = try kernel.addDevice(spec: spec)
        container = try ContainerFD.open(kernel: kernel)
        group = try GroupFD.open("/dev/vfio/\(mock.groupNumber)", kernel: kernel)
        try group.setContainer(container)
        try container.setIOMMU(3) // TYPE1v2
        device = try group.openDevice(mock.kernelName)
    }

    /// One whole STOP_COPY stream read in `chunk`-byte reads; `sink` sees every chunk
    /// (untimed when nil is passed, so the baseline file can be filled from it).
    public func readStopCopy(into buffer: IOBuffer, chunk: Int, sink: ((IOBuffer, Int) -> Void)? = nil) throws -> ReadMeasurement {
        _ = try device.setMigrationState(1) // STOP
        guard let data = try device.setMigrationState(3) else { fatalError("STOP_COPY opened no data fd") }
        let clock = ContinuousClock()
        let start = clock.now
        var total = 0
        while true {
            let n = try data.read(into: buffer, range: 0..<chunk)
            if n == 0 { break }
            total += n
            sink?(buffer, n)
        }
        let elapsed = clock.now - start
        _ = try device.setMigrationState(1)
        try data.close()
        _ = try device.setMigrationState(2) // RUNNING, ready for the next one
        return ReadMeasurement(bytes: total, seconds: seconds(elapsed))
    }

    /// Loads `file` (a stream of a device of this shape): STOP → RESUMING, the file written in
    /// `chunk`-byte writes from `buffer`, RESUMING → STOP. Timed: the writes and the final arc
    /// (where the device's last check runs), not the reads of the file into the buffer.
    public func load(_ file: MemoryFile, buffer: IOBuffer, chunk: Int) throws -> ReadMeasurement {
        _ = try device.setMigrationState(1) // STOP
        guard let data = try device.setMigrationState(4) else { fatalError("RESUMING opened no data fd") }
        let clock = ContinuousClock()
        var timed = Duration.zero
        var offset = 0
        while offset < file.length {
            let n = file.read(into: buffer, at: offset, count: min(chunk, file.length - offset))
            let start = clock.now
            var done = 0
            while done < n { done += try data.write(from: buffer, range: done..<n) }
            timed += clock.now - start
            offset += n
        }
        let start = clock.now
        _ = try device.setMigrationState(1) // RESUMING → STOP: the device accepts the stream or refuses it
        timed += clock.now - start
        try data.close()
        _ = try device.setMigrationState(2)
        return ReadMeasurement(bytes: offset, seconds: seconds(timed))
    }

    /// Descriptors and threads the emulator still holds (0 and 0 between measurements, bar
    /// the container, group and device fds).
    public var emulatorResources: (descriptors: Int, threads: Int) { (kernel.emulatorDescriptorCount, kernel.liveThreadCount) }
}

/// An anonymous memory file (memfd_create, or an unlinked /dev/shm file where the C library
/// lacks it) holding given bytes, read back with plain read(2)s.
public final class MemoryFile {
    private let fd: CInt
    public private(set) var length = 0

    public init() {
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> CInt
        var opened: CInt = -1
        if let symbol = dlsym(nil, "memfd_create") {
            // SAFETY: the symbol is glibc's memfd_create, whose C signature MemfdCreate restates.
            opened = unsafeBitCast(symbol, to: MemfdCreate.self)("vfio-bench", 0)
        }
        if opened < 0 {
            var template = Array("/dev/shm/vfio-bench-XXXXXX".utf8CString)
            // SAFETY: mkstemp writes the file name into the template array it is given, in place.
            opened = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            // SAFETY: the template is a NUL-terminated C string for the duration of the call.
            _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        }
        precondition(opened >= 0, "no memfd and no /dev/shm file: errno \(errno)")
        fd = opened
    }

    deinit { close(fd) }

    /// Appends `buffer[0..<count]`.
    public func append(_ buffer: IOBuffer, _ count: Int) {
        // SAFETY: the range was checked by IOBuffer; write reads exactly that many bytes.
        let n = buffer.withUnsafeBytes(in: 0..<count) { pwrite(fd, $0.baseAddress, count, off_t(length)) }
        precondition(n == count, "memfd write failed: errno \(errno)")
        length += count
    }

    /// `count` bytes at `offset` into `buffer[0..<count]` (pread).
    public func read(into buffer: IOBuffer, at offset: Int, count: Int) -> Int {
        // SAFETY: the destination range was checked by IOBuffer; pread writes at most its count.
        let n = buffer.withUnsafeMutableBytes(in: 0..<count) { pread(fd, $0.baseAddress, count, off_t(offset)) }
        precondition(n == count, "short memfd read: \(n) of \(count) (errno \(errno))")
        return n
    }

    /// The whole file in `chunk`-byte read(2)s into `buffer[0..<chunk]`, from offset 0.
    @inline(never)
    public func readAll(into buffer: IOBuffer, chunk: Int) -> ReadMeasurement {
        precondition(lseek(fd, 0, SEEK_SET) == 0, "memfd seek failed: errno \(errno)")
        let clock = ContinuousClock()
        let start = clock.now
        var total = 0
        while true {
            // SAFETY: the destination range was checked by IOBuffer; read writes at most its count.
            let n = buffer.withUnsafeMutableBytes(in: 0..<chunk) { Glibc.read(fd, $0.baseAddress, chunk) }
            precondition(n >= 0, "memfd read failed: errno \(errno)")
            if n == 0 { break }
            total += n
        }
        return ReadMeasurement(bytes: total, seconds: seconds(clock.now - start))
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
