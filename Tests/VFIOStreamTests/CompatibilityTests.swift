import Foundation
import Testing
@testable import VFIOStream

@Suite("Compatibility")
struct CompatibilityTests {
    let source = Samples.pciDevice

    @Test("a device is compatible with itself; informational fields are not compared")
    func identical() {
        #expect(compatibility(of: source, with: source).isEmpty)
        #expect(compatibility(of: Samples.mdevDevice, with: Samples.mdevDevice).isEmpty)
        var target = source
        target.name = "0000:af:00.1"
        target.expectedStateSize = nil
        target.pci?.revision = 7  // a later stepping: informational
        target.driverVersion = "1.9.3"  // same major
        target.migrationFlags.insert(.p2p)  // extra target features are fine
        #expect(compatibility(of: source, with: target).isEmpty)
    }

    @Test("every PCI and driver difference is listed, in a fixed order")
    func pciAndDriver() {
        var target = source
        target.deviceAPI = "vfio-ccw"
        target.pci = PCIIdentity(vendorID: 0x8086, deviceID: 0x1592, subsystemVendorID: 0x8086, subsystemDeviceID: 1, revision: 0, classCode: 0x020001)
        target.driverName = "ice_vfio_pci"
        target.driverVersion = "2.0"
        target.vendorCompatibility = "other"
        #expect(compatibility(of: source, with: target) == [
            .deviceAPI(source: "vfio-pci", target: "vfio-ccw"),
            .vendorID(source: 0x15B3, target: 0x8086),
            .deviceID(source: 0x101E, target: 0x1592),
            .subsystemVendorID(source: 0x15B3, target: 0x8086),
            .subsystemDeviceID(source: 0x0063, target: 1),
            .classCode(source: 0x020000, target: 0x020001),
            .driverName(source: "mlx5_vfio_pci", target: "ice_vfio_pci"),
            .driverMajorVersion(source: "1.0", target: "2.0"),
            .vendorCompatibility(source: "mlx5 fw 22.36", target: "other"),
        ])
        target = source
        target.pci = nil
        #expect(compatibility(of: source, with: target) == [.pciPresence(source: true, target: false)])
    }

    @Test("driver major: leading number, or the whole string when there is none")
    func driverMajors() {
        #expect(driverMajor(of: "2.1.0-rc1") == "2")
        #expect(driverMajor(of: "02") == "2")
        #expect(driverMajor(of: "0.9") == "0")
        #expect(driverMajor(of: "") == "")
        #expect(driverMajor(of: "v2.0") == "v2.0")
        var target = source
        target.driverVersion = "10.0"
        #expect(compatibility(of: source, with: target) == [.driverMajorVersion(source: "1.0", target: "10.0")])
    }

    @Test("mdev: type, attribute values per name in order, presence")
    func mdev() {
        let mdevSource = Samples.mdevDevice
        var target = mdevSource
        // Other names may come in another order; repeated names keep theirs.
        target.mdev?.attributes = [
            MdevAttribute(name: "assign_domain", value: "0x47"), MdevAttribute(name: "assign_domain", value: "0xff"),
            MdevAttribute(name: "assign_adapter", value: "5"),
        ]
        #expect(compatibility(of: mdevSource, with: target).isEmpty)
        target.mdev?.attributes = [
            MdevAttribute(name: "assign_adapter", value: "6"), MdevAttribute(name: "assign_domain", value: "0xff"),
            MdevAttribute(name: "assign_domain", value: "0x47"), MdevAttribute(name: "assign_control_domain", value: "1"),
        ]
        target.mdev?.type = "vfio_ap-other"
        #expect(compatibility(of: mdevSource, with: target) == [
            .mdevType(source: "vfio_ap-passthrough", target: "vfio_ap-other"),
            .mdevAttribute(name: "assign_adapter", source: ["5"], target: ["6"]),
            .mdevAttribute(name: "assign_domain", source: ["0x47", "0xff"], target: ["0xff", "0x47"]),
            .mdevAttribute(name: "assign_control_domain", source: [], target: ["1"]),
        ])
        target.mdev = nil
        #expect(compatibility(of: mdevSource, with: target) == [.mdevType(source: "vfio_ap-passthrough", target: nil)])
    }

    @Test("migration flags: STOP_COPY always, and everything the source used")
    func migrationFlags() {
        var target = source
        target.migrationFlags = [.stopCopy]
        #expect(compatibility(of: source, with: target) == [.missingMigrationFlags(.preCopy)])
        target.migrationFlags = []
        var odd = source
        odd.migrationFlags = []  // a source descriptor without STOP_COPY still needs it on the target
        #expect(compatibility(of: odd, with: target) == [.missingMigrationFlags(.stopCopy)])
    }

    @Test("stream level: per device index, and the device count")
    func streamLevel() {
        let header = Samples.header([Samples.pciDevice, Samples.mdevDevice])
        #expect(compatibility(of: header, with: [Samples.pciDevice, Samples.mdevDevice]).isEmpty)
        var other = Samples.mdevDevice
        other.driverName = "x"
        #expect(compatibility(of: header, with: [Samples.pciDevice, other]) == [
            .device(index: 1, .driverName(source: "vfio_ap", target: "x"))
        ])
        #expect(compatibility(of: header, with: [Samples.pciDevice]) == [.deviceCount(stream: 2, targets: 1)])
    }

    @Test("mismatches encode to JSON with field, source, target and text")
    func json() throws {
        let mismatch = CompatibilityMismatch.mdevAttribute(name: "assign_domain", source: ["0x47"], target: [])
        let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(mismatch)) as? [String: String]
        #expect(object?["field"] == "mdevAttribute")
        #expect(object?["name"] == "assign_domain")
        #expect(object?["source"] == "\"0x47\"")
        #expect(object?["target"] == "absent")
        #expect(object?["description"] == mismatch.description)
        #expect(CompatibilityMismatch.vendorID(source: 0x8086, target: 0x15B3).description == "vendorID: source 0x8086, target 0x15b3")
    }
}
