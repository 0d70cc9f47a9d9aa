import Foundation
import Testing
@testable import VFIOKernel

@Suite struct DiscoveryMdevTests {
    @Test func instanceWithParentTypeGroupAndParentNuma() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        let mdevs = try discovery.mdevDevices()
        #expect(mdevs.count == 1)
        let mdev = try #require(mdevs.first)
        #expect(mdev.uuid == StandardHost.mdevUUID)
        #expect(mdev.parent == StandardHost.gpu)
        #expect(mdev.parentPath == fake.root + "/devices/pci0000:00/" + StandardHost.gpu)
        #expect(mdev.typeID == "nvidia-222")
        #expect(mdev.typeName == "GRID T4-1B")
        #expect(mdev.deviceAPI == "vfio-pci")
        #expect(mdev.driver == "nvidia-vgpu-vfio")
        #expect(mdev.iommuGroup == 40)
        #expect(mdev.numaNode == 1)
        #expect(mdev.sysfsPath == mdev.parentPath + "/" + StandardHost.mdevUUID)
        #expect(try discovery.mdevDevice(uuid: StandardHost.mdevUUID.uppercased()) == mdev)
    }

    @Test func parentTypesWithInstances() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        #expect(try discovery.mdevParents() == [StandardHost.gpu])
        let types = try discovery.mdevTypes(parent: StandardHost.gpu)
        #expect(types.map(\.typeID) == ["nvidia-222", "nvidia-223"])
        #expect(types.map(\.name) == ["GRID T4-1B", "GRID T4-2B"])
        #expect(types.map(\.availableInstances) == [15, 8])
        #expect(types.map(\.deviceAPI) == ["vfio-pci", "vfio-pci"])
        #expect(types[0].description == "num_heads=4, frl_config=45")
        #expect(types[1].description == nil)
        #expect(types[0].instances == [StandardHost.mdevUUID])
        #expect(types[1].instances.isEmpty)
        #expect(types.allSatisfy { $0.parent == StandardHost.gpu })
    }

    @Test func virtualParentHasNoNumaNode() throws {
        let fake = try FakeSysfs()
        let parentPath = "devices/virtual/mtty/mtty"
        try fake.addMdevParent(name: "mtty", devicePath: parentPath, types: [
            .init(id: "mtty-1", name: "Single port serial", availableInstances: 24),
            .init(id: "mtty-2", name: "Dual port serial", availableInstances: 12),
        ])
        let uuid = "b6d2b3f4-7e0a-4c5e-9e1e-2f6a6b0c1d2e"
        try fake.addMdev(uuid: uuid, parentPath: parentPath, typeID: "mtty-2", iommuGroup: 0, driver: "mtty")
        let mdev = try SysfsDiscovery(root: fake.root).mdevDevice(uuid: uuid)
        #expect(mdev.parent == "mtty")
        #expect(mdev.typeID == "mtty-2")
        #expect(mdev.typeName == "Dual port serial")
        #expect(mdev.numaNode == nil)
        #expect(mdev.iommuGroup == 0)
        #expect(mdev.driver == "mtty")
    }

    @Test func unknownParentAndUnknownInstance() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        #expect(throws: DiscoveryError.deviceNotFound(name: "mtty", path: fake.root + "/class/mdev_bus/mtty")) {
            try discovery.mdevTypes(parent: "mtty")
        }
        let absent = "00000000-0000-0000-0000-000000000001"
        #expect(throws: DiscoveryError.deviceNotFound(name: absent, path: fake.root + "/bus/mdev/devices/" + absent)) {
            try discovery.mdevDevice(uuid: absent)
        }
        #expect(throws: DiscoveryError.badUUID("not-a-uuid")) { try discovery.mdevDevice(uuid: "not-a-uuid") }
    }

    @Test func instanceWithoutTypeLinkIsAnError() throws {
        let fake = try StandardHost.make()
        let instance = FakeSysfs.devicePath(StandardHost.gpu) + "/" + StandardHost.mdevUUID
        try fake.remove(instance + "/mdev_type")
        #expect(throws: DiscoveryError.attributeMissing(path: fake.root + "/" + instance + "/mdev_type")) {
            try SysfsDiscovery(root: fake.root).mdevDevice(uuid: StandardHost.mdevUUID)
        }
    }
}
