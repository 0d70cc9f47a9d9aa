// The Swift codec against bytes from the independent writer (Fixtures/generate.py).
import Testing
@testable import VFIOStream

@Suite("Golden bytes")
struct GoldenTests {
    @Test("header with one PCI device")
    func headerOneDevice() throws {
        let golden = try Fixtures.hex("header-1dev.hex")
        let header = Samples.header([Samples.pciDevice])
        #expect(header.encoded() == golden)
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(golden) == header)
        #expect(decoder.headerLength == golden.count)
    }

    @Test("header with a PCI device and an mdev")
    func headerTwoDevices() throws {
        let golden = try Fixtures.hex("header-2dev.hex")
        let header = Samples.header([Samples.pciDevice, Samples.mdevDevice])
        #expect(header.encoded() == golden)
        var decoder = StreamDecoder()
        let decoded = try decoder.decodeHeader(golden)
        #expect(decoded == header)
        #expect(decoded.devices[1].mdev?.attributes.map(\.value) == ["5", "0x47", "0xff"])
    }

    @Test("every record type, one device")
    func recordsOneDevice() throws {
        let golden = try Fixtures.hex("header-1dev.hex") + Fixtures.hex("records-1dev.hex")
        #expect(Samples.oneDeviceStream() == golden)
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
        #expect(Samples.twoDeviceStream() == golden)
        let summary = try StreamReader.verify(golden)
        #expect(summary.devices.map(\.totals) == [
            DeviceTotals(device: 0, preCopyBytes: 4, stopCopyBytes: 2, chunkCount: 2),
            DeviceTotals(device: 1, preCopyBytes: 0, stopCopyBytes: 3, chunkCount: 1),
        ])
        #expect(summary.totalStateBytes == 9 && summary.recordCount == 6 && summary.complete)
        #expect(summary.streamLength == UInt64(golden.count))
    }

    @Test("a 1.1 writer's stream with skippable extensions is read by this 1.0 reader")
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
}
