// What a stream records about a device so a target can be checked before it resumes: the
// provider's identity (device API, driver and version, mdev type, vendor string), the PCI
// identity read from config space, the migration flags and the expected state size.
import VFIOCore
import VFIOStream

extension VFIODevice {
    /// Builds the compatibility descriptor (reads config space and the migration feature; no
    /// device state is touched).
    public func descriptor(flags knownFlags: MigrationFlags? = nil, expectedStateSize: UInt64? = nil) throws(VFIOError) -> DeviceDescriptor {
        let flags: MigrationFlags
        if let knownFlags { flags = knownFlags } else { flags = try migrationFlags() }
        let estimate: UInt64?
        if let size = identity.stateSize {
            estimate = size
        } else if let expectedStateSize {
            estimate = expectedStateSize
        } else {
            estimate = try? stopCopySizeEstimate() ?? nil
        }
        return DeviceDescriptor(
            name: name, deviceAPI: identity.deviceAPI, driverName: identity.driverName, driverVersion: identity.driverVersion,
            pci: try pciIdentity(), mdev: identity.mdev, migrationFlags: flags, expectedStateSize: estimate,
            vendorCompatibility: identity.vendorCompatibility)
    }

    /// Vendor, device, subsystem IDs, revision and class from the PCI config region.
    public func pciIdentity() throws(VFIOError) -> PCIIdentity? {
        guard (try? info().isPCI) == true else { return nil }
        let region = try regionInfo(7)
        let bytes = try readRegion(region, count: 0x30)
        guard bytes.count == 0x30 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        return PCIIdentity(
            vendorID: u16(0), deviceID: u16(2), subsystemVendorID: u16(0x2C), subsystemDeviceID: u16(0x2E),
            revision: bytes[8], classCode: UInt32(bytes[9]) | UInt32(bytes[10]) << 8 | UInt32(bytes[11]) << 16)
    }
}
