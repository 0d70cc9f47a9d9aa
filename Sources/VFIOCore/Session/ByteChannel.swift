// Where stream bytes go and come from: a file, a pipe, a socket, or the embedder's own
// channel (a VMM carrying device state inside its own migration stream). The stream writer
// and reader work over these, never over paths.
import VFIOBuffers

/// A destination for bytes, written in order. Blocking: a call returns when the bytes are
/// handed to the channel (or throws saying how many made it).
public protocol ByteSink: AnyObject {
    /// How messages name the channel ("file vf.vfiomig", "tcp 10.0.0.2:4444").
    var name: String { get }
    /// Writes all of `buffer[range]`.
    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError)
    /// Writes the slices in order, as one gather write where the channel can.
    func write(gathering slices: [BufferSlice]) throws(VFIOError)
    /// Makes what was written durable or delivered (fsync for a file, nothing for a socket).
    func flush() throws(VFIOError)
}

extension ByteSink {
    public func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        for slice in slices { try write(slice.buffer, slice.range) }
    }

    public func flush() throws(VFIOError) {}
}

/// A source of bytes, read in order.
public protocol ByteSource: AnyObject {
    var name: String { get }
    /// Reads up to `range.count` bytes into `buffer[range]`; 0 means the end of the input.
    func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int
}

extension ByteSource {
    /// Reads until `range` is full or the input ends; returns the bytes read.
    public func readFully(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        var done = 0
        while done < range.count {
            let n = try read(into: buffer, range.lowerBound + done..<range.upperBound)
            if n == 0 { break }
            done += n
        }
        return done
    }
}
