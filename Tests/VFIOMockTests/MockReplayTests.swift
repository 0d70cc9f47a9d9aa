// `mock:NAME?replay=FILE`: a source device that serves a captured stream's device bytes with
// the capture's chunking, phases, PRECOPY_INFO readings, flags, PCI identity and size estimate;
// bad captures are spec errors that name the file.
import Foundation
import SystemPackage
import Testing
import VFIOMock
import VFIOStream
import VFIOSyscalls

/// A vfio-migration stream file written for one test, removed when the test ends.
final class CaptureFile {
    let path: String

    init(_ bytes: [UInt8]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mock-replay-\(UUID().uuidString).vfiomig").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A stream of `devices`; `records` appends each device's records in stream order.
    static func stream(_ devices: [DeviceDescriptor], _ records: (inout StreamEncoder, inout [UInt8]) throws -> Void) throws -> [UInt8] {
        var encoder = try StreamEncoder(header: StreamHeader(creationTimeNanoseconds: 0, devices: devices))
        var bytes = encoder.encodeHeader()
        try records(&encoder, &bytes)
        for device in devices.indices {
            try encoder.appendDeviceDigest(device: device, to: &bytes)
            try encoder.appendEndOfDevice(device: device, to: &bytes)
        }
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }
}

enum Captured {
    /// A device as a capture from real hardware describes it.
    static func nic(flags: MigrationFlags = [.stopCopy, .p2p, .preCopy], size: UInt64? = 5000) -> DeviceDescriptor {
        DeviceDescriptor(
            name: "0000:3b:00.2", deviceAPI: "vfio-pci", driverName: "mlx5_vfio_pci", driverVersion: "6.1.0-18",
            pci: PCIIdentity(vendorID: 0x15B3, deviceID: 0x101E, subsystemVendorID: 0x15B3, subsystemDeviceID: 0x0063,
                             revision: 0x02, classCode: 0x020000),
            migrationFlags: flags, expectedStateSize: size, vendorCompatibility: "cx7 fw 28.39")
    }

    static func bytes(_ count: Int, _ seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed } }

    static let pre1 = bytes(1000, 1), pre2 = bytes(3000, 2), stop1 = bytes(500, 3), stop2 = bytes(1500, 4)

    /// Two pre-copy chunks with a reading before each, then two stop-copy chunks.
    static func nicStream(progress: Bool = true, size: UInt64? = 5000) throws -> [UInt8] {
        try CaptureFile.stream([nic(size: size)]) { encoder, bytes in
            if progress { try encoder.appendPreCopyProgress(device: 0, initialBytes: 3000, dirtyBytes: 1000, to: &bytes) }
            try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: pre1, to: &bytes)
            if progress { try encoder.appendPreCopyProgress(device: 0, initialBytes: 2000, dirtyBytes: 1000, to: &bytes) }
            try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: pre2, to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: stop1, to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: stop2, to: &bytes)
        }
    }
}

@Suite struct MockReplayTests {
    @Test func aReplayDeviceServesTheCapturedChunksPhasesAndReadings() throws {
        let capture = try CaptureFile(try Captured.nicStream())
        let kernel = MockKernel()
        let opened = try Opened("mock:r?replay=\(capture.path)", kernel: kernel)
        defer { try? opened.close() }
        #expect(try opened.feature(R.get | 1, payload: 8).u64(8) == 0x7)
        #expect(try opened.feature(R.get | 9, payload: 8).u64(8) == 5000) // the capture's estimate
        var config = [UInt8](repeating: 0, count: 12)
        #expect(try kernel.preadBytes(opened.fd, into: &config, offset: 7 << 40) == 12)
        #expect(config == [0xB3, 0x15, 0x1E, 0x10, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0x02])
        #expect(opened.device.configuration.driverName == "mlx5_vfio_pci")
        #expect(opened.device.configuration.vendorCompatibility == "cx7 fw 28.39")

        let data = try opened.set(.preCopy)
        #expect(kernel.emulatorDescriptorCount == 5) // container, group, device, data fd, the capture
        #expect(kernel.liveThreadCount == 0)
        #expect(try opened.precopyInfo(data) == (3000, 1000))
        #expect(try opened.readOnce(data, 1 << 20) == Captured.pre1) // a read ends with its chunk
        #expect(try opened.precopyInfo(data) == (2000, 1000))
        #expect(try opened.readOnce(data, 700) == Array(Captured.pre2[0..<700]))
        #expect(try opened.precopyInfo(data) == (1300, 1000))
        #expect(try opened.readOnce(data, 1 << 20) == Array(Captured.pre2[700...]))
        // The reading said 1000 dirty bytes more, but phase 1 is over: both 0, like the read.
        #expect(try opened.precopyInfo(data) == (0, 0))
        expectErrno(.noMessage) { _ = try opened.readOnce(data, 4096) }

        try opened.set(.stopCopy)
        #expect(try opened.readOnce(data, 1 << 20) == Captured.stop1)
        #expect(try opened.readOnce(data, 1 << 20) == Captured.stop2)
        #expect(try opened.readOnce(data, 1 << 20).isEmpty) // EOF
        try opened.set(.stop)
        expectErrno(.noDevice) { _ = try opened.readOnce(data, 16) }
        #expect(kernel.emulatorDescriptorCount == 4) // the session closed the capture
        try kernel.close(data)
    }

    @Test func withoutReadingsInitialBytesAreThePhaseOneBytesLeft() throws {
        let capture = try CaptureFile(try Captured.nicStream(progress: false, size: nil))
        let opened = try Opened("mock:r?replay=\(capture.path)")
        defer { try? opened.close() }
        #expect(try opened.feature(R.get | 9, payload: 8).u64(8) == 2000) // the phase-2 total
        #expect(opened.device.stateSize == 6000)
        let data = try opened.set(.preCopy)
        #expect(try opened.precopyInfo(data) == (4000, 0))
        _ = try opened.readOnce(data, 1 << 20)
        #expect(try opened.precopyInfo(data) == (3000, 0))
        try opened.set(.running)
        try opened.kernel.close(data)
    }

    @Test func stopCopyAloneServesEveryChunkAndEachSessionStartsOver() throws {
        let capture = try CaptureFile(try Captured.nicStream())
        let opened = try Opened("mock:r?replay=\(capture.path)&short-read=600")
        defer { try? opened.close() }
        for _ in 0..<2 {
            try opened.set(.stop)
            let data = try opened.set(.stopCopy)
            var reads: [Int] = []
            var stream: [UInt8] = []
            while true {
                let chunk = try opened.readOnce(data, 1 << 20)
                if chunk.isEmpty { break }
                reads.append(chunk.count)
                stream += chunk
            }
            #expect(reads == [600, 400, 600, 600, 600, 600, 600, 500, 600, 600, 300])
            #expect(stream == Captured.pre1 + Captured.pre2 + Captured.stop1 + Captured.stop2)
            try opened.set(.stop)
            try opened.kernel.close(data)
            try opened.set(.running)
        }
        #expect(opened.kernel.emulatorDescriptorCount == 3)
    }

    @Test func aVersion10CaptureWithoutDigestsReplaysToo() throws {
        var encoder = try StreamEncoder(header: StreamHeader(
            version: FormatVersion(major: 1, minor: 0, readerMinor: 0), creationTimeNanoseconds: 0, devices: [Captured.nic()]))
        var bytes = encoder.encodeHeader()
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Captured.stop2, to: &bytes)
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        let capture = try CaptureFile(bytes)
        let opened = try Opened("mock:r?replay=\(capture.path)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        #expect(try opened.kernel.readAll(data) == Captured.stop2)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test func aStreamOfSeveralDevicesNeedsReplayDevice() throws {
        let other = Captured.nic(flags: [.stopCopy], size: nil)
        let capture = try CaptureFile(try CaptureFile.stream([Captured.nic(), other]) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Captured.pre1, to: &bytes)
            try encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: Captured.stop1, to: &bytes)
        })
        #expect(throws: MockSpecError.self) { try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)") }
        do {
            _ = try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)")
        } catch {
            #expect(error.message.contains(capture.path) && error.message.contains("2 devices") && error.message.contains("replay-device"))
        }
        let second = try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)&replay-device=1")
        #expect(second.migrationFlags == 0x1)
        #expect(second.spec == "mock:r?replay=\(capture.path)&replay-device=1")
        #expect(try MockDeviceConfiguration(spec: second.spec) == second)
        let opened = try Opened(second.spec)
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        #expect(try opened.kernel.readAll(data) == Captured.stop1)
        try opened.set(.stop)
        try opened.kernel.close(data)
        do {
            _ = try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)&replay-device=2")
            Issue.record("device 2 of a 2-device stream was accepted")
        } catch {
            #expect(error.message.contains("replay-device=2"))
        }
    }

    @Test func badCapturesAreSpecErrorsNamingTheFileAndTheProblem() throws {
        let good = try Captured.nicStream()
        var flipped = good
        flipped[flipped.count - 200] ^= 0x10
        let cases: [([UInt8]?, String)] = [
            (nil, "ENOENT"),
            (Array(good.dropLast(10)), "corrupt capture"),
            (flipped, "corrupt capture"),
            (Array("not a stream at all, just text".utf8), "corrupt capture"),
            (good + [0], "corrupt capture"),
        ]
        for (bytes, problem) in cases {
            let file = try bytes.map { try CaptureFile($0) }
            let path = file?.path ?? "/nonexistent/capture.vfiomig"
            do {
                _ = try MockDeviceConfiguration(spec: "mock:r?replay=\(path)")
                Issue.record("\(problem): the capture was accepted")
            } catch {
                #expect(error.message.contains(path), "\(error)")
                #expect(error.message.contains(problem), "\(error)")
            }
        }
    }

    @Test func whatTheCaptureDecidesCannotBeGivenToo() throws {
        let capture = try CaptureFile(try Captured.nicStream())
        for option in ["flags=stop-copy", "state=1MiB", "vendor=0x8086", "source=fast", "reinit-after=1MiB", "dirty-rate=0"] {
            do {
                _ = try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)&\(option)")
                Issue.record("\(option) was accepted with replay")
            } catch {
                #expect(error.message.contains("comes from the capture"), "\(error)")
            }
        }
        #expect(throws: MockSpecError.self) { try MockDeviceConfiguration(spec: "mock:r?replay-device=0") }
        let c = try MockDeviceConfiguration(spec: "mock:r?replay=\(capture.path)&short-read=1KiB")
        #expect(c.spec == "mock:r?replay=\(capture.path)&short-read=1KiB")
        #expect(try MockDeviceConfiguration(spec: c.spec) == c)
    }

    @Test func faultsApplyToReplayedReads() throws {
        let capture = try CaptureFile(try Captured.nicStream())
        let kernel = MockKernel()
        let opened = try Opened("mock:r?replay=\(capture.path)&enodev-after=2500", kernel: kernel)
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        opened.device.faults.interruptEvery = 2
        var got: [UInt8] = []
        var failure: Errno?
        while failure == nil {
            switch attempt({ () throws(Errno) in try opened.readOnce(data, 1 << 20) }) {
            case .success(let chunk): got += chunk
            case .failure(.interrupted): continue
            case .failure(let error): failure = error
            }
        }
        #expect(failure == .noDevice)
        #expect(got == Array((Captured.pre1 + Captured.pre2)[0..<2500]))
        opened.device.faults.interruptEvery = nil
        try kernel.close(data)
        try opened.close()
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }
}
