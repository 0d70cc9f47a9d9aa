import Foundation
import Testing
@testable import VFIOKernel

@Suite struct DiscoveryPCITests {
    @Test func listsAllFunctionsSortedByAddress() throws {
        let fake = try StandardHost.make()
        let devices = try SysfsDiscovery(root: fake.root).pciDevices()
        #expect(devices.map(\.address.description) == [
            StandardHost.audio, StandardHost.pf, StandardHost.vf0, StandardHost.vf1, StandardHost.gpu,
        ])
    }

    @Test func readsIDsClassRevisionDriverGroupAndNuma() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        let gpu = try discovery.pciDevice(try PCIAddress(parsing: StandardHost.gpu))
        #expect(gpu.vendorID == 0x10de)
        #expect(gpu.deviceID == 0x1eb8)
        #expect(gpu.subsystemVendorID == 0x10de)
        #expect(gpu.subsystemDeviceID == 0x12a2)
        #expect(gpu.classCode == 0x030200)
        #expect(gpu.className == "3d")
        #expect(gpu.revision == 0xa1)
        #expect(gpu.driver == "nvidia")
        #expect(gpu.iommuGroup == 30)
        #expect(gpu.numaNode == 1)
        #expect(gpu.vendorDevice == "10de:1eb8")
        #expect(gpu.sysfsPath == fake.root + "/devices/pci0000:00/" + StandardHost.gpu)
    }

    @Test func unboundDeviceWithoutNumaAffinity() throws {
        let fake = try StandardHost.make()
        let audio = try SysfsDiscovery(root: fake.root).pciDevice(try PCIAddress(parsing: "00:1f.3"))
        #expect(audio.driver == nil)
        #expect(!audio.isBoundToVFIO)
        #expect(audio.numaNode == nil)  // numa_node is -1
        #expect(audio.iommuGroup == 7)
        #expect(audio.className == "multimedia")
        #expect(audio.sriovRole == .none)
        #expect(audio.vfioCdev == nil)
        #expect(audio.subsystemVendorID == 0x1028)
    }

    @Test func sriovRelationsBothWays() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        let pfAddress = try PCIAddress(parsing: StandardHost.pf)
        let pf = try discovery.pciDevice(pfAddress)
        #expect(pf.virtfns.map(\.description) == [StandardHost.vf0, StandardHost.vf1])
        #expect(pf.physfn == nil)
        #expect(pf.sriovTotalVFs == 4)
        #expect(pf.sriovNumVFs == 2)
        #expect(pf.sriovRole == .physicalFunction(enabledVFs: 2, totalVFs: 4))
        #expect(pf.sriovRole.summary == "PF 2/4")
        #expect(pf.driver == "i40e")

        for (vfText, group, cdev) in [(StandardHost.vf0, 12, "vfio0"), (StandardHost.vf1, 13, "vfio1")] {
            let vf = try discovery.pciDevice(try PCIAddress(parsing: vfText))
            #expect(vf.physfn == pfAddress)
            #expect(vf.virtfns.isEmpty)
            #expect(vf.sriovRole == .virtualFunction(of: pfAddress))
            #expect(vf.sriovRole.summary == "VF of \(StandardHost.pf)")
            #expect(vf.driver == "vfio-pci")
            #expect(vf.isBoundToVFIO)
            #expect(vf.iommuGroup == group)
            #expect(vf.vfioCdev == cdev)
            #expect(vf.numaNode == 1)
        }
    }

    @Test func virtfnLinksSortNumericallyNotByName() throws {
        let fake = try FakeSysfs()
        let pf = "0000:81:00.0"
        try fake.addPCI(.init(address: pf, totalVFs: 16))
        // virtfn10 sorts before virtfn2 as text; the VF index order must win.
        var expected: [String] = []
        for index in 0..<11 {
            let vf = "0000:81:\(PCIAddress.hex(UInt32(1 + index / 8), width: 2)).\(index % 8)"
            try fake.addPCI(.init(address: vf, device: "0x154c"))
            try fake.addVF(vf, toPF: pf, index: index)
            expected.append(vf)
        }
        let info = try SysfsDiscovery(root: fake.root).pciDevice(try PCIAddress(parsing: pf))
        #expect(info.virtfns.map(\.description) == expected)
        #expect(info.sriovNumVFs == 11)
    }

    @Test func variantDriversCountAsVFIO() throws {
        let fake = try FakeSysfs()
        try fake.addPCI(.init(address: "0000:a1:00.2", driver: "mlx5_vfio_pci", iommuGroup: 3))
        let info = try SysfsDiscovery(root: fake.root).pciDevice(try PCIAddress(parsing: "a1:00.2"))
        #expect(info.driver == "mlx5_vfio_pci")
        #expect(info.isBoundToVFIO)
    }

    @Test func missingRevisionAndNumaFilesAreNil() throws {
        let fake = try FakeSysfs()
        try fake.addPCI(.init(address: "0000:02:00.0", revision: nil, numaNode: nil))
        let info = try SysfsDiscovery(root: fake.root).pciDevice(try PCIAddress(parsing: "02:00.0"))
        #expect(info.revision == nil)
        #expect(info.numaNode == nil)
        #expect(info.iommuGroup == nil)
    }

    @Test func iommuGroupMembers() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        #expect(try discovery.iommuGroupDevices(12) == [StandardHost.vf0])
        #expect(try discovery.iommuGroupDevices(40) == [StandardHost.mdevUUID])
        // A second function sharing the group shows up too.
        try fake.addPCI(.init(address: "0000:06:00.1", iommuGroup: 10))
        #expect(try discovery.iommuGroupDevices(10) == [StandardHost.pf, "0000:06:00.1"])
        #expect(throws: DiscoveryError.iommuGroupNotFound(group: 99, path: fake.root + "/kernel/iommu_groups/99")) {
            try discovery.iommuGroupDevices(99)
        }
    }

    @Test func hostWithoutPCIBusListsNothing() throws {
        let fake = try FakeSysfs()
        try fake.remove("bus/pci")
        let discovery = SysfsDiscovery(root: fake.root)
        #expect(try discovery.pciDevices().isEmpty)
        #expect(try discovery.mdevDevices().isEmpty)
    }

    @Test func rootWithTrailingSlashIsTheSameRoot() throws {
        let fake = try StandardHost.make()
        let plain = try SysfsDiscovery(root: fake.root).pciDevices()
        let slashed = try SysfsDiscovery(root: fake.root + "//").pciDevices()
        #expect(plain == slashed)
    }

    /// Reads this machine's /sys when it has one: every listed function must come back readable.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/bus/pci/devices")))
    func readsTheRealSysfs() throws {
        let entries = try FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices").sorted()
        let report = try SysfsDiscovery().report()
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.pciDevices.map(\.address.description) == entries)
        for device in report.pciDevices {
            let vendor = try String(contentsOfFile: device.sysfsPath + "/vendor", encoding: .utf8)
            #expect(UInt16(vendor.dropFirst(2).dropLast(), radix: 16) == device.vendorID)
        }
    }
}
