// The control protocol's codec: golden bytes from the independent writer (generate.py), round
// trips, and every refusal a hostile or confused peer can provoke.
import Testing
@testable import VFIOStream

/// Decodes a whole direction of a control connection as the engine reads it.
private func decodeAll(_ bytes: [UInt8], as role: ControlRole) throws(ControlError) -> [ControlMessage] {
    var decoder = ControlDecoder(role: role)
    guard bytes.count >= ControlFormat.prefixSize else { throw decoder.truncated(needed: ControlFormat.prefixSize, available: bytes.count) }
    try decoder.decodePrefix(Array(bytes[0..<ControlFormat.prefixSize]))
    var at = ControlFormat.prefixSize
    var messages: [ControlMessage] = []
    while at < bytes.count {
        let headerEnd = min(bytes.count, at + ControlFormat.messageHeaderSize)
        let head = Array(bytes[at..<headerEnd])
        guard head.count == ControlFormat.messageHeaderSize else {
            throw decoder.truncated(needed: ControlFormat.messageHeaderSize, available: head.count)
        }
        let header = try decoder.decodeMessageHeader(head)
        let payloadEnd = min(bytes.count, headerEnd + header.payloadLength)
        if let message = try decoder.decodeMessage(header, payload: Array(bytes[headerEnd..<payloadEnd])) { messages.append(message) }
        at = payloadEnd
    }
    return messages
}

private func sourceBytes(_ messages: [ControlMessage]) throws -> [UInt8] {
    var encoder = ControlEncoder(role: .source)
    var bytes = encoder.encodePrefix()
    for m in messages { bytes += try encoder.encode(m) }
    return bytes
}

private func targetBytes(_ messages: [ControlMessage]) throws -> [UInt8] {
    var encoder = ControlEncoder(role: .target)
    var bytes = encoder.encodePrefix()
    for m in messages { bytes += try encoder.encode(m) }
    return bytes
}

/// Re-seals the message at `at` after an edit, so a test reaches the check after the CRC.
private func reseal(_ bytes: inout [UInt8], messageAt at: Int) {
    let length = Int(bytes.u32(at + 4))
    bytes.storeLittleEndian(UInt32(0), at: at + 8)
    bytes.storeLittleEndian(CRC32C.checksum(Array(bytes[at..<at + 16 + length])), at: at + 8)
}

@Suite struct ControlCodecTests {
    let proposed = Samples.header11([Samples.pciDevice], channel: StreamChannel(index: 0, count: 2))
    let accepted = StreamHeader(
        creationTimeNanoseconds: 1_700_000_000_123_456_789, maxPayload: 16 << 20, host: HostIdentity(hostName: "dst-host"),
        writer: "vfio-migration test", devices: [Samples.pciDevice], migrationID: Samples.migrationID)

    @Test func sourceSideMatchesTheIndependentWriter() throws {
        let golden = try Fixtures.hex("control-source.hex")
        #expect(try sourceBytes([.propose(proposed), .commit]) == golden)
        #expect(try decodeAll(golden, as: .target) == [.propose(proposed), .commit])
    }

    @Test func targetSideMatchesTheIndependentWriter() throws {
        let golden = try Fixtures.hex("control-target.hex")
        let messages: [ControlMessage] = [
            .accept(accepted), .switchoverAck(device: 0, epoch: 1, offset: 8), .loaded(deviceCount: 1, totalStateBytes: 13, validationNanoseconds: 2_500_000),
            .committed(.running, resumeNanoseconds: 700_000),
        ]
        #expect(try targetBytes(messages) == golden)
        #expect(try decodeAll(golden, as: .source) == messages)
    }

    @Test func refusalMatchesTheIndependentWriter() throws {
        let golden = try Fixtures.hex("control-refused.hex")
        let messages: [ControlMessage] = [.refuse(.incompatible, reason: "device 0: driverName"), .failed(reason: "resume failed")]
        #expect(try targetBytes(messages) == golden)
        #expect(try decodeAll(golden, as: .source) == messages)
    }

    @Test func aRoleSendsOnlyItsOwnMessages() throws {
        var source = ControlEncoder(role: .source)
        #expect(throws: StreamUsageError.self) { try source.encode(.loaded(deviceCount: 1, totalStateBytes: 0, validationNanoseconds: 0)) }
        #expect(source.sequence == 0, "a refused message changes nothing")
        var target = ControlEncoder(role: .target)
        #expect(throws: StreamUsageError.self) { try target.encode(.commit) }
    }

    @Test func longReasonsAreCutAtACharacterBoundary() throws {
        let reason = String(repeating: "é", count: 5000)  // 2 bytes each
        let bytes = try targetBytes([.failed(reason: reason)])
        guard case .failed(let got) = try decodeAll(bytes, as: .source).first else { Issue.record("no failed message"); return }
        #expect(got.utf8.count == ControlFormat.maxReasonLength)
        #expect(got.allSatisfy { $0 == "é" })
    }

    // MARK: refusals

    private func refusal(_ bytes: [UInt8], as role: ControlRole = .source) -> ControlError? {
        do {
            _ = try decodeAll(bytes, as: role)
            return nil
        } catch {
            return error
        }
    }

    @Test func thePrefixIsChecked() throws {
        let good = try targetBytes([])
        var stream = good
        stream[5] = 0x4D  // the stream magic's M: a data channel is not a control connection
        #expect(refusal(stream)?.kind == .badMagic)
        stream = good
        stream[8] = 2
        #expect(refusal(stream)?.kind == .unsupportedMajor(2))
        // Two sources wired to each other, or a target that receives a target.
        #expect(refusal(good, as: .target)?.kind == .wrongRole(expected: .source, found: 2))
        stream = good
        stream[14] = 1
        #expect(refusal(stream)?.kind == .reservedNotZero)
        #expect(refusal(Array(good.prefix(9)))?.kind == .truncated(needed: 16, available: 9))
    }

    @Test func framingIsChecked() throws {
        let good = try targetBytes([.loaded(deviceCount: 1, totalStateBytes: 5, validationNanoseconds: 3), .committed(.stopped, resumeNanoseconds: 0)])
        var bytes = good
        bytes[16 + 4] = 0xFF; bytes[16 + 5] = 0xFF; bytes[16 + 6] = 0xFF; bytes[16 + 7] = 0x7F
        #expect(refusal(bytes)?.kind == .payloadTooLarge(length: 0x7FFF_FFFF, limit: ControlFormat.maxPayload), "before any read")
        bytes = good
        bytes[40] ^= 1
        guard case .checksumMismatch = refusal(bytes)?.kind else { Issue.record("flipped payload bit accepted"); return }
        bytes = good
        bytes[16] = 0; bytes[17] = 0
        reseal(&bytes, messageAt: 16)
        #expect(refusal(bytes)?.kind == .zeroType)
        bytes = good
        bytes[18] = 2
        reseal(&bytes, messageAt: 16)
        #expect(refusal(bytes)?.kind == .unknownFlags(2))
        // The second message replayed in place of the first.
        bytes = good
        bytes.storeLittleEndian(UInt32(1), at: 28)
        reseal(&bytes, messageAt: 16)
        #expect(refusal(bytes)?.kind == .sequenceMismatch(expected: 0, found: 1))
        #expect(refusal(Array(good.dropLast(3)))?.kind == .truncated(needed: 16 + 16, available: 16 + 13))
        #expect(refusal(Array(good.prefix(16 + 10)))?.kind == .truncated(needed: 16, available: 10))
    }

    @Test func unknownTypesAreSkippedOnlyWhenMarked() throws {
        var bytes = try targetBytes([.loaded(deviceCount: 1, totalStateBytes: 5, validationNanoseconds: 3), .committed(.stopped, resumeNanoseconds: 0)])
        bytes[16] = 0x40
        reseal(&bytes, messageAt: 16)
        #expect(refusal(bytes)?.kind == .unsupportedType(0x40))
        bytes[18] = 1  // SKIPPABLE
        reseal(&bytes, messageAt: 16)
        #expect(try decodeAll(bytes, as: .source) == [.committed(.stopped, resumeNanoseconds: 0)], "skipped, and it still counted in the sequence")
    }

    @Test func aMessageOfTheWrongSenderIsRefused() throws {
        // A target's bytes that carry a commit (only sources send it), sealed correctly.
        var bytes = try targetBytes([.committed(.stopped, resumeNanoseconds: 0)])
        bytes[16] = UInt8(ControlMessageType.commit.rawValue)
        bytes.storeLittleEndian(UInt32(0), at: 20)
        bytes.removeLast(16)
        reseal(&bytes, messageAt: 16)
        #expect(refusal(bytes)?.kind == .wrongSender(.commit))
    }

    @Test func payloadsAreChecked() throws {
        func edited(_ message: ControlMessage, _ edit: (inout [UInt8]) -> Void) throws -> ControlError? {
            var bytes = try targetBytes([message])
            edit(&bytes)
            bytes.storeLittleEndian(UInt32(bytes.count - 32), at: 20)
            reseal(&bytes, messageAt: 16)
            return refusal(bytes)
        }
        #expect(try edited(.loaded(deviceCount: 1, totalStateBytes: 5, validationNanoseconds: 3)) { $0.append(0) }?.kind
                == .invalidPayloadLength(.loaded, length: 25, expected: "24"))
        #expect(try edited(.loaded(deviceCount: 1, totalStateBytes: 5, validationNanoseconds: 3)) { $0[32 + 4] = 1 }?.kind == .reservedNotZero)
        #expect(try edited(.switchoverAck(device: 1, epoch: 1, offset: 0)) { $0[32 + 2] = 1 }?.kind == .reservedNotZero)
        #expect(try edited(.committed(.running, resumeNanoseconds: 0)) { $0[32] = 9 }?.kind == .unknownCode(.committed, 9))
        #expect(try edited(.refuse(.limits, reason: "x")) { $0[32] = 0 }?.kind == .unknownCode(.refuse, 0))
        #expect(try edited(.refuse(.limits, reason: "x")) { $0.removeLast(2) }?.kind
                == .invalidPayloadLength(.refuse, length: 3, expected: "at least 4"))
        #expect(try edited(.failed(reason: "ok")) { $0[32] = 0xC3; $0[33] = 0x28 }?.kind == .invalidUTF8(.failed))
        #expect(try edited(.failed(reason: "")) { $0 += [UInt8](repeating: 0x41, count: ControlFormat.maxReasonLength + 1) }?.kind
                == .invalidPayloadLength(.failed, length: ControlFormat.maxReasonLength + 1, expected: "at most \(ControlFormat.maxReasonLength)"))
    }

    @Test func anEmbeddedHeaderIsCheckedByTheStreamCodec() throws {
        func edited(_ edit: (inout [UInt8]) -> Void) throws -> ControlError? {
            var bytes = try targetBytes([.accept(accepted)])
            edit(&bytes)
            bytes.storeLittleEndian(UInt32(bytes.count - 32), at: 20)
            reseal(&bytes, messageAt: 16)
            return refusal(bytes)
        }
        // A flipped bit inside the embedded header: the stream codec's header CRC catches it.
        guard case .embeddedHeader(.accept, let inner)? = try edited({ $0[32 + 50] ^= 1 })?.kind,
              case .headerChecksumMismatch = inner.kind else { Issue.record("corrupt embedded header accepted"); return }
        // Bytes after the embedded header, or a header cut short.
        guard case .embeddedHeader(.accept, let trailing)? = try edited({ $0.append(0) })?.kind, trailing.kind == .trailingData else {
            Issue.record("bytes after an embedded header accepted"); return
        }
        guard case .embeddedHeader(.accept, let short)? = try edited({ $0.removeLast() })?.kind, case .truncated = short.kind else {
            Issue.record("a short embedded header accepted"); return
        }
        guard case .embeddedHeader(.accept, let tiny)? = try edited({ $0.removeLast($0.count - 40) })?.kind, case .truncated = tiny.kind else {
            Issue.record("an 8-byte embedded header accepted"); return
        }
    }

    @Test func everyTruncationOfAGoodConversationIsRefused() throws {
        let good = try targetBytes([
            .accept(accepted), .switchoverAck(device: 0, epoch: 1, offset: 8), .loaded(deviceCount: 1, totalStateBytes: 13, validationNanoseconds: 9), .committed(.running, resumeNanoseconds: 1),
        ])
        var boundaries: Set<Int> = [16]
        var at = 16
        while at < good.count {
            at += 16 + Int(good.u32(at + 4))
            boundaries.insert(at)
        }
        for cut in 0..<good.count {
            let error = refusal(Array(good.prefix(cut)))
            if boundaries.contains(cut) {
                #expect(error == nil, "a cut at a message boundary (\(cut)) is a shorter conversation, not an error")
            } else {
                guard case .truncated? = error?.kind else { Issue.record("cut at \(cut): \(String(describing: error))"); continue }
            }
        }
    }
}
