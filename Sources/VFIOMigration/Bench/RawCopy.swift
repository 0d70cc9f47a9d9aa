// The raw baselines: a device's STOP_COPY state read to its end in chunk-sized reads into one
// buffer and written as it came into a sink (no record header, no checksum, no hand-off), and
// the reverse into a target. Same data fds and the same read and write calls the engine makes;
// every run leaves the device RUNNING, so the engine and the baseline read one device in turn.
import VFIOBuffers
import VFIOCore
import VFIOKernel

public enum RawCopy {
    /// Reads `device`'s STOP_COPY state into `sink`, `chunkSize` bytes per read; returns
    /// the state bytes. RUNNING -> STOP -> STOP_COPY -> STOP -> RUNNING around it.
    public static func save(_ device: VFIODevice, into sink: any ByteSink, chunkSize: Int, buffer: IOBuffer? = nil) throws(VFIOError) -> UInt64 {
        let buffer = buffer ?? IOBuffer(capacity: chunkSize)
        precondition(buffer.capacity >= chunkSize, "the raw copy's buffer holds one chunk")
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .stop)
        try driver.transition(to: .stopCopy)
        var total: UInt64 = 0
        do throws(VFIOError) {
            reading: while true {
                switch try driver.readSaveData(into: buffer, range: 0..<chunkSize) {
                case .bytes(let n):
                    try sink.write(buffer, 0..<n)
                    total += UInt64(n)
                case .endOfStream:
                    break reading
                case .noDataNow, .wouldBlock:
                    throw VFIOError(.deviceError, "the STOP_COPY data fd answered as in PRE_COPY", device: device.name, operation: "read")
                }
            }
            try sink.flush()
        } catch {
            _ = driver.recover(preferring: .running)
            throw error
        }
        try driver.transition(to: .stop)
        try driver.transition(to: .running)
        return total
    }

    /// Writes what `source` holds into `device`'s resume data fd, `chunkSize` bytes per read;
    /// returns the bytes. RUNNING -> STOP -> RESUMING -> STOP (the device checks the state)
    /// -> RUNNING around it.
    public static func load(_ device: VFIODevice, from source: any ByteSource, chunkSize: Int, buffer: IOBuffer? = nil) throws(VFIOError) -> UInt64 {
        let buffer = buffer ?? IOBuffer(capacity: chunkSize)
        precondition(buffer.capacity >= chunkSize, "the raw copy's buffer holds one chunk")
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .stop)
        try driver.transition(to: .resuming)
        var total: UInt64 = 0
        do throws(VFIOError) {
            while true {
                let n = try source.read(into: buffer, 0..<chunkSize)
                if n == 0 { break }
                try driver.writeResumeData(from: buffer, range: 0..<n)
                total += UInt64(n)
            }
            try driver.transition(to: .stop)
        } catch {
            _ = driver.recover(preferring: .running, role: .target)
            throw error
        }
        try driver.transition(to: .running)
        return total
    }

    /// A migration through a data fd ended with a device in STOP (a source after a commit):
    /// back to RUNNING for the next run.
    public static func resume(_ devices: [VFIODevice]) throws(VFIOError) {
        for device in devices {
            let driver = try MigrationDriver(device: device)
            if driver.knownState != .running { try driver.transition(to: .running) }
        }
    }
}
