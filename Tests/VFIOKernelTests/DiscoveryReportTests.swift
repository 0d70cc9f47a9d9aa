import Foundation
import Testing
@testable import VFIOKernel

@Suite struct DiscoveryReportTests {
    @Test func jsonHasStableKeysAndRoundTrips() throws {
        let fake = try StandardHost.make()
        try fake.touchDev("vfio/vfio")
        let report = try SysfsDiscovery(root: fake.root).report(devRoot: fake.dev)
        let data = try report.jsonData()
        #expect(try JSONDecoder().decode(DiscoveryReport.self, from: data) == report)

        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["sysfsRoot", "pciDevices", "mdevDevices", "vfio", "problems"])
        let pci = try #require(object["pciDevices"] as? [[String: Any]])
        let vf0 = try #require(pci.first { $0["address"] as? String == StandardHost.vf0 })
        #expect(vf0["physfn"] as? String == StandardHost.pf)
        #expect(vf0["iommuGroup"] as? Int == 12)
        #expect(vf0["vendorID"] as? Int == 0x8086)
        #expect(vf0["vfioCdev"] as? String == "vfio0")
        let pf = try #require(pci.first { $0["address"] as? String == StandardHost.pf })
        #expect(pf["virtfns"] as? [String] == [StandardHost.vf0, StandardHost.vf1])
        let mdev = try #require((object["mdevDevices"] as? [[String: Any]])?.first)
        #expect(mdev["uuid"] as? String == StandardHost.mdevUUID)
        #expect(mdev["typeID"] as? String == "nvidia-222")
        let vfio = try #require(object["vfio"] as? [String: Any])
        #expect(vfio["available"] as? Bool == true)
        // Sorted keys make the text itself stable between runs.
        #expect(try report.jsonData() == data)
    }

    @Test func humanTableIsAligned() throws {
        let fake = try StandardHost.make()
        let report = try SysfsDiscovery(root: fake.root).report(devRoot: fake.dev)
        let lines = report.humanTable().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)

        let header = try #require(lines.firstIndex { $0.hasPrefix("ADDRESS") })
        let pciRows = Array(lines[header...(header + 5)])
        #expect(pciRows[0].split(separator: " ") == ["ADDRESS", "VENDOR:DEVICE", "CLASS", "DRIVER", "GROUP", "NUMA", "SR-IOV"])
        #expect(pciRows[1].split(separator: " ").map(String.init) == [StandardHost.audio, "8086:a348", "multimedia", "-", "7", "-", "-"])
        #expect(pciRows[2].split(separator: " ").map(String.init) == [StandardHost.pf, "8086:1572", "ethernet", "i40e", "10", "1", "PF", "2/4"])
        #expect(pciRows[3].hasSuffix("VF of \(StandardHost.pf)"))
        #expect(pciRows[3].contains("vfio-pci"))
        // Every column starts at the same offset in every row.
        for column in ["CLASS", "DRIVER", "GROUP", "NUMA", "SR-IOV"] {
            let offset = try #require(pciRows[0].range(of: column)).lowerBound.utf16Offset(in: pciRows[0])
            for row in pciRows.dropFirst() {
                let index = row.index(row.startIndex, offsetBy: offset)
                #expect(row[row.index(before: index)] == " " && row[index] != " ", "\(column) in \(row)")
            }
        }
        #expect(lines.allSatisfy { !$0.hasSuffix(" ") })

        let mdevHeader = try #require(lines.firstIndex { $0.hasPrefix("UUID") })
        #expect(lines[mdevHeader + 1].split(separator: " ").map(String.init) == [
            StandardHost.mdevUUID, StandardHost.gpu, "nvidia-222", "GRID", "T4-1B", "nvidia-vgpu-vfio", "40", "1",
        ])
        #expect(lines.contains(report.vfio.message))
    }

    @Test func unreadableDevicesBecomeProblemsNotFailures() throws {
        let fake = try StandardHost.make()
        try fake.write(FakeSysfs.devicePath(StandardHost.audio) + "/vendor", "0xZZ")
        try fake.remove(FakeSysfs.devicePath(StandardHost.gpu) + "/" + StandardHost.mdevUUID + "/mdev_type")
        let report = try SysfsDiscovery(root: fake.root).report(devRoot: fake.dev)
        #expect(report.pciDevices.map(\.address.description) == [StandardHost.pf, StandardHost.vf0, StandardHost.vf1, StandardHost.gpu])
        #expect(report.mdevDevices.isEmpty)
        #expect(report.problems.count == 2)
        #expect(report.problems[0].hasPrefix(StandardHost.audio + ": sysfs attribute"))
        #expect(report.problems[0].contains("\"0xZZ\""))
        #expect(report.problems[1].hasPrefix(StandardHost.mdevUUID + ": sysfs attribute"))
        #expect(report.humanTable().contains("Could not read:\n  " + report.problems[0]))
    }

    @Test func emptyHostSaysSo() throws {
        let fake = try FakeSysfs()
        let table = try SysfsDiscovery(root: fake.root).report(devRoot: fake.dev).humanTable()
        #expect(table.contains("PCI devices: none"))
        #expect(table.contains("mdev devices: none"))
        #expect(table.contains("VFIO is not available on this machine"))
    }
}

@Suite struct DiscoveryAvailabilityTests {
    @Test func legacyContainerPresent() throws {
        let fake = try StandardHost.make()
        try fake.mkdir("module/vfio")
        try fake.touchDev("vfio/vfio")
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(availability.available)
        #expect(availability.problem == nil)
        #expect(availability.containerPath == fake.dev + "/vfio/vfio")
        #expect(availability.cdevDirectory == nil)
        #expect(availability.iommuGroupCount == 6)  // groups 7, 10, 12, 13, 30, 40
        #expect(availability.message == "VFIO is available (\(fake.dev)/vfio/vfio)")
    }

    @Test func cdevAndIommufdWithoutContainer() throws {
        let fake = try StandardHost.make()
        try fake.mkdir("module/vfio")
        try fake.touchDev("vfio/devices/vfio0")
        try fake.touchDev("iommu")
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(availability.available)
        #expect(availability.containerPath == nil)
        #expect(availability.cdevDirectory == fake.dev + "/vfio/devices")
        #expect(availability.iommufdPath == fake.dev + "/iommu")
    }

    @Test func cdevsWithoutIommufdAreNotEnough() throws {
        let fake = try StandardHost.make()
        try fake.mkdir("module/vfio")
        try fake.touchDev("vfio/devices/vfio0")
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(!availability.available)
        #expect(availability.problem == .deviceNodeMissing)
    }

    @Test func moduleNotLoaded() throws {
        let fake = try StandardHost.make()
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(!availability.available)
        #expect(!availability.moduleLoaded)
        #expect(availability.problem == .moduleNotLoaded)
        #expect(availability.message.hasPrefix("VFIO is not available on this machine: the vfio kernel module is not loaded"))
    }

    @Test func moduleLoadedButNoDeviceNode() throws {
        let fake = try StandardHost.make()
        try fake.mkdir("module/vfio")
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(!availability.available)
        #expect(availability.moduleLoaded)
        #expect(availability.problem == .deviceNodeMissing)
        #expect(availability.message.contains(fake.dev + "/vfio/vfio does not exist"))
    }

    @Test func noSysfsAtAll() throws {
        let fake = try FakeSysfs()
        let availability = SysfsDiscovery(root: fake.base + "/none").vfioAvailability(devRoot: fake.dev)
        #expect(!availability.available)
        #expect(availability.problem == .sysfsMissing)
        #expect(availability.iommuGroupCount == nil)
    }

    @Test func availableButNoIommuGroups() throws {
        let fake = try FakeSysfs()
        try fake.touchDev("vfio/vfio")
        let availability = SysfsDiscovery(root: fake.root).vfioAvailability(devRoot: fake.dev)
        #expect(availability.available)
        #expect(availability.iommuGroupCount == 0)
        #expect(availability.message.contains("no IOMMU groups exist"))
    }
}
