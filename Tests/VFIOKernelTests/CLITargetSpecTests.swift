// target-spec: an mdev definition Debian's own mdevctl accepts, UUID and parent overrides,
// a VF's identity, and names no sysfs could hold refused.
import Foundation
import Testing
import VFIOStream

@Suite(.serialized) struct CLITargetSpecTests {
    /// mdevctl (tools/setup.sh installs it) writes /etc/mdevctl.d; each test uses its own UUID
    /// and removes its definition.
    static let mdevctl = "/usr/sbin/mdevctl"

    static func mdevctl(_ arguments: [String]) throws -> CLIResult {
        let path = FileManager.default.fileExists(atPath: mdevctl) ? mdevctl : "/usr/bin/mdevctl"
        return try CLI.run(executable: URL(fileURLWithPath: path), arguments)
    }

    @Test func anMdevStreamsSpecIsADefinitionMdevctlAccepts() throws {
        let dir = try TempDir()
        let stream = try savedStream("mock:m?mdev-type=mock-2&state=256KiB", in: dir)
        let uuid = UUID().uuidString.lowercased()
        let spec = try CLI.run(["target-spec", stream, "--uuid", uuid, "--parent", "cli-test-parent", "--json"])
        #expect(spec.status == 0, "\(spec.err)")
        try CLI.validate(spec.out, against: "target-spec")
        let definition = dir.file("target.json")
        try spec.out.write(toFile: definition, atomically: true, encoding: .utf8)

        let define = try Self.mdevctl(["define", "--uuid", uuid, "--parent", "cli-test-parent", "--jsonfile", definition])
        defer { _ = try? Self.mdevctl(["undefine", "--uuid", uuid]) }
        #expect(define.status == 0, "mdevctl define: \(define.err)")
        let listed = try Self.mdevctl(["list", "-d", "--dumpjson"])
        #expect(listed.status == 0, "\(listed.err)")
        // [{"parent": [{"uuid": {"mdev_type": ..., "start": ..., "attrs": [...]}}]}]
        let parents = try #require(try JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [[String: Any]])
        let devices = parents.compactMap { $0["cli-test-parent"] as? [[String: Any]] }.flatMap { $0 }
        let ours = try #require(devices.compactMap { $0[uuid] as? [String: Any] }.first, "\(listed.out)")
        #expect(ours["mdev_type"] as? String == "mock-2")
        #expect(ours["start"] as? String == "manual")
        #expect((ours["attrs"] as? [Any])?.isEmpty == true)
    }

    @Test func theTextSaysWhatToRunWithTheChosenUUIDAndParent() throws {
        let dir = try TempDir()
        let stream = try savedStream("mock:m2?mdev-type=mock-1&state=256KiB", in: dir)
        let uuid = "c0ffee00-0000-4000-8000-000000000001"
        let text = try CLI.run(["target-spec", stream, "--uuid", uuid, "--parent", "0000:00:02.0"])
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.contains("mdevctl define --uuid \(uuid) --parent 0000:00:02.0 --jsonfile target.json"), "\(text.out)")
        #expect(text.out.contains("echo \(uuid) > /sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/mock-1/create"), "\(text.out)")
        // No parent given and none on this host offers the type: the text says to choose one.
        let unknown = try CLI.run(["target-spec", stream])
        #expect(unknown.status == 0)
        #expect(unknown.out.contains("not known: pass --parent"), "\(unknown.out)")
        #expect(try CLI.run(["target-spec", stream, "--uuid", "not-a-uuid"]).status == 2)
    }

    @Test func aParentOfferingTheTypeOnThisHostIsFound() throws {
        let fake = try StandardHost.make()
        let header = StreamHeader(creationTimeNanoseconds: 0, maxPayload: 4096, devices: [
            DeviceDescriptor(name: StandardHost.mdevUUID, deviceAPI: "vfio-pci", driverName: "nvidia", driverVersion: "535",
                             mdev: MdevDefinition(type: "nvidia-223", attributes: [MdevAttribute(name: "frl", value: "on")]),
                             migrationFlags: [.stopCopy, .p2p]),
        ])
        let dir = try TempDir()
        let file = dir.file("gpu.vfiomig")
        try Data(try HostileStreams.encode(header)).write(to: URL(fileURLWithPath: file))
        let spec = try CLI.run(["target-spec", file, "--sysfs-root", fake.root, "--json"])
        #expect(spec.status == 0, "\(spec.err)")
        try CLI.validate(spec.out, against: "target-spec")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(spec.out.utf8)) as? [String: Any])
        #expect(doc["parent"] as? String == StandardHost.gpu)
        #expect(doc["uuid"] as? String == StandardHost.mdevUUID, "the source's UUID is kept by default")
        #expect((doc["attrs"] as? [[String: String]]) == [["frl": "on"]])
    }

    @Test func aVFsSpecIsItsIdentityDriverAndVendorString() throws {
        let dir = try TempDir()
        let stream = try savedStream("mock:vf?state=256KiB&vendor=0x15b3&device=0x101e&driver=mlx5_vfio_pci&driver-version=6.1.0&compat=cx7", in: dir)
        let spec = try CLI.run(["target-spec", stream, "--json"])
        #expect(spec.status == 0, "\(spec.err)")
        try CLI.validate(spec.out, against: "target-spec")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(spec.out.utf8)) as? [String: Any])
        #expect(doc["kind"] as? String == "pci")
        #expect(doc["vendor"] as? String == "0x15b3" && doc["device"] as? String == "0x101e")
        #expect(doc["class"] as? String == "0x020000")
        let driver = try #require(doc["driver"] as? [String: String])
        #expect(driver == ["name": "mlx5_vfio_pci", "version": "6.1.0", "major": "6"])
        // The mock reports a structured vendor string: the target must be given it verbatim.
        let vendorString = "compat=cx7;block-size=65536;source=generated"
        #expect(doc["vendorCompatibility"] as? String == vendorString)
        // The same from the live device.
        let live = try CLI.run(["target-spec", "mock:vf2?vendor=0x15b3&device=0x101e&driver=mlx5_vfio_pci&driver-version=6.1.0&compat=cx7", "--json"])
        #expect(live.status == 0, "\(live.err)")
        try CLI.validate(live.out, against: "target-spec")
        #expect(live.out.contains("\"vendorCompatibility\" : \"\(vendorString)\""))
    }

    @Test func namesNoSysfsCouldHoldAreRefused() throws {
        let dir = try TempDir()
        let file = dir.file("bad-type.vfiomig")
        try Data(try HostileStreams.encode(StreamHeader(creationTimeNanoseconds: 0, maxPayload: 4096, devices: [
            DeviceDescriptor(name: "x", deviceAPI: "vfio-pci", driverName: "x", driverVersion: "1",
                             mdev: MdevDefinition(type: "../../../../etc/passwd"), migrationFlags: [.stopCopy]),
        ]))).write(to: URL(fileURLWithPath: file))
        let result = try CLI.run(["target-spec", file, "--parent", "p"])
        #expect(result.status == 2, "\(result.err)")
        #expect(result.err.contains("cannot name a sysfs entry"), "\(result.err)")
    }

    @Test func aStreamOfSeveralDevicesNeedsAnIndex() throws {
        let dir = try TempDir()
        let file = dir.file("two.vfiomig")
        #expect(try CLI.run(["save", "mock:a?mdev-type=t-1", "mock:b?mdev-type=t-2", "-o", file, "-q"]).status == 0)
        #expect(try CLI.run(["target-spec", file]).status == 2)
        let second = try CLI.run(["target-spec", file, "--device-index", "1", "--json"])
        #expect(second.status == 0, "\(second.err)")
        #expect(second.out.contains("\"mdev_type\" : \"t-2\""))
    }
}
