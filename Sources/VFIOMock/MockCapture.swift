// A captured stream as a replay source (`mock:NAME?replay=FILE`): one device's data stream
// from a vfio-migration stream file, decoded and checked once with VFIOStream, and kept as an
// index (where each captured chunk's bytes lie in the file, which phase it belongs to, the
// pre-copy progress the capture recorded). The bytes stay in the file; a replay session reads
// them from it as the caller reads its data fd.
import SystemPackage
import VFIOStream
import VFIOSyscalls

public final class MockCapture: Sendable, Equatable, CustomStringConvertible {
    /// One captured chunk of the device's data stream.
    struct Chunk: Sendable, Equatable {
        let phase: StatePhase
        /// Where its bytes start in the file.
        let fileOffset: UInt64
        /// Where it starts in the device's data stream.
        let streamOffset: UInt64
        let length: Int
    }

    public let path: String
    /// The device of the stream this capture replays.
    public let deviceIndex: Int
    /// Devices in the captured stream.
    public let deviceCount: Int
    public let descriptor: DeviceDescriptor
    /// Bytes of the device's stream read in PRE_COPY (phase 1) and in STOP_COPY (phase 2).
    public let preCopyBytes: UInt64
    public let stopCopyBytes: UInt64
    let chunks: [Chunk]
    /// The capture's PRECOPY_INFO readings for this device, in stream order.
    let progress: [PreCopyProgress]
    private let fileLength: UInt64

    /// Decodes the stream at `path` (every CRC, sequence number and total is checked) and
    /// indexes device `device`, which may be omitted when the stream carries one device.
    public init(path: String, device: Int? = nil) throws(MockCaptureError) {
        func fail(_ message: String) -> MockCaptureError { MockCaptureError(path: path, message: message) }
        self.path = path
        var file: CaptureFile
        do {
            file = try CaptureFile(path: path)
        } catch {
            throw fail("cannot open: \(SyscallError.errnoName(error))")
        }
        defer { file.close() }

        var decoder = StreamDecoder()
        var chunks: [Chunk] = []
        var progress: [PreCopyProgress] = []
        var index = 0
        var count = 0
        var descriptor: DeviceDescriptor
        do throws(CaptureProblem) {
            let prefix = try file.read(StreamFormat.headerPrefixSize)
            if prefix.count < StreamFormat.headerPrefixSize { try decoding { () throws(StreamError) in try decoder.endOfInput(available: prefix.count) } }
            let length = try decoding { () throws(StreamError) in try decoder.decodeHeaderPrefix(prefix) }
            let rest = try file.read(length - prefix.count)
            if rest.count < length - prefix.count { try decoding { () throws(StreamError) in try decoder.endOfInput(available: prefix.count + rest.count) } }
            let header = try decoding { () throws(StreamError) in try decoder.decodeHeader(prefix + rest) }
            guard !header.devices.isEmpty else { throw .other("the stream carries no device") }
            count = header.devices.count
            if let device {
                guard header.devices.indices.contains(device) else {
                    throw .other("replay-device=\(device), but the stream carries \(header.devices.count) device(s) (0...\(header.devices.count - 1))")
                }
                index = device
            } else if header.devices.count > 1 {
                throw .other("the stream carries \(header.devices.count) devices; choose one with replay-device=K (0...\(header.devices.count - 1))")
            }
            descriptor = header.devices[index]
            var sawStopCopy = false
            while !decoder.isComplete {
                let recordBytes = try file.read(StreamFormat.recordHeaderSize)
                if recordBytes.count < StreamFormat.recordHeaderSize { try decoding { () throws(StreamError) in try decoder.endOfInput(available: recordBytes.count) } }
                let recordHeader = try decoding { () throws(StreamError) in try decoder.decodeRecordHeader(recordBytes) }
                let payloadStart = file.offset
                let payload = try file.read(Int(recordHeader.payloadLength))
                if payload.count < Int(recordHeader.payloadLength) { try decoding { () throws(StreamError) in try decoder.endOfInput(available: payload.count) } }
                switch try decoding({ () throws(StreamError) in try decoder.decodePayload(payload) }) {
                case .deviceState(let chunk) where chunk.device == index && chunk.length > 0:
                    guard chunk.offset == chunks.last.map({ $0.streamOffset + UInt64($0.length) }) ?? 0 else {
                        throw .other("device \(index)'s data is not contiguous from 0 in this file (stream offset \(recordHeader.offset); one channel of a parallel stream?)")
                    }
                    if chunk.phase == .stopCopy { sawStopCopy = true }
                    if chunk.phase == .preCopy && sawStopCopy {
                        throw .other("device \(index) has pre-copy data after its stop-copy data (stream offset \(recordHeader.offset))")
                    }
                    chunks.append(Chunk(phase: chunk.phase, fileOffset: payloadStart, streamOffset: chunk.offset, length: chunk.length))
                case .preCopyProgress(let reading) where reading.device == index:
                    progress.append(reading)
                default:
                    break
                }
            }
            let trailing = try file.read(1).count
            try decoding { () throws(StreamError) in try decoder.endOfInput(available: trailing) }
        } catch {
            switch error {
            case .stream(let problem): throw fail("corrupt capture: \(problem)")
            case .io(let errno): throw fail("read failed: \(SyscallError.errnoName(errno))")
            case .other(let message): throw fail(message)
            }
        }
        self.deviceIndex = index
        self.deviceCount = count
        self.descriptor = descriptor
        self.chunks = chunks
        self.progress = progress
        preCopyBytes = chunks.filter { $0.phase == .preCopy }.reduce(0) { $0 + UInt64($1.length) }
        stopCopyBytes = chunks.filter { $0.phase == .stopCopy }.reduce(0) { $0 + UInt64($1.length) }
        fileLength = file.offset
    }

    public var totalBytes: UInt64 { preCopyBytes + stopCopyBytes }
    /// Chunks of phase 1 (they come first).
    var preCopyChunkCount: Int { chunks.firstIndex { $0.phase == .stopCopy } ?? chunks.count }
    /// MIG_DATA_SIZE: what the capture's source estimated, or what its STOP_COPY produced.
    var stopCopyEstimate: UInt64 { descriptor.expectedStateSize ?? stopCopyBytes }

    public var description: String {
        "\(path) device \(deviceIndex): \(preCopyBytes) B pre-copy, \(stopCopyBytes) B stop-copy in \(chunks.count) chunks"
    }

    public static func == (a: MockCapture, b: MockCapture) -> Bool {
        a === b || (a.path == b.path && a.deviceIndex == b.deviceIndex && a.fileLength == b.fileLength
            && a.descriptor == b.descriptor && a.chunks == b.chunks && a.progress == b.progress)
    }
}

/// A capture that cannot be replayed: the file and the problem.
public struct MockCaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "replay capture \(path): \(message)" }
}

private enum CaptureProblem: Error {
    case stream(StreamError)
    case io(Errno)
    case other(String)
}

/// Sequential reads of the capture file, counting the offset.
private struct CaptureFile {
    let fd: CInt
    private(set) var offset: UInt64 = 0

    init(path: String) throws(Errno) {
        fd = try LinuxKernel.shared.open(path, .readOnly)
    }

    /// Up to `count` bytes; fewer only at the end of the file.
    mutating func read(_ count: Int) throws(CaptureProblem) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            do {
                let n = try LinuxKernel.shared.readBytes(fd, into: &bytes, byteRange: filled..<count)
                if n == 0 { break }
                filled += n
            } catch .interrupted {
                continue
            } catch {
                throw .io(error)
            }
        }
        offset += UInt64(filled)
        return filled == count ? bytes : Array(bytes[0..<filled])
    }

    func close() { try? LinuxKernel.shared.close(fd) }
}

/// Runs a decoder step, carrying its error as a capture problem.
private func decoding<T>(_ body: () throws(StreamError) -> T) throws(CaptureProblem) -> T {
    do { return try body() } catch { throw .stream(error) }
}
