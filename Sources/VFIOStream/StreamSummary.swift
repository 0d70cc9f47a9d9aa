// What a decoder has counted: the summary `inspect` and `verify` print (Codable for --json).

/// Per-device counters.
public struct DeviceSummary: Sendable, Hashable, Codable {
    public var device: Int
    public var preCopyBytes: UInt64
    public var stopCopyBytes: UInt64
    public var chunkCount: UInt64
    public var progressRecords: UInt64
    public var lastProgress: PreCopyProgress?
    public var ended: Bool
    /// The device's digest record, once seen.
    public var digest: DeviceDigest?

    public var totals: DeviceTotals {
        DeviceTotals(device: device, preCopyBytes: preCopyBytes, stopCopyBytes: stopCopyBytes, chunkCount: chunkCount)
    }
}

/// Pages records of one region in one phase.
public struct PageCounts: Sendable, Hashable, Codable {
    public var records: UInt64 = 0
    /// Pages whose data the records carried.
    public var dataPages: UInt64 = 0
    /// Pages marked ZERO (no data carried).
    public var zeroPages: UInt64 = 0

    public init(records: UInt64 = 0, dataPages: UInt64 = 0, zeroPages: UInt64 = 0) {
        self.records = records
        self.dataPages = dataPages
        self.zeroPages = zeroPages
    }
}

/// Per memory region: pages records while the guest ran (phase 1) and after the stop (phase 2).
public struct RegionSummary: Sendable, Hashable, Codable {
    public var region: Int
    public var preCopy = PageCounts()
    public var stopCopy = PageCounts()

    public init(region: Int, preCopy: PageCounts = PageCounts(), stopCopy: PageCounts = PageCounts()) {
        self.region = region
        self.preCopy = preCopy
        self.stopCopy = stopCopy
    }

    mutating func count(phase: StatePhase, dataPages: UInt64, zeroPages: UInt64) {
        if phase == .preCopy { preCopy.add(dataPages: dataPages, zeroPages: zeroPages) } else { stopCopy.add(dataPages: dataPages, zeroPages: zeroPages) }
    }
}

extension PageCounts {
    /// Saturating: a hostile stream may resend a huge region's ZERO runs until a count would wrap.
    mutating func add(dataPages: UInt64, zeroPages: UInt64) {
        records += 1
        let (pages, pagesOverflow) = self.dataPages.addingReportingOverflow(dataPages)
        self.dataPages = pagesOverflow ? .max : pages
        let (zeros, zerosOverflow) = self.zeroPages.addingReportingOverflow(zeroPages)
        self.zeroPages = zerosOverflow ? .max : zeros
    }
}

/// What a stream holds, for `inspect` and `verify`.
public struct StreamSummary: Sendable, Hashable, Codable {
    public var header: StreamHeader
    public var headerLength: Int
    /// Bytes consumed so far (the whole stream, once complete).
    public var streamLength: UInt64
    /// Records accepted, skipped ones included (the end-of-stream record too, once seen).
    public var recordCount: UInt64
    public var skippedRecords: UInt64
    public var totalStateBytes: UInt64
    public var complete: Bool
    public var devices: [DeviceSummary]
    /// One per memory region of the header.
    public var regions: [RegionSummary]
    /// The round of the last pages record, if any.
    public var lastRound: UInt64?
}
