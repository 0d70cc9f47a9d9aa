// The emulator's data fds through the engine's own data path: a mock device opened through a
// DeviceEnvironment, driven by a MigrationDriver, its save stream read to the end in fixed
// chunks into one IOBuffer (timed from the first read to EOF), or a stream loaded into it (the
// writes and the final RESUMING → STOP check timed). And the baseline: a plain read(2) of a
// memfd holding the same bytes into the same place of the same buffer.
#if canImport(Glibc)
import Glibc
#endif
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMock
import VFIOMockDevices

struct Measurement {
    var bytes: Int
    var seconds: Double
    var bytesPerSecond: Double { Double(bytes) / seconds }
}

/// One mock device on its own emulator, kept open across measurements.
final class MockDataFdDevice {
    let spec: String
    private let kernel = MockKernel()
    private let device: VFIODevice
    private let driver: MigrationDriver

    init(spec: String) throws {
        self.spec = spec
        device = try DeviceEnvironment.withMockDevices(kernel: kernel).open(spec)
        driver = try MigrationDriver(device: device)
    }

    /// One whole STOP_COPY stream in `chunk`-byte reads; `sink` (untimed work such as filling
    /// the baseline file) sees every chunk.
    func readStopCopy(into buffer: IOBuffer, chunk: Int, sink: ((IOBuffer, Int) -> Void)? = nil) throws -> Measurement {
        try driver.transition(to: .stop)
        try driver.transition(to: .stopCopy)
        let clock = ContinuousClock()
        let start = clock.now
        var total = 0
        reading: while true {
            switch try driver.readSaveData(into: buffer, range: 0..<chunk) {
            case .bytes(let n):
                total += n
                sink?(buffer, n)
            case .endOfStream:
                break reading
            case .noDataNow, .wouldBlock:
                fatalError("\(spec): STOP_COPY read answered as in PRE_COPY")
            }
        }
        let elapsed = clock.now - start
        try driver.transition(to: .stop)
        try driver.transition(to: .running) // ready for the next one
        return Measurement(bytes: total, seconds: seconds(elapsed))
    }

    /// Loads `file` (a stream of a device of this shape) in `chunk`-byte writes from `buffer`.
    func load(_ file: MemoryFile, buffer: IOBuffer, chunk: Int) throws -> Measurement {
        try driver.transition(to: .stop)
        try driver.transition(to: .resuming)
        let clock = ContinuousClock()
        var timed = Duration.zero
        var offset = 0
        while offset < file.length {
            let n = file.read(into: buffer, at: offset, count: min(chunk, file.length - offset))
            let start = clock.now
            try driver.writeResumeData(from: buffer, range: 0..<n)
            timed += clock.now - start
            offset += n
        }
        let start = clock.now
        try driver.transition(to: .stop) // RESUMING → STOP: the device accepts the stream or refuses it
        timed += clock.now - start
        try driver.transition(to: .running)
        return Measurement(bytes: offset, seconds: seconds(timed))
    }

    /// Descriptors and threads the emulator holds (between measurements: the container, group
    /// and device fds, and no thread).
    var emulatorResources: (descriptors: Int, threads: Int) { (kernel.emulatorDescriptorCount, kernel.liveThreadCount) }
}

/// An anonymous memory file (memfd_create, or an unlinked /dev/shm file where the C library
/// lacks it) holding given bytes, read back with plain read(2)s.
final class MemoryFile {
    private let fd: CInt
    private(set) var length = 0

    init() {
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
    func append(_ buffer: IOBuffer, _ count: Int) {
        // SAFETY: the range was checked by IOBuffer; pwrite reads exactly that many bytes.
        let n = buffer.withUnsafeBytes(in: 0..<count) { pwrite(fd, $0.baseAddress, count, off_t(length)) }
        precondition(n == count, "memfd write failed: errno \(errno)")
        length += count
    }

    /// `count` bytes at `offset` into `buffer[0..<count]` (pread).
    func read(into buffer: IOBuffer, at offset: Int, count: Int) -> Int {
        // SAFETY: the destination range was checked by IOBuffer; pread writes at most its count.
        let n = buffer.withUnsafeMutableBytes(in: 0..<count) { pread(fd, $0.baseAddress, count, off_t(offset)) }
        precondition(n == count, "short memfd read: \(n) of \(count) (errno \(errno))")
        return n
    }

    /// The whole file in `chunk`-byte read(2)s into `buffer[0..<chunk]`, from offset 0.
    @inline(never)
    func readAll(into buffer: IOBuffer, chunk: Int) -> Measurement {
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
        return Measurement(bytes: total, seconds: seconds(clock.now - start))
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
