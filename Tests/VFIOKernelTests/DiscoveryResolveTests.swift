import Foundation
import Testing
@testable import VFIOKernel

@Suite struct DiscoveryResolveTests {
    @Test func fullAndShortPCIAddress() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        for spec in [StandardHost.vf1, "06:02.1"] {
            let device = try discovery.resolve(spec)
            guard case .pci(let info) = device else {
                Issue.record("\(spec) resolved to \(device)")
                continue
            }
            #expect(info.address.description == StandardHost.vf1)
            #expect(device.vfioName == StandardHost.vf1)
            #expect(device.iommuGroup == 13)
            #expect(device.numaNode == 1)
            #expect(device.driver == "vfio-pci")
            #expect(device.vfioCdev == "vfio1")
        }
    }

    @Test func mdevUUIDInEitherCase() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        for spec in [StandardHost.mdevUUID, StandardHost.mdevUUID.uppercased()] {
            let device = try discovery.resolve(spec)
            guard case .mdev(let info) = device else {
                Issue.record("\(spec) resolved to \(device)")
                continue
            }
            #expect(info.typeID == "nvidia-222")
            #expect(device.vfioName == StandardHost.mdevUUID)
            #expect(device.iommuGroup == 40)
            #expect(device.numaNode == 1)
            #expect(device.driver == "nvidia-vgpu-vfio")
        }
    }

    @Test func sysfsPathsOfEveryShape() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        let byAddress = try discovery.resolve(StandardHost.vf0)
        let paths = [
            fake.root + "/bus/pci/devices/" + StandardHost.vf0,  // the bus link
            fake.root + "/" + FakeSysfs.devicePath(StandardHost.vf0),  // the real directory
            fake.root + "/kernel/iommu_groups/12/devices/" + StandardHost.vf0 + "/",  // via the group
            fake.root + "/bus/pci/devices/" + StandardHost.pf + "/virtfn0",  // via the PF
        ]
        for path in paths {
            #expect(try discovery.resolve(path) == byAddress, "\(path)")
        }
        let mdev = try discovery.resolve(fake.root + "/bus/mdev/devices/" + StandardHost.mdevUUID)
        #expect(mdev == (try discovery.resolve(StandardHost.mdevUUID)))
    }

    @Test func relativeSysfsPath() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        // Relative to the current directory, which tests leave alone (they share one process).
        let cwd = FileManager.default.currentDirectoryPath
        let relative = FakeSysfs.relative(from: cwd, to: fake.root + "/bus/./pci/devices/" + StandardHost.pf)
        #expect(!relative.hasPrefix("/"))
        #expect(try discovery.resolve(relative).vfioName == StandardHost.pf)
    }

    @Test func specsThatAreNotDevices() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        #expect(throws: DiscoveryError.unrecognizedDeviceSpec("eth0")) { try discovery.resolve("eth0") }
        #expect(throws: DiscoveryError.badUUID("83b8f4f2-509f-382f-3c1e-e6bfe0faZZZZ")) {
            try discovery.resolve("83b8f4f2-509f-382f-3c1e-e6bfe0faZZZZ")
        }
        #expect(throws: DiscoveryError.badPCIAddress("0000:06:20.0", reason: "device 0x20 is above 0x1f")) {
            try discovery.resolve("0000:06:20.0")
        }
        #expect(throws: DiscoveryError.unrecognizedDeviceSpec(fake.root + "/bus/pci")) {
            try discovery.resolve(fake.root + "/bus/pci")
        }
        let missing = fake.root + "/devices/pci0000:00/0000:09:00.0"
        #expect(throws: DiscoveryError.deviceNotFound(name: missing, path: missing)) { try discovery.resolve(missing) }
        #expect(throws: DiscoveryError.deviceNotFound(name: "0000:09:00.0", path: fake.root + "/bus/pci/devices/0000:09:00.0")) {
            try discovery.resolve("09:00.0")
        }
    }

    @Test func codableRoundTripKeepsTheKind() throws {
        let fake = try StandardHost.make()
        let discovery = SysfsDiscovery(root: fake.root)
        let devices = [try discovery.resolve(StandardHost.pf), try discovery.resolve(StandardHost.mdevUUID)]
        let data = try JSONEncoder().encode(devices)
        #expect(try JSONDecoder().decode([DiscoveredDevice].self, from: data) == devices)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(json.map { $0["kind"] as? String } == ["pci", "mdev"])
    }
}
