import Testing
import VFIOBuffers
@testable import VFIOSyscalls

@Suite struct NUMAPlacementTests {
    @Test func bufferOnNodeZeroIsUsableAndPageAligned() {
        let placed = NUMAPlacement.allocate(capacity: 1 << 20, node: 0)
        if NUMAPlacement.isAvailable {
            #expect(placed.node == 0)
        } else {
            #expect(placed.node == nil)
            #expect(placed.note?.contains("NUMA is not available") == true)
        }
        placed.buffer.write([1, 2, 3], at: (1 << 20) - 3)
        #expect(placed.buffer.bytes((1 << 20) - 3..<(1 << 20)) == [1, 2, 3])
        #expect(placed.buffer.bytes(0..<16) == Array(repeating: 0, count: 16))
        let address = placed.buffer.withUnsafeBytes(in: 0..<1) { UInt(bitPattern: $0.baseAddress) }
        #expect(address % UInt(IOBuffer.alignment) == 0)
    }

    /// Where the pages really are, as the kernel reports them (not what the allocator meant):
    /// every page of a buffer bound to node 0 is resident on node 0.
    @Test func theKernelReportsThePagesOnTheBoundNode() throws {
        let placed = NUMAPlacement.allocate(capacity: 4 << 20, node: 0, lock: false)
        guard NUMAPlacement.isAvailable else {
            #expect(NUMAPlacement.residentNodes(of: placed.buffer) == nil)
            return
        }
        let nodes = try #require(NUMAPlacement.residentNodes(of: placed.buffer))
        #expect(nodes == [0: (4 << 20) / 4096], "pages by node: \(nodes)")
    }

    /// A node that does not exist: the buffer falls back and the kernel says where it went.
    @Test func aFallbackBufferIsStillResidentSomewhereReal() throws {
        let placed = NUMAPlacement.allocate(capacity: 1 << 20, node: 4096, lock: false)
        guard NUMAPlacement.isAvailable else { return }
        let nodes = try #require(NUMAPlacement.residentNodes(of: placed.buffer))
        #expect(nodes.values.reduce(0, +) == 256)
        #expect(nodes[-1] == nil, "the allocator touched every page")
        #expect(nodes.keys.allSatisfy { $0 >= 0 && $0 <= NUMAPlacement.maxNode })
    }

    @Test func missingNodeFallsBackWithOneClearNote() {
        let placed = NUMAPlacement.allocate(capacity: 8192, node: 4096, lock: false)
        #expect(placed.node == nil)
        #expect(!placed.locked)
        #expect(placed.note?.contains("4096") == true)
        placed.buffer[8191] = 7
        #expect(placed.buffer[8191] == 7)
    }

    @Test func noPreferenceIsNotANote() {
        let placed = NUMAPlacement.allocate(capacity: 4096, node: nil, lock: false)
        #expect(placed.note == nil)
        #expect(placed.node == nil)
    }
}
