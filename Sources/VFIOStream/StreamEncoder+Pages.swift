// Pages records on the send side, built for zero-copy: the run table goes into a small
// control buffer and the page data are written (writev) straight from guest memory, so the
// encoder never sees them; the caller hands over their CRC32C and the record CRC is joined
// from the two (CRCShift) instead of being computed over copied bytes.
import VFIOBuffers

extension StreamEncoder {
    /// Where a pages record's parts are.
    public struct PagesFrame: Sendable, Hashable {
        /// The record header as written (with its checksum).
        public var header: RecordHeader
        /// Bytes written at `start`: the 32-byte record header and the run table. The page
        /// data (`dataLength` bytes) follow them in the stream.
        public var controlLength: Int
        /// The whole record: control bytes plus page data.
        public var recordLength: Int
        public var dataLength: Int
    }

    /// Writes a pages record's header and run table at `buffer[start...]`. The record's data
    /// are the bytes of every non-ZERO run, in run order, each `pageCount * pageSize` long;
    /// `dataCRC` is their CRC32C (ignored, pass 0, under NO_RECORD_CHECKSUMS). The caller
    /// writes the control bytes, then the data, nothing in between.
    @discardableResult
    public mutating func framePages(
        region: Int, phase: StatePhase, round: UInt64, runs: [PageRun], dataCRC: UInt32, into buffer: IOBuffer, at start: Int
    ) throws(StreamUsageError) -> PagesFrame {
        let plan = try planPages(region: region, phase: phase, round: round, runs: runs)
        let controlLength = StreamFormat.recordHeaderSize + plan.tableLength
        try Self.checkFits(start: start, length: controlLength, capacity: buffer.capacity)
        let sealed = commitPages(plan.record, phase: phase)
        // SAFETY: the range was checked against the capacity above; the view stays in the closure.
        let header = buffer.withUnsafeMutableBytes(in: start..<(start + controlLength)) { control in
            var header = sealed
            header.store(into: control)
            Self.writeTable(region: region, runs: runs, into: control)
            if checksums {
                // SAFETY: `control` is the header and table just written.
                let prefixCRC = CRC32C.update(0, UnsafeRawBufferPointer(control))
                header.checksum = CRCShift.combine(prefixCRC, dataCRC, lengthOfB: UInt64(plan.dataLength))
                var writer = LittleEndianWriter(control, index: 12)
                writer.write(header.checksum)
            }
            return header
        }
        return PagesFrame(header: header, controlLength: controlLength, recordLength: header.recordLength, dataLength: plan.dataLength)
    }

    /// The whole pages record appended to `bytes`; `data` are the non-ZERO runs' bytes in order.
    @discardableResult
    public mutating func appendPages(
        region: Int, phase: StatePhase, round: UInt64, runs: [PageRun], data: some Collection<UInt8>, to bytes: inout [UInt8]
    ) throws(StreamUsageError) -> PagesFrame {
        let plan = try planPages(region: region, phase: phase, round: round, runs: runs)
        guard data.count == plan.dataLength else { throw StreamUsageError(.dataLength(expected: UInt64(plan.dataLength), given: data.count)) }
        let record = commitPages(plan.record, phase: phase)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: StreamFormat.recordHeaderSize + plan.tableLength))
        // SAFETY: the slice is the header and table space just appended; the view stays in the closure.
        bytes[start...].withUnsafeMutableBytes { Self.writeTable(region: region, runs: runs, into: UnsafeMutableRawBufferPointer($0)) }
        bytes.append(contentsOf: data)
        let sealed = seal(record, in: &bytes, at: start)
        return PagesFrame(
            header: sealed, controlLength: StreamFormat.recordHeaderSize + plan.tableLength, recordLength: sealed.recordLength,
            dataLength: plan.dataLength)
    }

    private struct PagesPlan {
        var record: RecordHeader
        var tableLength: Int
        var dataLength: Int
    }

    /// Every pages rule, checked before anything is written or counted.
    private func planPages(region: Int, phase: StatePhase, round: UInt64, runs: [PageRun]) throws(StreamUsageError) -> PagesPlan {
        guard !isComplete else { throw StreamUsageError(.streamComplete) }
        let regions = header.regions
        guard !regions.isEmpty else { throw StreamUsageError(.invalidPageTable(.noRegions)) }
        guard region >= 0 && region < regions.count else {
            throw StreamUsageError(.invalidPageTable(.regionOutOfRange(region: UInt32(clamping: region), regionCount: regions.count)))
        }
        guard !runs.isEmpty else { throw StreamUsageError(.invalidPageTable(.noRuns)) }
        switch pageOrder.problem(phase: phase, round: round) {
        case .roundRegression(let previous): throw StreamUsageError(.pageOrder(reason: "round \(round) after round \(previous); rounds never decrease"))
        case .phaseRegression: throw StreamUsageError(.pageOrder(reason: "phase 1 pages after phase 2 pages"))
        case nil: break
        }
        let maxPayload = UInt64(header.maxPayload)
        let tableLength = UInt64(PageTable.prefixSize) + UInt64(PageTable.runSize) * UInt64(runs.count)
        guard tableLength <= maxPayload else { throw StreamUsageError(.payloadTooLarge(tableLength, maxPayload: header.maxPayload)) }
        var checker = PageTableRules.RunChecker(region: regions[region], carried: maxPayload - tableLength)
        do throws(PageTableProblem) {
            for run in runs {
                try checker.check(firstPage: run.firstPage, pageCount: run.pageCount, flags: run.isZero ? PageRunFlags.zero : 0)
            }
        } catch {
            if case .dataLengthMismatch = error {
                throw StreamUsageError(.payloadTooLarge(tableLength + Self.dataLength(runs, pageSize: regions[region].pageSize), maxPayload: header.maxPayload))
            }
            throw StreamUsageError(.invalidPageTable(error))
        }
        let record = RecordHeader(
            type: .pages, device: StreamFormat.noDevice, phase: phase.rawValue, payloadLength: UInt32(tableLength + checker.dataBytes),
            sequence: nextSequence, offset: round)
        return PagesPlan(record: record, tableLength: Int(tableLength), dataLength: Int(checker.dataBytes))
    }

    /// The data bytes the runs describe, saturating (for the message about a too-large record).
    private static func dataLength(_ runs: [PageRun], pageSize: UInt32) -> UInt64 {
        var total: UInt64 = 0
        for run in runs where !run.isZero {
            let (sum, overflow) = total.addingReportingOverflow(UInt64(run.pageCount) * UInt64(pageSize))
            if overflow { return .max }
            total = sum
        }
        return total
    }

    private mutating func commitPages(_ record: RecordHeader, phase: StatePhase) -> RecordHeader {
        var sealed = record
        sealed.sequence = takeSequence()
        pageOrder.record(phase: phase, round: record.offset)
        return sealed
    }

    /// The table after the 32-byte record header in `control`.
    private static func writeTable(region: Int, runs: [PageRun], into control: UnsafeMutableRawBufferPointer) {
        var writer = LittleEndianWriter(control, index: StreamFormat.recordHeaderSize)
        writer.write(UInt32(region))
        writer.write(UInt32(runs.count))
        for run in runs {
            writer.write(run.firstPage)
            writer.write(run.pageCount)
            writer.write(run.isZero ? PageRunFlags.zero : 0)
        }
    }
}
