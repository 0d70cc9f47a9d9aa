// What a stream records about a device so a target can be checked before it resumes: the
// device API, the driver and its version, the PCI identity read from config space, the mdev
// type, the migration flags and the expected state size.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOStream

extension OpenedDevice {
    /// Builds the compatibility descriptor (reads config space; no device state is touched).
    public func descriptor(flags knownFlags: MigrationFlags? = nil, expectedStateSize: UInt64? = nil) throws(VFIOError) -> DeviceDescriptor {
        let flags: MigrationFlags
        if let knownFlags { flags = knownFlags } else { flags = try migration.migrationFlags() }
        let pci = try pciIdentity()
        if let mock {
            // A mock's logical state size stands in for the estimate: a replay target is shaped by it.
            let c = mock.configuration
            // The name records the mock's full spec, so a replay can build a matching target.
            return DeviceDescriptor(
                name: c.spec, deviceAPI: "vfio-pci", driverName: c.driverName, driverVersion: c.driverVersion,
                pci: pci, mdev: c.mdevType.map { MdevDefinition(type: $0) }, migrationFlags: flags,
                expectedStateSize: c.stateSize, vendorCompatibility: c.compat)
        }
        switch discovered {
        case .mdev(let info):
            let driver = info.typeID.split(separator: "-").first.map(String.init) ?? info.typeID
            return DeviceDescriptor(
                name: displayName, deviceAPI: info.deviceAPI ?? "vfio-pci", driverName: driver,
                driverVersion: Self.moduleVersion(driver), pci: pci, mdev: MdevDefinition(type: info.typeID),
                migrationFlags: flags, expectedStateSize: expectedStateSize)
        case .pci(let info):
            let driver = info.driver ?? "vfio-pci"
            return DeviceDescriptor(
                name: displayName, deviceAPI: "vfio-pci", driverName: driver, driverVersion: Self.moduleVersion(driver),
                pci: pci, migrationFlags: flags, expectedStateSize: expectedStateSize)
        case nil:
            return DeviceDescriptor(
                name: displayName, deviceAPI: "vfio-pci", driverName: "unknown", driverVersion: "",
                pci: pci, migrationFlags: flags, expectedStateSize: expectedStateSize)
        }
    }

    /// Vendor, device, subsystem IDs, revision and class from the PCI config region.
    func pciIdentity() throws(VFIOError) -> PCIIdentity? {
        guard (try? vfio.info().isPCI) == true else { return nil }
        let region = try vfio.regionInfo(7)
        let bytes = try vfio.readRegion(region, count: 0x30)
        guard bytes.count == 0x30 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        return PCIIdentity(
            vendorID: u16(0), deviceID: u16(2), subsystemVendorID: u16(0x2C), subsystemDeviceID: u16(0x2E),
            revision: bytes[8], classCode: UInt32(bytes[9]) | UInt32(bytes[10]) << 8 | UInt32(bytes[11]) << 16)
    }

    /// A module's version (/sys/module/NAME/version); in-tree drivers have none and version
    /// with the kernel, so the kernel release stands in.
    static func moduleVersion(_ module: String) -> String {
        let name = module.replacingOccurrences(of: "-", with: "_")
        if let v = try? String(contentsOfFile: "/sys/module/\(name)/version", encoding: .utf8) {
            return v.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return HostInfo.current.kernelRelease
    }
}

/// The source host's identity for the stream header.
enum HostInfo {
    static let current: HostIdentity = {
        func read(_ path: String) -> String {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return HostIdentity(
            hostName: ProcessInfo.processInfo.hostName, machineID: read("/etc/machine-id"),
            kernelRelease: read("/proc/sys/kernel/osrelease"))
    }()
}
