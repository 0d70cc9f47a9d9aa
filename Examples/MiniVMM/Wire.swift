// The mini VMM's own migration stream: typed frames on a socket pair, the way a VMM carries
// RAM pages and device state in one connection. Device state is opaque to it: it only moves
// the bytes the engine hands it and pushes them into the engine on the other side.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One frame: kind (1 byte), device or page index (4 bytes), length (4 bytes), payload.
enum FrameKind: UInt8 {
    case ramPage = 1
    case deviceState = 2
    case deviceEnd = 3
    /// The source stopped its vCPUs; what follows is the final state.
    case stopped = 4
    /// The last RAM frame: only now may the target resume its devices.
    case lastRAM = 5
}

struct Frame {
    var kind: FrameKind
    var index: UInt32
    var payload: Data
}

/// A connected pair of stream sockets: the source writes one end, the target reads the other.
struct SocketPair {
    let source: FileHandle
    let target: FileHandle

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "socketpair failed: errno \(errno)"])
        }
        source = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        target = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
    }
}

extension FileHandle {
    func send(_ frame: Frame) throws {
        var header = Data([frame.kind.rawValue])
        header.append(contentsOf: littleEndian(frame.index))
        header.append(contentsOf: littleEndian(UInt32(frame.payload.count)))
        try write(contentsOf: header + frame.payload)
    }

    func receive() throws -> Frame? {
        guard let header = try readExactly(9) else { return nil }
        guard let kind = FrameKind(rawValue: header[0]) else { throw CocoaError(.coderReadCorrupt) }
        let index = header[1..<5].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        let length = header[5..<9].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        guard let payload = try readExactly(Int(length)) else { throw CocoaError(.coderReadCorrupt) }
        return Frame(kind: kind, index: index, payload: payload)
    }

    private func readExactly(_ count: Int) throws -> Data? {
        var data = Data()
        while data.count < count {
            guard let more = try read(upToCount: count - data.count), !more.isEmpty else { return data.isEmpty ? nil : data }
            data += more
        }
        return data
    }
}

func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
