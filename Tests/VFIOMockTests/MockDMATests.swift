// Guest memory and DMA: devices write real bytes through their container's MAP_DMA vaddr, a
// workload driven by the kernel's clock writes at a rate, hot set and pattern, and type1
// dirty bitmaps and the DMA log report exactly those writes, so copying what they report
// reproduces guest memory on a target.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

extension Opened {
    /// MAP_DMA of `memory` (read/write unless `flags` says otherwise) at `iova`.
    func map(_ memory: DMAMemory, iova: UInt64, flags: UInt32 = 0b11) throws(Errno) {
        try map(iova: iova, size: UInt64(memory.count), flags: flags, vaddr: memory.address)
    }

    /// UNMAP_DMA with GET_DIRTY_BITMAP: the final harvest of `[iova, iova + size)`.
    func unmapHarvesting(iova: UInt64, size: UInt64) throws(Errno) -> UserBuffer {
        let unmap = UserBuffer(bytes: 48), bitmap = UserBuffer(bytes: Int((size / 4096 + 63) / 64 * 8))
        unmap.set(0, u32: 48); unmap.set(4, u32: 1)
        unmap.set(8, u64: iova); unmap.set(16, u64: size)
        unmap.set(24, u64: 4096); unmap.set(32, u64: UInt64(bitmap.byteCount))
        try kernel.call(container, R.unmapDMA, unmap, also: [bitmap]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 40)
        }
        return bitmap
    }

    /// DMA_LOGGING_START over one range; returns the granularity the driver chose.
    func startLogging(iova: UInt64, length: UInt64, pageSize: UInt64 = 4096) throws(Errno) -> UInt64 {
        let control = UserBuffer(bytes: 32), list = UserBuffer(bytes: 16)
        control.set(0, u32: 32); control.set(4, u32: R.set | 6)
        control.set(8, u64: pageSize); control.set(16, u32: 1)
        list.set(0, u64: iova); list.set(8, u64: length)
        try kernel.call(fd, R.feature, control, also: [list]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 24)
        }
        return control.u64(8)
    }

    /// DMA_LOGGING_REPORT at 4 KiB pages.
    func loggingReport(iova: UInt64, length: UInt64) throws(Errno) -> UserBuffer {
        let r = UserBuffer(bytes: 40), bitmap = UserBuffer(bytes: Int((length / 4096 + 63) / 64 * 8))
        r.set(0, u32: 40); r.set(4, u32: R.get | 8)
        r.set(8, u64: iova); r.set(16, u64: length); r.set(24, u64: 4096)
        try kernel.call(fd, R.feature, r, also: [bitmap]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 32)
        }
        return bitmap
    }
}

/// Page `page` of `memory`.
func page(_ memory: DMAMemory, _ page: Int) -> [UInt8] { memory.buffer.bytes(page * 4096..<(page + 1) * 4096) }

@Suite struct MockDMATests {
    static let iova: UInt64 = 0x10_0000

    @Test func dmaWriteWritesTheBytesAndMarksTheirPages() throws {
        let opened = try Opened("mock:w?mdev-type=mock-2")
        defer { try? opened.close() }
        let memory = DMAMemory(bytes: 16 * 4096)
        try opened.map(memory, iova: Self.iova)
        try opened.dirty(1)
        #expect(try opened.startLogging(iova: Self.iova, length: UInt64(memory.count)) == 4096)
        opened.device.markDMAWrites()
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        try opened.device.dmaWrite(iova: Self.iova + 0x1800, bytes: bytes)
        #expect(memory.buffer.bytes(0x1800..<0x1800 + 5000) == bytes)
        #expect(memory.buffer.bytes(0..<0x1800).allSatisfy { $0 == 0 })
        #expect(try opened.dirtyBitmap(iova: Self.iova, size: UInt64(memory.count)).setBits == [1, 2])
        #expect(try opened.loggingReport(iova: Self.iova, length: UInt64(memory.count)).setBits == [1, 2])
        #expect(opened.device.dmaWritesSinceMark == [MockDMAWrite(iova: Self.iova + 0x1800, length: 5000)])
        #expect(opened.device.dmaPagesSinceMark == [Self.iova + 0x1000, Self.iova + 0x2000])
        #expect(opened.device.dmaWrites == 1)
    }

    @Test func dmaWriteRefusesWhatTheIOMMUWouldNot() throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:e?mdev-type=mock-2", kernel: kernel)
        let memory = DMAMemory(bytes: 4 * 4096)
        try opened.map(memory, iova: Self.iova)
        try opened.map(memory, iova: 0x20_0000, flags: 1) // the device may only read
        try opened.map(iova: 0x30_0000, size: 4096, vaddr: 0x7000_0000_0000) // no memory behind it
        let four = [UInt8](repeating: 0xEE, count: 4)
        expectErrno(.invalidArgument) { try opened.device.dmaWrite(iova: 0x40_0000, bytes: four) }
        expectErrno(.invalidArgument) { try opened.device.dmaWrite(iova: Self.iova + 0x3FFE, bytes: four) } // runs past the end
        expectErrno(.invalidArgument) { try opened.device.dmaWrite(iova: Self.iova, bytes: []) }
        expectErrno(.notPermitted) { try opened.device.dmaWrite(iova: 0x20_0000, bytes: four) }
        expectErrno(.badAddress) { try opened.device.dmaWrite(iova: 0x30_0000, bytes: four) }
        #expect(opened.device.dmaFaults == 1)
        // A vaddr being updated (FLAG_VADDR): the device cannot write until it is back.
        #expect(try opened.unmap(iova: Self.iova, size: UInt64(memory.count), flags: 4) == UInt64(memory.count))
        expectErrno(.resourceTemporarilyUnavailable) { try opened.device.dmaWrite(iova: Self.iova, bytes: four) }
        try opened.map(iova: Self.iova, size: UInt64(memory.count), flags: 4, vaddr: memory.address)
        try opened.device.dmaWrite(iova: Self.iova, bytes: four)
        #expect(memory.buffer.bytes(0..<4) == four)
        #expect(opened.device.dmaWrites == 1)
        try opened.close()
        expectErrno(.invalidArgument) { try opened.device.dmaWrite(iova: Self.iova, bytes: four) } // closed
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func theWorkloadWritesAtItsRateWithPredictableContent() throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:wl?mdev-type=mock-2&dma-rate=64MiB/s&dma-hot=64KiB&dma-pattern=sequential&dma-seed=9", kernel: kernel)
        defer { try? opened.close() }
        let memory = DMAMemory(bytes: 64 * 4096)
        try opened.map(memory, iova: Self.iova)
        opened.device.markDMAWrites()
        var perStep: [Int] = []
        for _ in 0..<10 {
            let before = opened.device.dmaWrites
            kernel.clock.advance(by: .milliseconds(100))
            perStep.append(opened.device.dmaWrites - before)
        }
        #expect(kernel.clock.now == .seconds(1))
        #expect(perStep.allSatisfy { $0 == 1638 || $0 == 1639 }) // 1638.4 pages per 100 ms
        #expect(perStep.reduce(0, +) == 16384) // exactly 64 MiB in a second: the remainder carries
        let writes = opened.device.dmaWritesSinceMark
        #expect(writes.count == 16384)
        // Sequential through the 16-page hot set, one page per write.
        #expect(writes.prefix(17).map(\.iova) == (0..<17).map { Self.iova + UInt64($0 % 16) * 4096 })
        #expect(opened.device.dmaPagesSinceMark == (0..<16).map { Self.iova + UInt64($0) * 4096 })
        // Each page holds what its last write put there.
        for p in 0..<16 {
            let last = writes.last { $0.iova == Self.iova + UInt64(p) * 4096 }!
            #expect(page(memory, p) == MockDMAWorkload.pageContent(seed: 9, iova: last.iova, counter: last.counter!))
        }
        #expect(page(memory, 16).allSatisfy { $0 == 0 })
        #expect(kernel.liveThreadCount == 0)
    }

    @Test(arguments: MockDMAWorkload.Pattern.allCases)
    func writesStayInWritableMappedMemoryAndTheirSets(pattern: MockDMAWorkload.Pattern) throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:ps?mdev-type=mock-2", kernel: kernel)
        defer { try? opened.close() }
        let low = DMAMemory(bytes: 8 * 4096), readOnly = DMAMemory(bytes: 8 * 4096), high = DMAMemory(bytes: 56 * 4096)
        try opened.map(low, iova: Self.iova)
        try opened.map(readOnly, iova: 0x20_0000, flags: 1)
        try opened.map(high, iova: 0x30_0000)
        opened.device.dmaWorkload = MockDMAWorkload(rate: 4 << 20, hotSet: 12 * 4096, hotFraction: 0.5, pattern: pattern, seed: 3)
        opened.device.markDMAWrites()
        kernel.clock.advance(by: .seconds(1)) // 1024 page writes
        let pages = opened.device.dmaPagesSinceMark
        #expect(opened.device.dmaWritesSinceMark.count == 1024)
        // The writable space is low's 8 pages then high's 56; its first 12 pages are hot.
        let hot = Set((0..<8).map { Self.iova + UInt64($0) * 4096 } + (0..<4).map { 0x30_0000 + UInt64($0) * 4096 })
        #expect(pages.allSatisfy { (Self.iova..<Self.iova + 0x8000).contains($0) || (0x30_0000..<0x33_8000).contains($0) })
        #expect(readOnly.buffer.bytes(0..<readOnly.count).allSatisfy { $0 == 0 })
        switch pattern {
        case .sequential, .random:
            #expect(Set(pages) == hot) // 1024 writes over 12 pages reach every one
        case .hotCold:
            let hotWrites = opened.device.dmaWritesSinceMark.filter { hot.contains($0.iova) }.count
            #expect(hotWrites > 400 && hotWrites < 700, "\(hotWrites) of 1024 in the hot set") // ≈ 0.5 + 0.5 × 12/64
            #expect(pages.count > 40)
        }
    }

    @Test func theSameSeedWritesTheSameMemory() throws {
        func run() throws -> [UInt8] {
            let kernel = MockKernel()
            let opened = try Opened("mock:same?dma-rate=1MiB/s&dma-pattern=hot-cold&dma-hot=16KiB&dma-seed=77", kernel: kernel)
            defer { try? opened.close() }
            let memory = DMAMemory(bytes: 32 * 4096)
            try opened.map(memory, iova: Self.iova)
            for _ in 0..<7 { kernel.clock.advance(by: .milliseconds(33)) }
            return memory.buffer.bytes(0..<memory.count)
        }
        let first = try run()
        #expect(first.contains { $0 != 0 })
        let same = try run() == first // compared outside #expect: a failure would print 128 KiB
        #expect(same)
    }

    @Test func aStoppedDeviceDoesNoDMAAndTimeItMissedIsGone() throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:st?mdev-type=mock-2&dma-rate=40KiB/s", kernel: kernel)
        defer { try? opened.close() }
        let memory = DMAMemory(bytes: 16 * 4096)
        try opened.map(memory, iova: Self.iova)
        kernel.clock.advance(by: .seconds(1))
        #expect(opened.device.dmaWrites == 10)
        try opened.set(.stop)
        kernel.clock.advance(by: .seconds(1))
        #expect(opened.device.dmaWrites == 10)
        try opened.set(.runningP2P) // running, P2P-quiesced: DMA to memory goes on
        kernel.clock.advance(by: .milliseconds(500))
        #expect(opened.device.dmaWrites == 15)
        try opened.set(.running)
        opened.device.dmaWorkload = nil
        kernel.clock.advance(by: .seconds(1))
        #expect(opened.device.dmaWrites == 15)
    }

    @Test func type1ScopesAndTheDMALogReportTheWorkloadsWrites() throws {
        let kernel = MockKernel()
        let mdev = try Opened("mock:sm?mdev-type=mock-2&dma-rate=400KiB/s&dma-seed=5", kernel: kernel)
        let pci = try Opened("mock:sp?dma-rate=400KiB/s&dma-seed=6", kernel: kernel)
        let a = DMAMemory(bytes: 64 * 4096), b = DMAMemory(bytes: 64 * 4096)
        try mdev.map(a, iova: Self.iova)
        try pci.map(b, iova: Self.iova)
        try mdev.dirty(1)
        try pci.dirty(1)
        #expect(try pci.startLogging(iova: Self.iova, length: UInt64(b.count), pageSize: 8192) == 8192)
        mdev.device.markDMAWrites()
        pci.device.markDMAWrites()
        kernel.clock.advance(by: .milliseconds(100)) // 10 pages each
        func bits(_ pages: [UInt64]) -> [Int] { pages.map { Int(($0 - Self.iova) / 4096) } }
        // Precise for the emulated-IOMMU container; everything mapped for the physical one.
        #expect(try mdev.dirtyBitmap(iova: Self.iova, size: UInt64(a.count)).setBits == bits(mdev.device.dmaPagesSinceMark))
        #expect(try pci.dirtyBitmap(iova: Self.iova, size: UInt64(b.count)).setBits == Array(0..<64))
        // The device's own log is precise at its 8 KiB granularity, reported in 4 KiB pages.
        let logged = Set(pci.device.dmaPagesSinceMark.flatMap { p -> [Int] in
            let first = Int((p - Self.iova) / 8192) * 2
            return [first, first + 1]
        })
        #expect(try pci.loggingReport(iova: Self.iova, length: UInt64(b.count)).setBits == logged.sorted())
        // Unmapping harvests what was written since the last GET before the pages go.
        mdev.device.markDMAWrites()
        kernel.clock.advance(by: .milliseconds(100))
        #expect(try mdev.unmapHarvesting(iova: Self.iova, size: UInt64(a.count)).setBits == bits(mdev.device.dmaPagesSinceMark))
        kernel.clock.advance(by: .milliseconds(100)) // nothing mapped: nothing written
        #expect(mdev.device.dmaWrites == 20)
        try mdev.close()
        try pci.close()
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    /// A VMM's loop in miniature: copy guest memory, then keep copying what the dirty bitmap
    /// reports while the device writes, stop the device, harvest the rest: the target's
    /// memory equals the source's, and the device state arrives too.
    @Test func copyingWhatTheBitmapsReportReproducesGuestMemory() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:vm0?mdev-type=mock-2&state=256KiB&dma-rate=2MiB/s&dma-hot=64KiB&dma-pattern=hot-cold&dma-seed=11", kernel: kernel)
        let target = try Opened("mock:vm1?mdev-type=mock-2&state=256KiB", kernel: kernel)
        let guest = DMAMemory(bytes: 128 * 4096), copy = DMAMemory(bytes: 128 * 4096)
        let size = UInt64(guest.count)
        try source.map(guest, iova: Self.iova)
        try source.dirty(1)
        kernel.clock.advance(by: .milliseconds(50)) // the guest runs before migration starts
        func copyPages(_ pages: [Int]) {
            for p in pages { copy.buffer.write(page(guest, p), at: p * 4096) }
        }
        copyPages(Array(0..<128)) // first pass: everything
        _ = try source.dirtyBitmap(iova: Self.iova, size: size) // what the first pass already has
        let data = try source.set(.preCopy)
        var stream: [UInt8] = []
        for _ in 0..<5 {
            kernel.clock.advance(by: .milliseconds(20))
            copyPages(try source.dirtyBitmap(iova: Self.iova, size: size).setBits)
            stream += try source.readUnlessDrained(data, 64 << 10) ?? []
        }
        try source.set(.stopCopy) // the device stops: no more DMA
        kernel.clock.advance(by: .milliseconds(100))
        stream += try kernel.readAll(data)
        try source.set(.stop)
        try kernel.close(data)
        copyPages(try source.unmapHarvesting(iova: Self.iova, size: size).setBits)
        let differing = (0..<128).filter { page(guest, $0) != page(copy, $0) }
        #expect(differing.isEmpty, "pages differing on the target: \(differing)")
        #expect(guest.buffer.bytes(0..<guest.count).contains { $0 != 0 })
        try target.load(stream)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }
}
