// The resume side of the mock vendor format: consumes the stream as it arrives (in any
// chunking), checks every record and every payload byte against the content the record
// claims, and stages the state it describes. The device adopts the staged state only if the
// whole stream passes at RESUMING → STOP.
//
// Two entry points: whole words (the piped session's consumer, generated content) and raw
// bytes (the fast session's writes, pooled content). A header may appear again after the
// first one (REINIT): the state it announces replaces what was staged so far.

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
    /// Headers accepted (more than one after a REINIT).
    private(set) var headers = 0
    /// A pool to reuse when a header announces content the device already holds.
    private let knownPool: StatePool?

    // The block whose payload is being checked.
    private var block = 0
    private var version: UInt64 = 0
    private var key: UInt64 = 0
    private var byteLength = 0
    private var wordIndex = 0
    private var wordCount = 0

    // Byte entry point: a word being assembled, and the payload position in bytes.
    private var partialWord: UInt64 = 0
    private var partialBytes = 0
    private var payloadByte = 0

    init(identity: MockStateFormat.Identity, knownPool: StatePool? = nil) {
        self.identity = identity
        self.knownPool = knownPool
    }

    var hasFailed: Bool { phase == .failed }

    private mutating func fail(_ reason: String) {
        phase = .failed
        failure = reason
    }

    // MARK: words (generated content)

    /// Consumes `words[range]`, the next whole words of the stream.
    mutating func consume(_ words: [UInt64], _ range: Range<Int>) {
        var i = range.lowerBound
        while i < range.upperBound, accepting() {
            switch phase {
            case .failed, .ended:
                return
            case .header, .recordHeader:
                take(word: words[i])
                i += 1
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

    // MARK: bytes (pooled content)

    /// Consumes `bytes`, the next bytes of the stream, in any split.
    mutating func consume(bytes: [UInt8]) {
        precondition(identity.pooled, "byte input is for pooled content")
        var i = 0
        while i < bytes.count, accepting() {
            switch phase {
            case .failed, .ended:
                return
            case .header, .recordHeader:
                partialWord |= UInt64(bytes[i]) << (8 * UInt64(partialBytes))
                partialBytes += 1
                i += 1
                if partialBytes == 8 {
                    let word = partialWord
                    partialWord = 0
                    partialBytes = 0
                    take(word: word)
                }
            case .payload:
                let padded = MockStateFormat.paddedLength(byteLength)
                let n = min(bytes.count - i, padded - payloadByte)
                let content = max(0, min(n, byteLength - payloadByte))
                if content > 0, let pool = staged?.pool,
                   !pool.matches(bytes, from: i, count: content, at: pool.offset(key: key) + payloadByte) {
                    fail("block \(block) payload does not match its version (altered data)")
                    return
                }
                for j in content..<n where bytes[i + j] != 0 {
                    fail("block \(block) padding is not zero (altered data)")
                    return
                }
                i += n
                payloadByte += n
                if payloadByte == padded { acceptPayload() }
            }
        }
    }

    // MARK: records

    /// False once the stream failed; more data after the end record fails it.
    private mutating func accepting() -> Bool {
        if phase == .ended { fail("data after the end record") }
        return phase != .failed
    }

    private mutating func take(word: UInt64) {
        if phase == .recordHeader && pending.isEmpty && word == MockStateFormat.magic {
            phase = .header // a REINIT: the device's header again
        }
        pending.append(word)
        if phase == .header && pending.count == MockStateFormat.headerWords {
            acceptHeader()
        } else if phase == .recordHeader && pending.count == MockStateFormat.recordHeaderWords {
            acceptRecordHeader()
        }
    }

    private mutating func acceptHeader() {
        switch MockStateFormat.parseHeader(pending, expecting: identity) {
        case .failure(let problem):
            fail(headers == 0 ? problem.description : "header after REINIT: \(problem.description)")
        case .success(let header):
            salt = header.salt
            let image = DeviceStateImage(size: identity.stateSize, blockSize: identity.blockSize, contentSeed: header.seed,
                                         pooled: identity.pooled, reusing: staged?.pool ?? knownPool)
            received = [UInt64](repeating: 0, count: (image.blockCount + 63) / 64)
            receivedCount = 0
            blockRecords = 0
            staged = image
            headers += 1
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
            payloadByte = 0
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

    /// True once the first header arrived and was accepted (the fast session's write check).
    var firstHeaderAccepted: Bool { headers > 0 }

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
