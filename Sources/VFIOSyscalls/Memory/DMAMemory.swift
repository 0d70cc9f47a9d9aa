// Process memory a device may DMA into: page-aligned, zeroed, and with the address the
// container's MAP_DMA needs. The address is a number handed to the kernel, never dereferenced
// outside this module.
import VFIOBuffers

public final class DMAMemory {
    public let buffer: IOBuffer
    /// The process virtual address of the first byte (MAP_DMA's vaddr).
    package let address: UInt64

    public init(bytes: Int) {
        precondition(bytes > 0 && bytes % IOBuffer.alignment == 0, "DMA memory is whole pages")
        buffer = IOBuffer(capacity: bytes)
        // SAFETY: only the numeric address escapes; the buffer owns and outlives the memory it names.
        address = buffer.withUnsafeBytes(in: 0..<bytes) { UInt64(UInt(bitPattern: $0.baseAddress)) }
    }

    public var count: Int { buffer.capacity }
}
