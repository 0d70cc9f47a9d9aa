// `vfio-migrate list`: every device VFIO could hand to a guest, with its migration flags or
// the reason it cannot migrate. Devices bound to a VFIO driver are opened one at a time and
// asked with GETs and PROBEs only; one that cannot be opened says why and the listing goes on.
import VFIOCore
import VFIOStream

public struct InventoryDevice: Sendable, Encodable {
    public enum Kind: String, Sendable, Hashable, Codable { case pci, mdev }

    /// PCI address, mdev UUID, or the name the device was given by.
    public var name: String
    public var kind: Kind
    public var driver: String?
    public var iommuGroup: Int?
    /// `vendor:device` in hex, for PCI functions.
    public var ids: String?
    /// The 24-bit PCI class code as hex ("0x020000"), and its short name.
    public var classCode: String?
    public var className: String?
    /// The physical function of an SR-IOV virtual function.
    public var physicalFunction: String?
    public var mdevType: String?
    public var parent: String?
    /// What the device said; nil when it was not asked.
    public var capabilities: MigrationCapabilities?
    public var verdict: MigrationVerdict

    init(name: String, kind: Kind, verdict: MigrationVerdict = .unknown("not asked")) {
        self.name = name
        self.kind = kind
        self.verdict = verdict
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, driver, iommuGroup, ids, classCode, className, physicalFunction, mdevType, parent, capabilities, verdict
    }

    /// Every key always present (null when unknown), so consumers need no existence checks.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encode(driver, forKey: .driver)
        try c.encode(iommuGroup, forKey: .iommuGroup)
        try c.encode(ids, forKey: .ids)
        try c.encode(classCode, forKey: .classCode)
        try c.encode(className, forKey: .className)
        try c.encode(physicalFunction, forKey: .physicalFunction)
        try c.encode(mdevType, forKey: .mdevType)
        try c.encode(parent, forKey: .parent)
        try c.encode(capabilities, forKey: .capabilities)
        try c.encode(verdict, forKey: .verdict)
    }
}

public struct MigrationInventory: Sendable, Encodable {
    public var vfio: VFIOAvailability
    public var devices: [InventoryDevice]
    /// Devices sysfs could not describe (the rest of the listing is still valid).
    public var problems: [String]
}

extension DeviceEnvironment {
    /// Every PCI function that is not a bridge, and every mdev, from this environment's sysfs.
    /// Throws only when the sysfs root is missing.
    public func migrationInventory() throws(VFIOError) -> MigrationInventory {
        let discovery = SysfsDiscovery(root: sysfsRoot)
        let report: DiscoveryReport
        do {
            report = try discovery.report(devRoot: devRoot)
        } catch {
            throw VFIOError(.notFound, "cannot list devices: \(error)", device: sysfsRoot)
        }
        let functions = report.pciDevices.filter { $0.classCode >> 16 != 0x06 }
        var entries = functions.map { InventoryDevice(pci: $0) } + report.mdevDevices.map { InventoryDevice(mdev: $0) }
        // Devices that share an IOMMU group go to one guest and stop together.
        let boundFlags = functions.map(\.isBoundToVFIO) + report.mdevDevices.map { $0.driver != nil }
        var groups: [Int: [String]] = [:]
        for (entry, bound) in zip(entries, boundFlags) where bound && entry.kind == .pci {
            if let group = entry.iommuGroup { groups[group, default: []].append(entry.name) }
        }
        for i in entries.indices {
            let peers = entries[i].iommuGroup.flatMap { groups[$0] }?.filter { $0 != entries[i].name } ?? []
            ask(&entries[i], bound: boundFlags[i], available: report.vfio, peers: entries[i].kind == .pci ? peers : [])
        }
        return MigrationInventory(vfio: report.vfio, devices: entries, problems: report.problems)
    }

    /// The named devices (any name `open` takes, `mock:` ones included), judged as one set that
    /// must stop together.
    public func migrationInventory(of names: [String]) -> MigrationInventory {
        let discovery = SysfsDiscovery(root: sysfsRoot)
        let vfio = discovery.vfioAvailability(devRoot: devRoot)
        var entries: [InventoryDevice] = []
        // Peers by their names without options ("mock:a", not "mock:a?state=1MiB").
        let plain = names.map { String($0.split(separator: "?", maxSplits: 1).first ?? Substring($0)) }
        for (name, own) in zip(names, plain) {
            let peers = plain.filter { $0 != own }
            // Kernel devices are described from sysfs first, so an unbound one says so.
            if let found = try? discovery.resolve(name) {
                var entry: InventoryDevice
                let bound: Bool
                switch found {
                case .pci(let info): entry = InventoryDevice(pci: info); bound = info.isBoundToVFIO
                case .mdev(let info): entry = InventoryDevice(mdev: info); bound = info.driver != nil
                }
                ask(&entry, bound: bound, available: vfio, peers: peers)
                entries.append(entry)
                continue
            }
            var entry = InventoryDevice(name: name, kind: .pci)
            do {
                let device = try open(name)
                entry.name = device.name
                entry.kind = device.isMediated ? .mdev : .pci
                entry.driver = device.identity.driverName
                entry.iommuGroup = device.group.number
                entry.mdevType = device.identity.mdev?.type
                let identity = try? device.pciIdentity()
                if let pci = identity ?? nil {
                    entry.ids = PCIAddress.hex(UInt32(pci.vendorID), width: 4) + ":" + PCIAddress.hex(UInt32(pci.deviceID), width: 4)
                    entry.classCode = "0x" + PCIAddress.hex(pci.classCode, width: 6)
                    entry.className = PCIClassName.name(for: pci.classCode)
                }
                judge(&entry, device: device, peers: peers)
            } catch {
                entry.verdict = .unknown(error.description, hint: error.hint ?? error.operatorHint)
            }
            entries.append(entry)
        }
        return MigrationInventory(vfio: vfio, devices: entries, problems: [])
    }

    /// Opens a bound device (when VFIO is there), reads its capabilities and judges it; the
    /// device is closed again before the next one is asked.
    private func ask(_ entry: inout InventoryDevice, bound: Bool, available: VFIOAvailability, peers: [String]) {
        guard bound else {
            entry.verdict = MigrationVerdict.judge(
                capabilities: nil, bound: false, driver: entry.driver, mediated: entry.kind == .mdev,
                classCode: entry.classCode.flatMap { UInt32($0.dropFirst(2), radix: 16) })
            return
        }
        // The listing says once that VFIO is missing; each device only that it was not asked.
        guard available.available else {
            entry.verdict = .unknown("not asked: no VFIO on this host")
            return
        }
        do {
            let device = try open(entry.name)
            judge(&entry, device: device, peers: peers)
        } catch {
            entry.verdict = .unknown("cannot open it to ask: \(error)", hint: error.hint ?? error.operatorHint)
        }
    }

    private func judge(_ entry: inout InventoryDevice, device: VFIODevice, peers: [String]) {
        do {
            let capabilities = try device.migrationCapabilities()
            entry.capabilities = capabilities
            entry.verdict = MigrationVerdict.judge(
                capabilities: capabilities, bound: true, driver: entry.driver, mediated: device.isMediated,
                classCode: device.pciClassCode(), peers: peers)
        } catch {
            entry.verdict = .unknown("cannot read its migration capabilities: \(error)", hint: error.hint ?? error.operatorHint)
        }
    }
}

extension InventoryDevice {
    init(pci info: PCIDeviceInfo) {
        self.init(name: info.address.description, kind: .pci)
        driver = info.driver
        iommuGroup = info.iommuGroup
        ids = info.vendorDevice
        classCode = "0x" + PCIAddress.hex(info.classCode, width: 6)
        className = info.className
        physicalFunction = info.physfn?.description
    }

    init(mdev info: MdevDeviceInfo) {
        self.init(name: info.uuid, kind: .mdev)
        driver = info.driver
        iommuGroup = info.iommuGroup
        mdevType = info.typeID
        parent = info.parent
    }
}
