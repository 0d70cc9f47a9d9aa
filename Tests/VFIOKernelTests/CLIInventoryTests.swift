// list and probe: the migratability verdict in QEMU's blockers' terms, on emulated devices,
// on fake sysfs trees, and as the pure rule it is.
import Foundation
import Testing
import VFIOKernel
import VFIOStream

@Suite struct MigrationVerdictTests {
    let full = MigrationCapabilities(flags: [.stopCopy, .p2p, .preCopy], dmaLogging: true)

    @Test func aDeviceWithEverythingIsMigratable() {
        let verdict = MigrationVerdict.judge(capabilities: full, bound: true, driver: "vfio-pci", mediated: false, classCode: 0x020000, peers: ["b"])
        #expect(verdict.status == .migratable && verdict.blockers.isEmpty && verdict.hint == nil)
    }

    @Test func eachBlockerIsNamedWithItsReason() {
        func kinds(_ c: MigrationCapabilities?, bound: Bool = true, mediated: Bool = false, peers: [String] = []) -> [MigrationBlocker.Kind] {
            MigrationVerdict.judge(capabilities: c, bound: bound, driver: bound ? "vfio-pci" : "ixgbevf", mediated: mediated,
                                   classCode: 0x010802, peers: peers).blockers.map(\.kind)
        }
        #expect(kinds(nil, bound: false) == [.notBoundToVFIO])
        #expect(kinds(MigrationCapabilities(flags: nil, dmaLogging: true)) == [.noMigrationFeature])
        #expect(kinds(MigrationCapabilities(flags: [.p2p], dmaLogging: true)) == [.noStopCopy])
        let type1 = Type1DirtyTracking(pageSizes: [4096], maxBitmapBytes: 1 << 28, precise: false)
        #expect(kinds(MigrationCapabilities(flags: [.stopCopy], type1: type1)) == [.noDirtyTracking])
        // type1 bitmaps are precise for an mdev: no blocker then.
        var precise = type1
        precise.precise = true
        #expect(kinds(MigrationCapabilities(flags: [.stopCopy], type1: precise), mediated: true).isEmpty)
        #expect(kinds(MigrationCapabilities(flags: [.stopCopy], dmaLogging: true)).isEmpty)
        #expect(kinds(MigrationCapabilities(flags: [.stopCopy], dmaLogging: true), peers: ["x"]) == [.noP2P])
    }

    @Test func onlyANetworkDeviceThatCannotMigrateGetsTheFailoverHint() {
        let none = MigrationCapabilities(flags: nil)
        let nic = MigrationVerdict.judge(capabilities: none, bound: true, driver: "vfio-pci", mediated: false, classCode: 0x020000)
        #expect(nic.hint == MigrationVerdict.networkFailoverHint)
        let unboundNIC = MigrationVerdict.judge(capabilities: nil, bound: false, driver: "ixgbevf", mediated: false, classCode: 0x020000)
        #expect(unboundNIC.hint == MigrationVerdict.networkFailoverHint)
        let nvme = MigrationVerdict.judge(capabilities: none, bound: true, driver: "vfio-pci", mediated: false, classCode: 0x010802)
        #expect(nvme.hint == nil)
        let migratableNIC = MigrationVerdict.judge(capabilities: full, bound: true, driver: "vfio-pci", mediated: false, classCode: 0x020000)
        #expect(migratableNIC.hint == nil)
    }
}

@Suite struct CLIInventoryTests {
    func devices(_ json: String) throws -> [String: [String: Any]] {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let list = try #require(doc["devices"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as! String, $0) })
    }

    func blockers(_ device: [String: Any]?) -> [String] {
        ((device?["verdict"] as? [String: Any])?["blockers"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
    }

    @Test func namedEmulatedDevicesAreJudgedAsASet() throws {
        let result = try CLI.run([
            "list", "mock:good", "mock:nolog?dma-logging=no", "mock:nomig?flags=none", "mock:nop2p?flags=stop-copy",
            "mock:mdev?mdev-type=mock-2&dma-logging=no", "--json",
        ])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "list")
        let d = try devices(result.out)
        #expect((d["mock:good"]?["verdict"] as? [String: Any])?["status"] as? String == "migratable")
        #expect(blockers(d["mock:nolog"]) == ["no-dirty-tracking"])
        #expect(blockers(d["mock:nomig"]) == ["no-migration-feature"])
        #expect(blockers(d["mock:nop2p"]) == ["no-p2p"])
        #expect(blockers(d["mock:mdev"]).isEmpty, "an mdev's type1 bitmaps are precise")
        #expect((d["mock:mdev"]?["kind"] as? String) == "mdev")
        let text = try CLI.run(["list", "mock:good", "mock:nomig?flags=none"])
        #expect(text.out.contains("migratable (STOP_COPY|P2P|PRE_COPY; dirty pages: device DMA logging)"), "\(text.out)")
        #expect(text.out.contains("VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY"), "\(text.out)")
        #expect(text.out.contains("hint: this is a network device"), "\(text.out)")
        #expect(!text.out.contains("VFIO is not available"), "emulated devices need no VFIO")
    }

    @Test func aFakeHostsDevicesSayWhyTheyCannotBeAsked() throws {
        let fake = try StandardHost.make()
        let result = try CLI.run(["list", "--sysfs-root", fake.root, "--dev-root", fake.dev, "--json"])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "list")
        let d = try devices(result.out)
        // The PF is on its host driver: not bound to VFIO, and a network device.
        #expect(blockers(d[StandardHost.pf]) == ["not-bound-to-vfio"])
        #expect(((d[StandardHost.pf]?["verdict"] as? [String: Any])?["hint"] as? String)?.contains("virtio-net failover") == true)
        #expect(((d[StandardHost.audio]?["verdict"] as? [String: Any])?["blockers"] as? [[String: Any]])?.first?["message"] as? String
                == "not bound to a VFIO driver: it is bound to no driver")
        // Bound VFs on a host without VFIO: not asked, and why.
        let vf = try #require(d[StandardHost.vf0]?["verdict"] as? [String: Any])
        #expect(vf["status"] as? String == "unknown")
        #expect(vf["reason"] as? String == "not asked: no VFIO on this host")
        #expect(d[StandardHost.vf0]?["physicalFunction"] as? String == StandardHost.pf)
        #expect(d["0000:00:00.0"] == nil, "bridges are not listed")
    }

    @Test func oneDeviceThatCannotBeOpenedDoesNotStopTheListing() throws {
        let fake = try StandardHost.make()
        // Device nodes that are plain files: VFIO looks available, opening each device fails.
        try fake.touchDev("vfio/vfio")
        try fake.touchDev("vfio/12")
        try fake.touchDev("vfio/13")
        let result = try CLI.run(["list", "--sysfs-root", fake.root, "--dev-root", fake.dev, "--json"])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "list")
        let d = try devices(result.out)
        for vf in [StandardHost.vf0, StandardHost.vf1] {
            let verdict = try #require(d[vf]?["verdict"] as? [String: Any])
            #expect(verdict["status"] as? String == "unknown")
            #expect((verdict["reason"] as? String)?.contains("cannot open it to ask") == true, "\(verdict)")
        }
        #expect(blockers(d[StandardHost.pf]) == ["not-bound-to-vfio"], "the other devices are still judged")
    }

    @Test func probeReportsTrackersDescriptorAndVerdict() throws {
        let result = try CLI.run(["probe", "mock:p?state=8MiB&dma-logging=no", "--json"])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "probe")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        let capabilities = try #require(doc["capabilities"] as? [String: Any])
        let type1 = try #require(capabilities["type1"] as? [String: Any])
        #expect(type1["maxBitmapBytes"] as? Int == 256 << 20 && type1["precise"] as? Bool == false)
        #expect(type1["pageSizes"] as? [Int] == [4096])
        #expect(capabilities["dmaLogging"] as? Bool == false)
        let descriptor = try #require(doc["descriptor"] as? [String: Any])
        #expect(descriptor["name"] as? String == "mock:p")
        let verdict = try #require(doc["verdict"] as? [String: Any])
        #expect(verdict["status"] as? String == "not-migratable")
        let text = try CLI.run(["probe", "mock:p2?flags=none"])
        #expect(text.status == 0)
        #expect(text.out.contains("migration     not supported (VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY)"), "\(text.out)")
        #expect(text.out.contains("hint: this is a network device"), "\(text.out)")
    }
}
