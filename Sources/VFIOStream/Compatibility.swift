// Can a target device resume a source device's state? Decided from the two descriptors
// alone, before the target enters RESUMING (and, when the target is known early, before
// the source stops), so a mismatch costs nothing. The rules are in docs/stream-format.md.

/// One reason a target cannot take a source device's state.
public enum CompatibilityMismatch: Sendable, Hashable, CustomStringConvertible {
    case deviceAPI(source: String, target: String)
    /// One side is a PCI device, the other is not.
    case pciPresence(source: Bool, target: Bool)
    case vendorID(source: UInt16, target: UInt16)
    case deviceID(source: UInt16, target: UInt16)
    case subsystemVendorID(source: UInt16, target: UInt16)
    case subsystemDeviceID(source: UInt16, target: UInt16)
    case classCode(source: UInt32, target: UInt32)
    case driverName(source: String, target: String)
    /// Full version strings; their majors (leading numbers) differ.
    case driverMajorVersion(source: String, target: String)
    /// nil: that side is not an mdev.
    case mdevType(source: String?, target: String?)
    /// The attribute's values (in order; several when repeated) differ; [] means absent.
    case mdevAttribute(name: String, source: [String], target: [String])
    /// Flags the target must have but lacks.
    case missingMigrationFlags(MigrationFlags)
    case vendorCompatibility(source: String, target: String)

    /// Short machine-readable name of the mismatch.
    public var field: String {
        switch self {
        case .deviceAPI: "deviceAPI"
        case .pciPresence: "pci"
        case .vendorID: "vendorID"
        case .deviceID: "deviceID"
        case .subsystemVendorID: "subsystemVendorID"
        case .subsystemDeviceID: "subsystemDeviceID"
        case .classCode: "classCode"
        case .driverName: "driverName"
        case .driverMajorVersion: "driverMajorVersion"
        case .mdevType: "mdevType"
        case .mdevAttribute: "mdevAttribute"
        case .missingMigrationFlags: "migrationFlags"
        case .vendorCompatibility: "vendorCompatibility"
        }
    }

    /// The source and target values as text (for messages and JSON).
    public var values: MismatchValues {
        func text(_ value: String?) -> String { value.map { "\"\($0)\"" } ?? "none" }
        switch self {
        case let .deviceAPI(s, t), let .driverName(s, t), let .vendorCompatibility(s, t): return MismatchValues(source: text(s), target: text(t))
        case let .pciPresence(s, t): return MismatchValues(source: s ? "PCI" : "not PCI", target: t ? "PCI" : "not PCI")
        case let .vendorID(s, t), let .deviceID(s, t), let .subsystemVendorID(s, t), let .subsystemDeviceID(s, t):
            return MismatchValues(source: paddedHex(s, digits: 4), target: paddedHex(t, digits: 4))
        case let .classCode(s, t): return MismatchValues(source: paddedHex(s, digits: 6), target: paddedHex(t, digits: 6))
        case let .driverMajorVersion(s, t):
            return MismatchValues(source: "\(text(s)) (major \(driverMajor(of: s)))", target: "\(text(t)) (major \(driverMajor(of: t)))")
        case let .mdevType(s, t): return MismatchValues(source: text(s), target: text(t))
        case let .mdevAttribute(_, s, t):
            func list(_ values: [String]) -> String { values.isEmpty ? "absent" : values.map { "\"\($0)\"" }.joined(separator: ", ") }
            return MismatchValues(source: list(s), target: list(t))
        case let .missingMigrationFlags(flags): return MismatchValues(source: flags.description, target: "lacks \(flags.description)")
        }
    }

    public var description: String {
        let (source, target) = (values.source, values.target)
        switch self {
        case let .mdevAttribute(name, _, _): return "mdev attribute \(name): source \(source), target \(target)"
        case let .missingMigrationFlags(flags): return "target lacks migration flags \(flags)"
        default: return "\(field): source \(source), target \(target)"
        }
    }
}

extension CompatibilityMismatch: Encodable {
    enum CodingKeys: String, CodingKey { case field, name, source, target, description }

    /// JSON: {"field": "vendorID", "source": "0x8086", "target": "0x15b3", "description": "..."}.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(field, forKey: .field)
        if case let .mdevAttribute(name, _, _) = self { try c.encode(name, forKey: .name) }
        let (source, target) = (values.source, values.target)
        try c.encode(source, forKey: .source)
        try c.encode(target, forKey: .target)
        try c.encode(description, forKey: .description)
    }
}

/// Every reason `target` cannot resume state saved from `source`; empty when compatible.
/// Pure: looks at the two descriptors only, never at device state.
public func compatibility(of source: DeviceDescriptor, with target: DeviceDescriptor) -> [CompatibilityMismatch] {
    var result: [CompatibilityMismatch] = []
    if source.deviceAPI != target.deviceAPI {
        result.append(.deviceAPI(source: source.deviceAPI, target: target.deviceAPI))
    }
    switch (source.pci, target.pci) {
    case let (s?, t?):
        if s.vendorID != t.vendorID { result.append(.vendorID(source: s.vendorID, target: t.vendorID)) }
        if s.deviceID != t.deviceID { result.append(.deviceID(source: s.deviceID, target: t.deviceID)) }
        if s.subsystemVendorID != t.subsystemVendorID {
            result.append(.subsystemVendorID(source: s.subsystemVendorID, target: t.subsystemVendorID))
        }
        if s.subsystemDeviceID != t.subsystemDeviceID {
            result.append(.subsystemDeviceID(source: s.subsystemDeviceID, target: t.subsystemDeviceID))
        }
        if s.classCode != t.classCode { result.append(.classCode(source: s.classCode, target: t.classCode)) }
        // Revision is informational: see docs/stream-format.md.
    case (nil, nil):
        break
    default:
        result.append(.pciPresence(source: source.pci != nil, target: target.pci != nil))
    }
    if source.driverName != target.driverName {
        result.append(.driverName(source: source.driverName, target: target.driverName))
    }
    if driverMajor(of: source.driverVersion) != driverMajor(of: target.driverVersion) {
        result.append(.driverMajorVersion(source: source.driverVersion, target: target.driverVersion))
    }
    result += mdevMismatches(source.mdev, target.mdev)
    // Resuming needs STOP_COPY; beyond that the target must offer every feature the source used.
    let required = source.migrationFlags.union(.stopCopy)
    let missing = required.subtracting(target.migrationFlags)
    if !missing.isEmpty { result.append(.missingMigrationFlags(missing)) }
    if source.vendorCompatibility != target.vendorCompatibility {
        result.append(.vendorCompatibility(source: source.vendorCompatibility, target: target.vendorCompatibility))
    }
    return result
}

private func mdevMismatches(_ source: MdevDefinition?, _ target: MdevDefinition?) -> [CompatibilityMismatch] {
    guard source != nil || target != nil else { return [] }
    guard let source, let target else { return [.mdevType(source: source?.type, target: target?.type)] }
    var result: [CompatibilityMismatch] = []
    if source.type != target.type { result.append(.mdevType(source: source.type, target: target.type)) }
    // Compare per name, values in order (repeated names such as vfio-ap's assign_domain keep
    // their order); the order between different names does not matter.
    var names: [String] = []
    for attribute in source.attributes + target.attributes where !names.contains(attribute.name) {
        names.append(attribute.name)
    }
    for name in names {
        let sourceValues = source.attributes.filter { $0.name == name }.map(\.value)
        let targetValues = target.attributes.filter { $0.name == name }.map(\.value)
        if sourceValues != targetValues {
            result.append(.mdevAttribute(name: name, source: sourceValues, target: targetValues))
        }
    }
    return result
}

/// The "major" of a driver version: its leading decimal digits ("2.1.0-rc1" -> "2"), or
/// the whole string when it does not start with a digit (then the whole must match).
public func driverMajor(of version: String) -> String {
    let digits = version.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty else { return version }
    let trimmed = digits.drop { $0 == "0" }
    return trimmed.isEmpty ? "0" : String(trimmed)
}

/// A stream-level finding: device counts differ, or one device pair mismatches.
public enum StreamCompatibilityIssue: Sendable, Hashable, CustomStringConvertible {
    case deviceCount(stream: Int, targets: Int)
    case device(index: Int, CompatibilityMismatch)

    public var description: String {
        switch self {
        case let .deviceCount(stream, targets): "the stream carries \(stream) devices, \(targets) targets given"
        case let .device(index, mismatch): "device \(index): \(mismatch)"
        }
    }
}

/// Checks each target against the stream's descriptor of the same index.
public func compatibility(of header: StreamHeader, with targets: [DeviceDescriptor]) -> [StreamCompatibilityIssue] {
    var result: [StreamCompatibilityIssue] = []
    if header.devices.count != targets.count {
        result.append(.deviceCount(stream: header.devices.count, targets: targets.count))
    }
    for (index, (source, target)) in zip(header.devices, targets).enumerated() {
        result += compatibility(of: source, with: target).map { .device(index: index, $0) }
    }
    return result
}

/// One mismatch's source and target values as text.
public struct MismatchValues: Sendable, Hashable {
    public var source: String
    public var target: String
}
