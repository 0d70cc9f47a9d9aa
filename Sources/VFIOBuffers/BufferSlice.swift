// A range of an IOBuffer: one part of a gather write, or space lent for a chunk. Defined here,
// in the lowest shared module, because the syscall layer writes slices and the engine lends them.

/// Bytes `range` of `buffer`.
public struct BufferSlice {
    public let buffer: IOBuffer
    public let range: Range<Int>

    public init(_ buffer: IOBuffer, _ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.capacity, "BufferSlice \(range) outside the buffer's \(buffer.capacity) bytes")
        self.buffer = buffer
        self.range = range
    }
}
