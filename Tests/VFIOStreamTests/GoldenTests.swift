// The Swift codec against bytes from the independent writer (Fixtures/generate.py).
import Foundation
import Testing
@testable import VFIOStream

@Suite("Golden bytes")
struct GoldenTests {
    @Test("header with one PCI device")
    func headerOneDevice() throws {
        let golden = try Fixtures.hex("header-1dev.hex")
        let header = Samples.header([Samples.pciDevice])
        #expect(try header.encoded() == golden)
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(golden) == header)
        #expect(decoder.headerLength == golden.count)
    }

    @Test("header with a PCI device and an mdev")
    func headerTwoDevices() throws {
        let golden = try Fixtures.hex("header-2dev.hex")
        let header = Samples.header([Samples.pciDevice, Samples.mdevDevice])
        #expect(try header.encoded() == golden)
        var decoder = StreamDecoder()
        let decoded = try decoder.decodeHeader(golden)
        #expect(decoded == header)
        #expect(decoded.devices[1].mdev?.attributes.map(\.value) == ["5", "0x47", "0xff"])
    }

    @Test("every record type, one device")
    func recordsOneDevice() throws {
        let golden = try Fixtures.hex("header-1dev.hex") + Fixtures.hex("records-1dev.hex")
        #expect(try Samples.oneDeviceStream() == golden)
        let outcome = read(golden)
        #expect(outcome.error == nil)
        #expect(outcome.records.map(\.record) == [
            .preCopyProgress(PreCopyProgress(device: 0, offset: 0, initialBytes: 8, dirtyBytes: 0)),
            .deviceState(DeviceStateChunk(device: 0, phase: .preCopy, offset: 0, length: 8)),
            .deviceState(DeviceStateChunk(device: 0, phase: .stopCopy, offset: 8, length: 5)),
            .endOfDevice(DeviceTotals(device: 0, preCopyBytes: 8, stopCopyBytes: 5, chunkCount: 2)),
            .endOfStream(StreamTotals(deviceCount: 1, totalStateBytes: 13, recordCount: 4)),
        ])
        #expect(Array(golden[outcome.records[1].payload]) == Array("pre-copy".utf8))
        #expect(Array(golden[outcome.records[2].payload]) == Array("state".utf8))
    }

    @Test("two devices interleaved")
    func recordsTwoDevices() throws {
        let golden = try Fixtures.hex("header-2dev.hex") + Fixtures.hex("records-2dev.hex")
        #expect(try Samples.twoDeviceStream() == golden)
        let summary = try StreamReader.verify(golden)
        #expect(summary.devices.map(\.totals) == [
            DeviceTotals(device: 0, preCopyBytes: 4, stopCopyBytes: 2, chunkCount: 2),
            DeviceTotals(device: 1, preCopyBytes: 0, stopCopyBytes: 3, chunkCount: 1),
        ])
        #expect(summary.totalStateBytes == 9 && summary.recordCount == 6 && summary.complete)
        #expect(summary.streamLength == UInt64(golden.count))
    }

    @Test("a later writer's stream with skippable extensions is read (minor 1, readerMinor 0)")
    func newerMinorSkippable() throws {
        let golden = try Fixtures.hex("stream-v1.1-skippable.hex")
        let outcome = read(golden)
        #expect(outcome.error == nil)
        #expect(outcome.header?.version == FormatVersion(major: 1, minor: 1, readerMinor: 0))
        #expect(outcome.records.map(\.record) == [
            .skipped(type: RecordType(rawValue: 0x0106), length: 5),
            .endOfStream(StreamTotals(deviceCount: 0, totalStateBytes: 0, recordCount: 1)),
        ])
        #expect(outcome.summary?.skippedRecords == 1)
    }

    // MARK: v1.1

    @Test("v1.1 device-only stream: readerMinor 0, skippable digest, byte for byte")
    func deviceOnly11() throws {
        let golden = try Fixtures.hex("stream-v1.1-1dev.hex")
        #expect(try Samples.oneDeviceStream11() == golden)
        let outcome = read(golden)
        #expect(outcome.error == nil)
        // What a 1.0 reader needs: it may read this stream (readerMinor 0) and skips type 6.
        #expect(outcome.header?.version == FormatVersion(major: 1, minor: 1, readerMinor: 0))
        #expect(golden[16] == 0 && golden[17] == 0)
        let digestRecord = try #require(outcome.records.first { $0.header.type == .deviceDigest })
        #expect(digestRecord.header.flags.contains(.skippable))
        #expect(outcome.records.map(\.record).contains(.deviceDigest(DeviceDigest(
            device: 0, offset: 13, descriptorCRC: CRC32C.checksum(Samples.pciDevice.encodedFields()),
            dataCRC: CRC32C.checksum(Array("pre-copystate".utf8)), dataVerified: true))))
        // The same records as the 1.0 fixture otherwise (its end-of-stream counts one record less).
        let v10 = read(try Samples.oneDeviceStream()).records.map(\.record).dropLast()
        #expect(outcome.records.map(\.record).dropLast().filter { if case .deviceDigest = $0 { return false } else { return true } } == Array(v10))
    }

    @Test("v1.1 pages stream: header with id and regions, data and ZERO runs, both phases")
    func pages11() throws {
        let golden = try Fixtures.hex("stream-v1.1-pages.hex")
        #expect(try Samples.pagesStream() == golden)
        for inPieces in [false, true] {
            let outcome = read(golden, pagesInPieces: inPieces)
            #expect(outcome.error == nil)
            let header = try #require(outcome.header)
            #expect(header.version == FormatVersion(major: 1, minor: 1, readerMinor: 1))
            #expect(header.migrationID == Samples.migrationID && header.regions == Samples.regions && header.channel == nil)
            let pages = outcome.records.compactMap { item -> (PageTable, [UInt8])? in
                guard case .pages(let table) = item.record else { return nil }
                return (table, Array(golden[(item.payload.lowerBound + table.tableLength)..<item.payload.upperBound]))
            }
            #expect(pages.map(\.0.runs) == [
                [PageRun(firstPage: 0, pageCount: 1), PageRun(firstPage: 2, pageCount: 3, isZero: true)],
                [PageRun(firstPage: 0, pageCount: 2, isZero: true)],
                [PageRun(firstPage: 0, pageCount: 1, isZero: true), PageRun(firstPage: 5, pageCount: 1)],
            ])
            #expect(pages.map(\.0.region) == [0, 1, 0] && pages.map(\.0.round) == [0, 1, 2])
            #expect(pages.map(\.0.phase) == [.preCopy, .preCopy, .stopCopy])
            #expect(pages.map(\.1) == [Samples.page(0), [], Samples.page(5)])
            let placements = Array(pages[2].0.placements)
            #expect(placements.map(\.regionBytes) == [0..<4096, 20480..<24576] && placements.map(\.dataBytes) == [0..<0, 0..<4096])
            let summary = try #require(outcome.summary)
            #expect(summary.regions == [
                RegionSummary(region: 0, preCopy: PageCounts(records: 1, dataPages: 1, zeroPages: 3), stopCopy: PageCounts(records: 1, dataPages: 1, zeroPages: 1)),
                RegionSummary(region: 1, preCopy: PageCounts(records: 1, dataPages: 0, zeroPages: 2)),
            ])
            #expect(summary.lastRound == 2 && summary.complete && summary.totalStateBytes == 13)
        }
    }

    @Test("v1.1 channels: two streams of one migration, data split, digest on channel 0")
    func channels11() throws {
        var chunks: [(offset: UInt64, bytes: [UInt8])] = []
        var digest: DeviceDigest?
        for index: UInt16 in [0, 1] {
            let golden = try Fixtures.hex("stream-v1.1-channel\(index).hex")
            #expect(try Samples.channelStream(index) == golden, "channel \(index)")
            let outcome = read(golden)
            #expect(outcome.error == nil, "channel \(index)")
            #expect(outcome.header?.channel == StreamChannel(index: index, count: 2))
            #expect(outcome.header?.migrationID == Samples.migrationID)
            for item in outcome.records {
                switch item.record {
                case .deviceState(let chunk): chunks.append((chunk.offset, Array(golden[item.payload])))
                case .deviceDigest(let found): digest = found
                case .endOfDevice(let totals): #expect(item.header.offset == 10 && totals.chunkCount == (index == 0 ? 2 : 1))
                default: break
                }
            }
        }
        // What the reassembler does: the union is contiguous, and its CRC is the digest's.
        let ordered = chunks.sorted { $0.offset < $1.offset }
        #expect(ordered.map(\.offset) == [0, 5, 8])
        #expect(ordered.flatMap(\.bytes) == Samples.channelData)
        let found = try #require(digest)
        #expect(!found.dataVerified && found.offset == 10)
        #expect(found.dataCRC == CRC32C.checksum(ordered.flatMap(\.bytes)))
    }

    @Test("v1.1 without record checksums: CRCs 0; refused by default, read when accepted")
    func noRecordChecksums11() throws {
        let golden = try Fixtures.hex("stream-v1.1-nocrc.hex")
        #expect(try Samples.noChecksumStream() == golden)
        #expect(read(golden).error == StreamError(offset: 0, kind: .recordChecksumsNotAccepted))
        let outcome = read(golden, limits: acceptingUnchecked)
        #expect(outcome.error == nil)
        #expect(outcome.records.allSatisfy { $0.header.checksum == 0 })
        #expect(outcome.header?.version.readerMinor == 1 && outcome.header?.hasRecordChecksums == false)
        guard case .deviceDigest(let digest)? = outcome.records.dropLast(2).last?.record else {
            Issue.record("no digest where expected")
            return
        }
        #expect(digest.dataCRC == 0 && !digest.dataVerified)
        #expect(digest.descriptorCRC == CRC32C.checksum(Samples.mdevDevice.encodedFields()))
    }

    @Test("v1.0 captures of the file tools still decode")
    func v10Captures() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("VFIOMigrationTests/Fixtures")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".vfiomig") }
        #expect(!names.isEmpty)
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            // Captured by the 1.0 writer (minor 0); a later regeneration may raise the minor.
            let summary = try StreamReader.verify(bytes)
            #expect(summary.complete, "\(name), minor \(summary.header.version.minor)")
        }
    }
}
