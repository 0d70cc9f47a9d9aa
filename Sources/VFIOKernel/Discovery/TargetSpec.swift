// What a target device must be to take a device's state, from the descriptor a stream carries
// (or a live device gives): for an mdev, the definition mdevctl takes (`mdev_type`, `start`,
// `attrs`) with a UUID and a parent; for a PCI function (an SR-IOV VF), the identity a target
// function must show.
import Foundation
import VFIOCore
import VFIOStream

/// An mdev to create on the target.
public struct MdevTargetSpec: Sendable, Hashable {
    public var uuid: String
    /// The parent device to create it on; nil when neither given nor found on this host.
    public var parent: String?
    /// Parents on this host that offer the type (with instances left), best first.
    public var parentCandidates: [String]
    public var definition: MdevDefinition
    /// mdevctl's start mode: "manual" (created on `mdevctl start`) or "auto".
    public var start: String
}

/// A PCI function (typically a VF behind a VFIO variant driver) that can take the state.
public struct PCITargetSpec: Sendable, Hashable {
    public var identity: PCIIdentity
    public var deviceAPI: String
    public var driverName: String
    public var driverVersion: String
    /// The part of the version a target's driver must match (its leading number).
    public var driverMajor: String
    public var vendorCompatibility: String
    public var migrationFlags: MigrationFlags
    public var expectedStateSize: UInt64?
    /// Functions on this host with the same vendor, device and subsystem IDs.
    public var candidates: [String]
}

public struct TargetSpec: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case mdev(MdevTargetSpec)
        case pci(PCITargetSpec)
    }

    /// The source device's name as the descriptor records it.
    public var source: String
    public var kind: Kind

    /// Builds the spec for `descriptor`. For an mdev, `uuid` defaults to the source's UUID
    /// (libvirt keeps it across a migration) or a new one, and `parent` to the only parent on
    /// this host that offers the type. Throws `.invalidArgument` for names no sysfs could hold.
    public static func make(
        for descriptor: DeviceDescriptor, uuid: String? = nil, parent: String? = nil,
        host: SysfsDiscovery? = SysfsDiscovery()
    ) throws(VFIOError) -> TargetSpec {
        if let mdev = descriptor.mdev {
            try requireSysfsName(mdev.type, "mdev type", descriptor)
            for attribute in mdev.attributes { try requireSysfsName(attribute.name, "mdev attribute name", descriptor) }
            if let parent { try requireSysfsName(parent, "parent", descriptor) }
            let chosenUUID: String
            if let uuid {
                guard let parsed = UUID(uuidString: uuid) else {
                    throw VFIOError(.invalidArgument, "\(DisplayText.escaped(uuid)) is not a UUID", device: descriptor.name)
                }
                chosenUUID = parsed.uuidString.lowercased()
            } else {
                chosenUUID = UUID(uuidString: descriptor.name)?.uuidString.lowercased() ?? UUID().uuidString.lowercased()
            }
            let candidates = host.map { parents(offering: mdev.type, in: $0) } ?? []
            return TargetSpec(source: descriptor.name, kind: .mdev(MdevTargetSpec(
                uuid: chosenUUID, parent: parent ?? (candidates.count == 1 ? candidates[0] : nil),
                parentCandidates: candidates, definition: mdev, start: "manual")))
        }
        guard let pci = descriptor.pci else {
            throw VFIOError(
                .notSupported, "the descriptor has neither an mdev type nor a PCI identity, so no target can be described",
                device: descriptor.name)
        }
        return TargetSpec(source: descriptor.name, kind: .pci(PCITargetSpec(
            identity: pci, deviceAPI: descriptor.deviceAPI, driverName: descriptor.driverName,
            driverVersion: descriptor.driverVersion, driverMajor: VFIOStream.driverMajor(of: descriptor.driverVersion),
            vendorCompatibility: descriptor.vendorCompatibility, migrationFlags: descriptor.migrationFlags,
            expectedStateSize: descriptor.expectedStateSize,
            candidates: host.map { functions(matching: pci, in: $0) } ?? [])))
    }

    /// A name that becomes one sysfs path component: no slash, not "." or "..", printable.
    static func requireSysfsName(_ name: String, _ what: String, _ descriptor: DeviceDescriptor) throws(VFIOError) {
        let printable = name.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "/" }
        guard !name.isEmpty, name != ".", name != "..", name.utf8.count <= 255, printable else {
            throw VFIOError(
                .invalidArgument, "the \(what) \(DisplayText.bounded(name, limit: 80)) cannot name a sysfs entry",
                device: descriptor.name)
        }
    }

    static func parents(offering type: String, in host: SysfsDiscovery) -> [String] {
        let parents = (try? host.mdevParents()) ?? []
        let offering: [(String, Int)] = parents.compactMap { parent in
            guard let found = (try? host.mdevTypes(parent: parent))?.first(where: { $0.typeID == type }) else { return nil }
            return (parent, found.availableInstances ?? 0)
        }
        return offering.sorted { $0.1 > $1.1 }.filter { $0.1 > 0 }.map(\.0)
    }

    static func functions(matching pci: PCIIdentity, in host: SysfsDiscovery) -> [String] {
        let all = (try? host.report())?.pciDevices ?? []
        return all.filter {
            $0.vendorID == pci.vendorID && $0.deviceID == pci.deviceID
                && $0.subsystemVendorID == pci.subsystemVendorID && $0.subsystemDeviceID == pci.subsystemDeviceID
        }.map { $0.address.description }
    }
}

extension MdevTargetSpec {
    /// The commands an operator runs to create the device (the definition file is what
    /// `vfio-migrate target-spec --json` prints), each word shell-quoted.
    public func commands(definitionFile: String) -> [String] {
        let parentWord = parent.map(shellQuoted) ?? "PARENT"
        var lines = [
            "mdevctl define --uuid \(uuid) --parent \(parentWord) --jsonfile \(shellQuoted(definitionFile))",
            "mdevctl start --uuid \(uuid)",
        ]
        let base = "/sys/class/mdev_bus/" + (parent ?? "PARENT")
        lines.append("# or, without mdevctl:")
        lines.append("echo \(uuid) > \(shellQuoted(base + "/mdev_supported_types/" + definition.type + "/create"))")
        for attribute in definition.attributes {
            lines.append("echo \(shellQuoted(attribute.value)) > \(shellQuoted("/sys/bus/mdev/devices/\(uuid)/\(attribute.name)"))")
        }
        return lines
    }
}

/// `text` as one word for a POSIX shell: bare when it is plainly safe, else single-quoted.
public func shellQuoted(_ text: String) -> String {
    let safe = !text.isEmpty && text.unicodeScalars.allSatisfy {
        ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A) || ($0.value >= 0x61 && $0.value <= 0x7A)
            || "-_./:=+,@%".unicodeScalars.contains($0)
    }
    return safe ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension TargetSpec: Encodable {
    enum CodingKeys: String, CodingKey {
        case kind, source, uuid, parent, parentCandidates, mdevType = "mdev_type", start, attrs
        case vendor, device, subsystemVendor = "subsystem_vendor", subsystemDevice = "subsystem_device", classCode = "class"
        case deviceAPI, driver, vendorCompatibility, migrationFlags, expectedStateSize, candidates
    }

    enum DriverKeys: String, CodingKey { case name, version, major }

    struct NameKey: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// For an mdev the document is itself a definition `mdevctl define --jsonfile` takes
    /// (`mdev_type`, `start`, `attrs`; mdevctl ignores the other keys).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        switch kind {
        case .mdev(let m):
            try c.encode("mdev", forKey: .kind)
            try c.encode(m.uuid, forKey: .uuid)
            try c.encode(m.parent, forKey: .parent)
            try c.encode(m.parentCandidates, forKey: .parentCandidates)
            try c.encode(m.definition.type, forKey: .mdevType)
            try c.encode(m.start, forKey: .start)
            // mdevctl's attrs: [{"name": "value"}, ...], written to sysfs in this order.
            var attrs = c.nestedUnkeyedContainer(forKey: .attrs)
            for attribute in m.definition.attributes {
                var entry = attrs.nestedContainer(keyedBy: NameKey.self)
                try entry.encode(attribute.value, forKey: NameKey(attribute.name))
            }
        case .pci(let p):
            try c.encode("pci", forKey: .kind)
            try c.encode(hex(p.identity.vendorID, 4), forKey: .vendor)
            try c.encode(hex(p.identity.deviceID, 4), forKey: .device)
            try c.encode(hex(p.identity.subsystemVendorID, 4), forKey: .subsystemVendor)
            try c.encode(hex(p.identity.subsystemDeviceID, 4), forKey: .subsystemDevice)
            try c.encode(hex(p.identity.classCode, 6), forKey: .classCode)
            try c.encode(p.deviceAPI, forKey: .deviceAPI)
            var driver = c.nestedContainer(keyedBy: DriverKeys.self, forKey: .driver)
            try driver.encode(p.driverName, forKey: .name)
            try driver.encode(p.driverVersion, forKey: .version)
            try driver.encode(p.driverMajor, forKey: .major)
            try c.encode(p.vendorCompatibility, forKey: .vendorCompatibility)
            try c.encode(p.migrationFlags, forKey: .migrationFlags)
            try c.encode(p.expectedStateSize, forKey: .expectedStateSize)
            try c.encode(p.candidates, forKey: .candidates)
        }
    }

    private func hex<T: FixedWidthInteger>(_ value: T, _ digits: Int) -> String {
        let text = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

extension VFIODevice {
    /// The spec of a device equivalent to this one (its descriptor; an mdev keeps its parent
    /// unless `parent` says otherwise).
    public func targetSpec(uuid: String? = nil, parent: String? = nil, host: SysfsDiscovery? = nil) throws(VFIOError) -> TargetSpec {
        var ownParent: String?
        if case .mdev(let info) = discovered { ownParent = info.parent }
        return try TargetSpec.make(for: try descriptor(), uuid: uuid, parent: parent ?? ownParent, host: host)
    }
}
