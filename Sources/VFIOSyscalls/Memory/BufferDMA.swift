// MAP_DMA of memory an IOBuffer owns (guest RAM the engine mapped, or memory the VMM lent):
// the buffer's address is taken here, in the syscall layer, and only handed to the kernel.
// The caller keeps the buffer alive for as long as the mapping exists.
import VFIOBuffers

extension KernelFD where Kind == ContainerKind {
    /// Maps `buffer[range]` (page-aligned, whole pages) at `iova`.
    package func mapDMA(_ buffer: IOBuffer, _ range: Range<Int>, iova: UInt64, access: DMAAccess) throws(SyscallError) {
        // SAFETY: only the numeric address leaves the closure, for the kernel; the caller keeps
        // the buffer (and so the memory) alive until it unmaps the range.
        let address = buffer.withUnsafeBytes(in: range) { UInt64(UInt(bitPattern: $0.baseAddress)) }
        try mapDMA(vaddr: address, iova: iova, size: UInt64(range.count), access: access)
    }
}
