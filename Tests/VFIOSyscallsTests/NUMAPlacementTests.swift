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
