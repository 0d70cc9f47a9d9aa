// In-memory byte channels and guest memory with known content, for the page streaming tests.
import VFIOBuffers
import VFIOCore
import VFIOStream

final class BytesSink: ByteSink {
    let name = "memory sink"
    private(set) var bytes: [UInt8] = []
    private(set) var gatherCalls = 0
    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) { bytes += buffer.bytes(range) }
    func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        gatherCalls += 1
        for slice in slices { bytes += slice.buffer.bytes(slice.range) }
    }
}

final class BytesSource: ByteSource {
    let name = "memory source"
    let bytes: [UInt8]
    private var position = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        let n = min(range.count, bytes.count - position)
        buffer.write(bytes[position..<position + n], at: range.lowerBound)
        position += n
        return n
    }
}

/// A region whose pages hold a pattern of `seed`, with every page in `zeroPages` zero.
func patterned(_ iova: UInt64, pages: Int, seed: UInt8, zeroPages: Set<Int> = [], name: String, pageSize: Int = 4096, writable: Bool = false) throws -> GuestMemoryRegion {
    let buffer = IOBuffer(capacity: pages * pageSize)
    for p in 0..<pages where !zeroPages.contains(p) {
        var bytes = [UInt8](repeating: 0, count: pageSize)
        for i in stride(from: 0, to: pageSize, by: 64) { bytes[i] = seed &+ UInt8(truncatingIfNeeded: p) &+ UInt8(truncatingIfNeeded: i >> 6) }
        bytes[pageSize - 1] = seed | 1
        buffer.write(bytes, at: p * pageSize)
    }
    return try GuestMemoryRegion(iova: iova, length: UInt64(pages * pageSize), pageSize: UInt64(pageSize), buffer: buffer, writable: writable, name: name)
}

/// Empty, writable memory of the same shape, filled with `fill`.
func target(like memory: GuestMemory, fill: UInt8 = 0xAB) throws -> GuestMemory {
    try GuestMemory(memory.regions.map { r in
        let buffer = IOBuffer(capacity: Int(r.length))
        buffer.write([UInt8](repeating: fill, count: Int(r.length)), at: 0)
        return try GuestMemoryRegion(iova: r.iova, length: r.length, pageSize: r.pageSize, buffer: buffer, writable: true, name: "target \(r.name)")
    })
}

func contents(_ memory: GuestMemory) -> [[UInt8]] { memory.regions.map { $0.buffer.bytes(0..<Int($0.length)) } }

func memoryHeader(_ memory: GuestMemory, checksums: Bool = true, maxPayload: UInt32 = 1 << 20, devices: [DeviceDescriptor] = []) -> StreamHeader {
    StreamHeader(flags: checksums ? 0 : HeaderFlags.noRecordChecksums.rawValue, creationTimeNanoseconds: 1, maxPayload: maxPayload,
                 devices: devices, regions: memory.descriptors)
}
