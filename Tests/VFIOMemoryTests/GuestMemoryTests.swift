// Guest memory regions: their rules, the bounds every access is checked against, files
// mapped by the engine (read-only for a save, past-the-end refused before any access), memory
// a VMM lends, and mapping a region into a container for DMA.
import Foundation
import SystemPackage
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMockDevices
import VFIOSyscalls

@Suite struct GuestMemoryTests {
    @Test func regionRulesAreChecked() throws {
        let buffer = IOBuffer(capacity: 8192)
        #expect(throws: VFIOError.self) { try GuestMemoryRegion(iova: 0, length: 8192, pageSize: 3000, buffer: buffer, writable: true, name: "odd page") }
        #expect(throws: VFIOError.self) { try GuestMemoryRegion(iova: 0, length: 6000, buffer: buffer, writable: true, name: "partial page") }
        #expect(throws: VFIOError.self) { try GuestMemoryRegion(iova: 100, length: 4096, buffer: buffer, writable: true, name: "misaligned") }
        #expect(throws: VFIOError.self) { try GuestMemoryRegion(iova: 0, length: 16384, buffer: buffer, writable: true, name: "too big") }
        #expect(throws: VFIOError.self) { try GuestMemoryRegion(iova: UInt64.max - 4095, length: 8192, buffer: buffer, writable: true, name: "wraps") }
        let a = try GuestMemoryRegion(iova: 0, length: 8192, buffer: buffer, writable: true, name: "a")
        let b = try GuestMemoryRegion(iova: 4096, length: 4096, buffer: IOBuffer(capacity: 4096), writable: true, name: "b")
        #expect(throws: VFIOError.self) { try GuestMemory([a, b]) }
        #expect(throws: VFIOError.self) { try GuestMemory([]) }
    }

    @Test func everyAccessIsBoundsChecked() throws {
        let r = try GuestMemoryRegion(iova: 0x1000, length: 4 * 4096, buffer: IOBuffer(capacity: 4 * 4096), writable: false, name: "r")
        #expect(try r.bytes(pages: 1..<3).range == 4096..<3 * 4096)
        #expect(throws: VFIOError.self) { try r.bytes(pages: 3..<5) }
        #expect(throws: VFIOError.self) { try r.bytes(pages: -1..<1) }
        #expect(throws: VFIOError.self) { try r.writableRange(0..<4096) }
        let w = try GuestMemoryRegion(iova: 0x1000, length: 4 * 4096, buffer: IOBuffer(capacity: 4 * 4096), writable: true, name: "w")
        #expect(try w.writableRange(4096..<8192) == 4096..<8192)
        #expect(throws: VFIOError.self) { try w.writableRange(12288..<16385) }
        let loader = try GuestMemoryLoader(memory: try GuestMemory([w]))
        #expect(throws: VFIOError.self) { try loader.zero(region: 0, pages: 2..<5) }
        #expect(throws: VFIOError.self) { try loader.write(region: 1, firstPage: 0, from: IOBuffer(capacity: 4096), range: 0..<4096) }
        #expect(throws: VFIOError.self) { try loader.write(region: 0, firstPage: 0, from: IOBuffer(capacity: 4096), range: 0..<100) }
    }

    @Test func aFileIsMappedAndItsEndIsRespected() throws {
        let path = NSTemporaryDirectory() + "guest-memory-test-\(getpid())"
        try Data((0..<(8 * 4096)).map { UInt8(truncatingIfNeeded: $0 / 4096 + 1) }).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let whole = try GuestMemoryRegion.mapping(file: path, iova: 0x10_0000, writable: false)
        #expect(whole.length == 8 * 4096 && !whole.writable)
        #expect(whole.buffer[5 * 4096] == 6)
        let part = try GuestMemoryRegion.mapping(file: path, offset: 4096, length: 2 * 4096, iova: 0, writable: true)
        #expect(part.buffer[0] == 2)
        part.buffer[0] = 0x77 // shared: the file sees it
        #expect(try Data(contentsOf: URL(fileURLWithPath: path))[4096] == 0x77)
        do {
            _ = try GuestMemoryRegion.mapping(file: path, offset: 4096, length: 8 * 4096, iova: 0, writable: false)
            Issue.record("a mapping past the file's end was made")
        } catch {
            #expect(error.message.contains("cannot map") && error.operation?.contains("past the file") == true, "\(error)")
        }
        #expect(throws: VFIOError.self) { try GuestMemoryRegion.mapping(file: path + ".missing", iova: 0, writable: false) }
        let fd = try FileDescriptor.open(path, .readWrite)
        defer { try? fd.close() }
        let byDescriptor = try GuestMemoryRegion.mapping(descriptor: fd, length: 4096, iova: 0, writable: false, name: "memfd-like")
        #expect(byDescriptor.buffer[100] == 1)
    }

    @Test func memoryTheVMMMappedIsLentNotOwned() throws {
        let owner = IOBuffer(capacity: 3 * 4096)
        let released = ReleaseFlag()
        do {
            let lent = try owner.withUnsafeMutableBytes(in: 4096..<3 * 4096) { raw in
                try IOBuffer.unsafeAdoptingMemoryMappedByTheEmbedder(raw, whenReleased: { released.set() })
            }
            lent[0] = 9
            #expect(owner[4096] == 9, "the same memory, not a copy")
            let region = try GuestMemoryRegion(iova: 0, length: 8192, buffer: lent, writable: true, name: "vmm")
            #expect(region.pageCount == 2)
        }
        #expect(released.value, "released once the engine let go")
        #expect(owner[4096] == 9, "and not freed")
        #expect(throws: IOBuffer.AdoptionError.self) {
            try owner.withUnsafeMutableBytes(in: 100..<4196) { try IOBuffer.unsafeAdoptingMemoryMappedByTheEmbedder($0) }
        }
    }

    @Test func aRegionIsMappedIntoAContainerAndKeptAlive() throws {
        let device = try DeviceEnvironment.withMockDevices().open("mock:dmamap")
        var r: GuestMemoryRegion? = try GuestMemoryRegion(iova: 0x30_0000, length: 2 * 4096, buffer: IOBuffer(capacity: 2 * 4096), writable: true, name: "ram")
        weak let watched = r
        try device.container.map(r!)
        r = nil
        #expect(watched != nil, "the container keeps mapped memory alive")
        try device.mock!.dmaWrite(iova: 0x30_0000 + 4096, bytes: [1, 2, 3])
        #expect(watched!.buffer.bytes(4096..<4099) == [1, 2, 3], "the device writes the region's memory")
        #expect(device.container.mappings == [DMARange(iova: 0x30_0000, length: 2 * 4096)])
        try device.container.unmap(DMARange(iova: 0x30_0000, length: 2 * 4096))
        #expect(device.container.mappings.isEmpty)
        #expect(watched == nil, "unmapping lets it go")
    }
}

final class ReleaseFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}
