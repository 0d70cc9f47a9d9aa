// The resume side of the mock vendor format: consumes stream words as they arrive (in any
// chunking), checks every record and every payload word against the content function, and
// stages the state it describes. The device adopts the staged state only if the whole stream
// passes at RESUMING → STOP.

struct MockStateParser {
    private enum Phase { case header, recordHeader, payload, ended, failed }

    let identity: MockStateFormat.Identity
    private var phase: Phase = .header
    private var pending: [UInt64] = []
    private var salt: UInt64 = 0
    private(set) var staged: DeviceStateImage?
    private var received: [UInt64] = []
    private var receivedCount = 0
    private var blockRecords: UInt64 = 0
    private var endDigest: UInt64 = 0
    private(set) var failure: String?

    // The block whose payload is being checked.
    private var block = 0
    private var version: UInt64 = 0
    private var key: UInt64 = 0
    private var byteLength = 0
    private var wordIndex = 0
    private var wordCount = 0

    init(identity: MockStateFormat.Identity) { self.identity = identity }

    var hasFailed: Bool { phase == .failed }

    private mutating func fail(_ reason: String) {
        phase = .failed
        failure = reason
    }

    /// Consumes `words[range]`, the next whole words of the stream.
    mutating func consume(_ words: [UInt64], _ range: Range<Int>) {
        var i = range.lowerBound
        while i < range.upperBound {
            switch phase {
            case .failed:
                return
            case .ended:
                fail("data after the end record")
                return
            case .header:
                pending.append(words[i])
                i += 1
                if pending.count == MockStateFormat.headerWords { acceptHeader() }
            case .recordHeader:
                pending.append(words[i])
                i += 1
                if pending.count == MockStateFormat.recordHeaderWords { acceptRecordHeader() }
            case .payload:
                let n = min(range.upperBound - i, wordCount - wordIndex)
                if !BlockContent.matches(words, from: i, count: n, key: key, wordOffset: wordIndex, byteLength: byteLength) {
                    fail("block \(block) payload does not match its version (altered data)")
                    return
                }
                i += n
                wordIndex += n
                if wordIndex == wordCount { acceptPayload() }
            }
        }
    }

    private mutating func acceptHeader() {
        switch MockStateFormat.parseHeader(pending, expecting: identity) {
        case .failure(let problem):
            fail(problem.description)
        case .success(let header):
            salt = header.salt
            let image = DeviceStateImage(size: identity.stateSize, blockSize: identity.blockSize, contentSeed: header.seed)
            received = [UInt64](repeating: 0, count: (image.blockCount + 63) / 64)
            staged = image
            phase = .recordHeader
        }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func acceptRecordHeader() {
        let w = pending
        pending.removeAll(keepingCapacity: true)
        guard MockStateFormat.recordHeader(kind: w[0] & 0xFFFF_FFFF, payloadLength: Int(w[0] >> 32), index: w[1], value: w[2], salt: salt).3 == w[3] else {
            fail("record \(blockRecords) header check word mismatch (altered data)")
            return
        }
        let kind = w[0] & 0xFFFF_FFFF
        let image = staged!
        switch kind {
        case MockStateFormat.kindBlock:
            guard w[1] < UInt64(image.blockCount) else { fail("block index \(w[1]) outside the state"); return }
            block = Int(w[1])
            byteLength = Int(w[0] >> 32)
            guard byteLength == image.blockLength(block) else { fail("block \(block) has length \(byteLength), expected \(image.blockLength(block))"); return }
            version = w[2]
            key = image.key(of: block, version: version)
            wordIndex = 0
            wordCount = MockStateFormat.paddedLength(byteLength) / 8
            phase = .payload
            if wordCount == 0 { acceptPayload() }
        case MockStateFormat.kindEnd:
            guard w[1] == blockRecords else { fail("end record counts \(w[1]) blocks, stream had \(blockRecords)"); return }
            endDigest = w[2]
            phase = .ended
        default:
            fail("unknown record kind \(kind)")
        }
    }

    private mutating func acceptPayload() {
        staged!.setVersion(version, of: block)
        if received[block / 64] & (1 << UInt64(block % 64)) == 0 {
            received[block / 64] |= 1 << UInt64(block % 64)
            receivedCount += 1
        }
        blockRecords += 1
        phase = .recordHeader
    }

    /// The final check at RESUMING → STOP: the staged state, or why the stream is refused.
    func finish(totalBytes: UInt64) -> Result<DeviceStateImage, ResumeRefusal> {
        if let failure { return .failure(ResumeRefusal(reason: failure)) }
        switch phase {
        case .header where totalBytes == 0:
            return .failure(ResumeRefusal(reason: "no data was written"))
        case .header, .recordHeader, .payload:
            return .failure(ResumeRefusal(reason: "stream truncated after \(totalBytes) bytes"))
        case .failed:
            return .failure(ResumeRefusal(reason: "stream refused"))
        case .ended:
            break
        }
        let image = staged!
        guard receivedCount == image.blockCount else {
            return .failure(ResumeRefusal(reason: "stream covers \(receivedCount) of \(image.blockCount) blocks"))
        }
        guard image.digest == endDigest else {
            return .failure(ResumeRefusal(reason: "restored state digest does not match the stream's end record"))
        }
        return .success(image)
    }
}

/// Why a resume stream was refused (kept for tests and messages).
struct ResumeRefusal: Error, Equatable {
    var reason: String
}
