import Foundation
import Testing
@testable import VFIOKernel

/// Broken and odd trees: each must give a DiscoveryError naming the path, never a crash.
@Suite struct DiscoveryErrorTests {
    let vf0Path = FakeSysfs.devicePath(StandardHost.vf0)

    func vf0(_ fake: FakeSysfs) throws -> PCIDeviceInfo {
        try SysfsDiscovery(root: fake.root).pciDevice(try PCIAddress(parsing: StandardHost.vf0))
    }

    @Test func missingVendorFile() throws {
        let fake = try StandardHost.make()
        try fake.remove(vf0Path + "/vendor")
        let expected = DiscoveryError.attributeMissing(path: fake.root + "/" + vf0Path + "/vendor")
        #expect(throws: expected) { try vf0(fake) }
        #expect(throws: expected) { try SysfsDiscovery(root: fake.root).pciDevices() }
        #expect(expected.description.contains("/vendor is missing"))
    }

    @Test(arguments: ["0xZZ", "", "0x", "0x10000", "8086 extra", "-1"])
    func garbageInVendor(raw: String) throws {
        let fake = try StandardHost.make()
        try fake.write(vf0Path + "/vendor", raw)
        do {
            _ = try vf0(fake)
            Issue.record("vendor \(raw) was accepted")
        } catch let error as DiscoveryError {
            #expect(error == .attributeUnparsable(
                path: fake.root + "/" + vf0Path + "/vendor", raw: raw, expected: "a 16-bit hex number like 0xffff"))
            #expect(error.description.contains("\"\(raw)\""))
        }
    }

    @Test func garbageInNumaAndSriovCounts() throws {
        let fake = try StandardHost.make()
        try fake.write(vf0Path + "/numa_node", "-2")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/numa_node", raw: "-2", expected: "-1 or a node number")) { try vf0(fake) }
        try fake.write(vf0Path + "/numa_node", "one")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/numa_node", raw: "one", expected: "a decimal integer")) { try vf0(fake) }
    }

    @Test func classCodeWiderThan24Bits() throws {
        let fake = try StandardHost.make()
        try fake.write(vf0Path + "/class", "0x1020000")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/class", raw: "0x1020000", expected: "a 24-bit hex number like 0xffffff")) {
            try vf0(fake)
        }
    }

    @Test func danglingIommuGroupLink() throws {
        let fake = try StandardHost.make()
        try fake.remove("kernel/iommu_groups/12")
        let error = #expect(throws: DiscoveryError.self) { try vf0(fake) }
        #expect(error == .brokenSymlink(
            path: fake.root + "/" + vf0Path + "/iommu_group", target: "../../../kernel/iommu_groups/12"))
        #expect(error?.description.contains("does not exist") == true)
    }

    @Test func iommuGroupLinkToANonNumber() throws {
        let fake = try StandardHost.make()
        try fake.remove(vf0Path + "/iommu_group")
        try fake.mkdir("kernel/iommu_groups/twelve")
        try fake.link(vf0Path + "/iommu_group", to: "kernel/iommu_groups/twelve")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/iommu_group", raw: "twelve",
            expected: "a link to kernel/iommu_groups/<number>")) { try vf0(fake) }
    }

    @Test func driverThatIsAFileNotALink() throws {
        let fake = try StandardHost.make()
        try fake.remove(vf0Path + "/driver")
        try fake.write(vf0Path + "/driver", "vfio-pci")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/driver", raw: "(not a symlink)", expected: "a symlink")) { try vf0(fake) }
    }

    @Test func physfnPointingAtANonPCINode() throws {
        let fake = try StandardHost.make()
        try fake.remove(vf0Path + "/physfn")
        try fake.link(vf0Path + "/physfn", to: "devices/pci0000:00")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/" + vf0Path + "/physfn", raw: "pci0000:00", expected: "a link to a PCI device")) {
            try vf0(fake)
        }
    }

    @Test func danglingBusEntry() throws {
        let fake = try StandardHost.make()
        try fake.remove(vf0Path)
        #expect(throws: DiscoveryError.brokenSymlink(
            path: fake.root + "/bus/pci/devices/" + StandardHost.vf0, target: "../../../" + vf0Path)) { try vf0(fake) }
    }

    @Test func oddEntryInBusDirectory() throws {
        let fake = try StandardHost.make()
        try fake.mkdir("bus/pci/devices/rogue")
        #expect(throws: DiscoveryError.attributeUnparsable(
            path: fake.root + "/bus/pci/devices/rogue", raw: "rogue", expected: "an entry named by a PCI address")) {
            try SysfsDiscovery(root: fake.root).pciDevices()
        }
    }

    @Test func missingSysfsRoot() throws {
        let fake = try FakeSysfs()
        let missing = fake.base + "/nowhere"
        let discovery = SysfsDiscovery(root: missing)
        let expected = DiscoveryError.sysfsRootMissing(path: missing)
        #expect(throws: expected) { try discovery.pciDevices() }
        #expect(throws: expected) { try discovery.mdevDevices() }
        #expect(throws: expected) { try discovery.iommuGroupDevices(1) }
        #expect(throws: expected) { try discovery.resolve("0000:06:00.0") }
        #expect(throws: expected) { try discovery.report() }
        #expect(expected.description == "sysfs root \(missing) does not exist or is not a directory")
    }

    @Test func absentDevice() throws {
        let fake = try StandardHost.make()
        #expect(throws: DiscoveryError.deviceNotFound(name: "0000:77:00.0", path: fake.root + "/bus/pci/devices/0000:77:00.0")) {
            try SysfsDiscovery(root: fake.root).pciDevice(PCIAddress(bus: 0x77, device: 0, function: 0)!)
        }
    }

    @Test func descriptionsShowHiddenCharacters() {
        let error = DiscoveryError.attributeUnparsable(path: "/sys/x/vendor", raw: "0x80\t86\u{1}", expected: "hex")
        #expect(error.description == "sysfs attribute /sys/x/vendor holds \"0x80\\t86\\u{1}\", expected hex")
    }
}
