// The device writing guest memory through its container's IOMMU mappings: explicit writes a
// test asks for, and the DMA workload the kernel's clock drives. Every write goes to the
// mapping's vaddr (real bytes, through ProcessMemory) and marks what it wrote in the type1
// dirty tracking and the device's DMA log, so both report exactly what the device wrote.
import SystemPackage
import VFIOSyscalls

extension MockDevice {
    /// The device writes `bytes` of guest memory at `iova`. EINVAL if the device is not open,
    /// has no IOMMU, or any byte is unmapped; EPERM if a mapping is read-only; EAGAIN while a
    /// mapping's vaddr is invalidated (UNMAP_DMA FLAG_VADDR); ENODEV once the device
    /// disappeared; EFAULT if the vaddr is not writable memory of this process (what was
    /// written before that point stays written and dirty).
    public func dmaWrite(iova: UInt64, bytes: [UInt8]) throws(Errno) {
        try locked { () throws(Errno) in
            let parts = try dmaTargets(iova: iova, length: UInt64(bytes.count))
            var offset = 0
            for part in parts {
                let written: Int
                do throws(Errno) {
                    written = try ProcessMemory.write(bytes, byteRange: offset..<offset + Int(part.length), at: part.vaddr)
                } catch {
                    dmaFaultCount += 1
                    throw error
                }
                recordDMA(iova: part.iova, length: UInt64(written), counter: nil)
                if written < Int(part.length) {
                    dmaFaultCount += 1
                    throw .badAddress
                }
                offset += written
            }
            dmaWriteCount += 1
        }
    }

    /// The device writes `length` bytes at `iova` without touching memory: only the dirty
    /// tracking and the DMA log see it (for tests whose mappings have no real vaddr). Errors
    /// as `dmaWrite(iova:bytes:)`, except that the vaddr is never used.
    public func dmaWrite(iova: UInt64, length: UInt64) throws(Errno) {
        try locked { () throws(Errno) in
            for part in try dmaTargets(iova: iova, length: length) {
                recordDMA(iova: part.iova, length: part.length, counter: nil)
            }
            dmaWriteCount += 1
        }
    }

    /// DMA writes the device performed: calls that succeeded, plus one per workload page.
    public var dmaWrites: Int { locked { dmaWriteCount } }

    /// Writes that failed on the way to memory (EFAULT, or a vaddr being updated).
    public var dmaFaults: Int { locked { dmaFaultCount } }

    /// The DMA workload the clock drives; setting it starts the workload over (write 0).
    public var dmaWorkload: MockDMAWorkload? {
        get { locked { dmaRun?.workload } }
        set { locked { dmaRun = newValue.map(DMARun.init) } }
    }

    /// Starts a new log of DMA writes (none is kept before the first mark).
    public func markDMAWrites() { locked { dmaWriteLog = [] } }

    /// The writes since the last `markDMAWrites()`, in order.
    public var dmaWritesSinceMark: [MockDMAWrite] { locked { dmaWriteLog ?? [] } }

    /// The IOVAs of the 4 KiB pages written since the last mark, ascending, each once.
    public var dmaPagesSinceMark: [UInt64] {
        let writes = dmaWritesSinceMark
        var pages: Set<UInt64> = []
        for w in writes where w.length > 0 {
            var page = w.iova / MockDMAWorkload.pageSize
            while page * MockDMAWorkload.pageSize < w.iova + w.length {
                pages.insert(page * MockDMAWorkload.pageSize)
                page += 1
            }
        }
        return pages.sorted()
    }

    // MARK: internals (lock held)

    /// Splits `[iova, iova + length)` over the mappings it lies in, after every check.
    private func dmaTargets(iova: UInt64, length: UInt64) throws(Errno) -> [(iova: UInt64, length: UInt64, vaddr: UInt64)] {
        if gone { throw .noDevice }
        guard openCount > 0, length > 0, iova &+ length > iova, let iommu = group?.container?.iommu else { throw .invalidArgument }
        var parts: [(iova: UInt64, length: UInt64, vaddr: UInt64)] = []
        var address = iova
        while address < iova + length {
            guard let i = iommu.mappingIndex(containing: address) else { throw .invalidArgument }
            let m = iommu.mappings[i]
            guard m.writable else { throw .notPermitted }
            if m.vaddrInvalid { throw .resourceTemporarilyUnavailable }
            let end = min(m.end, iova + length)
            parts.append((address, end - address, m.vaddr + (address - m.iova)))
            address = end
        }
        return parts
    }

    private func recordDMA(iova: UInt64, length: UInt64, counter: UInt64?) {
        guard length > 0 else { return }
        group?.container?.iommu?.markDirty(iova: iova, length: length)
        dmaLog?.record(iova: iova, length: length)
        dmaWriteLog?.append(MockDMAWrite(iova: iova, length: length, counter: counter))
    }

    /// The workload's writes for a period of the clock. Time passes for a device that cannot
    /// write (stopped, closed, nothing mapped writable): those writes are not made up later.
    func runDMAWorkloadLocked(nanoseconds: UInt64) {
        guard var run = dmaRun else { return }
        defer { dmaRun = run }
        let due = run.pagesDue(nanoseconds: nanoseconds)
        guard due > 0, state.isRunning, !gone, openCount > 0, let iommu = group?.container?.iommu else { return }
        let space = iommu.writableMappings
        var starts: [UInt64] = [] // first page index of each mapping in the writable space
        var pages: UInt64 = 0
        for m in space {
            starts.append(pages)
            pages += m.size / MockDMAWorkload.pageSize
        }
        guard pages > 0 else { return }
        let workload = run.workload
        let hot = min(pages, (workload.hotSet ?? pages * MockDMAWorkload.pageSize) / MockDMAWorkload.pageSize)
        var words = [UInt64](repeating: 0, count: Int(MockDMAWorkload.pageSize / 8))
        for _ in 0..<due {
            let counter = run.writes
            let index = workload.page(forWrite: counter, sequentialIndex: run.sequentialIndex, pages: pages, hot: max(1, hot))
            run.writes += 1
            run.sequentialIndex += 1
            var lo = 0, hi = starts.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= index { lo = mid } else { hi = mid - 1 }
            }
            let offset = (index - starts[lo]) * MockDMAWorkload.pageSize
            let iova = space[lo].iova + offset
            MockDMAWorkload.fillPage(&words, seed: workload.seed, iova: iova, counter: counter)
            do {
                let written = try ProcessMemory.write(words, byteRange: 0..<Int(MockDMAWorkload.pageSize), at: space[lo].vaddr + offset)
                recordDMA(iova: iova, length: UInt64(written), counter: counter)
                if written < Int(MockDMAWorkload.pageSize) { dmaFaultCount += 1 }
            } catch {
                dmaFaultCount += 1
                continue
            }
            dmaWriteCount += 1
        }
    }
}
