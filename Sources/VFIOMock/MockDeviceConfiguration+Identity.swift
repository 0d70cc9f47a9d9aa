// What a stream descriptor records about a mock device, and back: the vendor compatibility
// string (everything a target must share to accept this device's state), the identity a
// replay device takes from its capture, and a fault-free target shaped like a descriptor.
import VFIOStream

extension MockDeviceConfiguration {
    /// Encodes what a target must share to accept this device's state: the compatibility id,
    /// the block size and the content source, e.g. `compat=mock-1;block-size=65536;source=generated`.
    /// A replay device carries its capture's string (its state is the capture's).
    public var vendorCompatibility: String {
        if let replay { return replay.descriptor.vendorCompatibility }
        return "compat=\(compat);block-size=\(blockSize);source=\(stateSource.rawValue)"
    }

    /// Takes the identity a replay device gets from its capture: migration flags, PCI
    /// identity, driver, mdev type and state size; a replay device dirties nothing itself.
    mutating func adopt(_ capture: MockCapture) {
        let d = capture.descriptor
        replay = capture
        takeIdentity(of: d)
        stateSize = d.expectedStateSize ?? capture.totalBytes
        dirtyRate = .none
    }

    /// The descriptor's flags, PCI identity (when it has one), driver and mdev type.
    private mutating func takeIdentity(of d: DeviceDescriptor) {
        migrationFlags = UInt32(truncatingIfNeeded: d.migrationFlags.rawValue)
        if let pci = d.pci {
            vendorID = pci.vendorID
            deviceID = pci.deviceID
            subsystemVendorID = pci.subsystemVendorID
            subsystemID = pci.subsystemDeviceID
            revision = pci.revision
            classCode = pci.classCode
        }
        driver = d.driverName
        driverVersion = d.driverVersion
        mdevType = d.mdev?.type
    }

    /// A fault-free device that accepts streams of the device `descriptor` describes: its
    /// state size (expectedStateSize), migration flags, PCI identity, driver, mdev type, and
    /// the compatibility id, block size and content source parsed back from its
    /// vendorCompatibility. A descriptor no mock device can match is an error saying why.
    public init(name: String, shapedLike descriptor: DeviceDescriptor) throws(MockShapeError) {
        func fail(_ message: String) -> MockShapeError {
            MockShapeError(name: name, descriptor: descriptor.name, message: message)
        }
        guard MockSpec.isValidName(name) else { throw fail("'\(name)' is not a mock device name (1-64 letters, digits, '-', '_' or '.')") }
        self.init(name: name)
        guard descriptor.deviceAPI == "vfio-pci" else { throw fail("device API \(descriptor.deviceAPI); mock devices are vfio-pci") }
        guard descriptor.pci != nil else { throw fail("no PCI identity; mock devices are PCI functions") }
        let flags = descriptor.migrationFlags
        guard flags.contains(.stopCopy), flags.rawValue & ~UInt64(0x7) == 0 else {
            throw fail("migration flags \(flags) are not a combination a device can report (STOP_COPY, P2P, PRE_COPY)")
        }
        guard let size = descriptor.expectedStateSize else { throw fail("no expectedStateSize: the state size to accept is unknown") }
        let shape = try Self.parseVendorCompatibility(descriptor, fail)
        for (what, text) in [("driver name", descriptor.driverName), ("driver version", descriptor.driverVersion)] {
            guard (try? MockSpec.word(text)) != nil else { throw fail("\(what) '\(text)' cannot be a mock's (1-128 letters, digits or - _ . : +)") }
        }
        if let mdev = descriptor.mdev {
            guard mdev.attributes.isEmpty else { throw fail("mdev attributes (\(mdev.attributes.map(\.name).joined(separator: ", "))) are not emulated") }
            guard (try? MockSpec.word(mdev.type)) != nil else { throw fail("mdev type '\(mdev.type)' cannot be a mock's") }
        }
        guard size == 0 || size / UInt64(shape.blockSize) <= UInt64(Int32.max) else {
            throw fail("a state of \(size) bytes in \(shape.blockSize)-byte blocks needs more than 2^31 blocks")
        }
        takeIdentity(of: descriptor)
        stateSize = size
        compat = shape.compat
        blockSize = shape.blockSize
        stateSource = shape.source
    }

    /// `compat=ID;block-size=N;source=KIND` (source optional). A bare id is what streams
    /// written before this encoding carry: the block size then comes from the descriptor's
    /// name when that is a mock spec, else the default.
    private static func parseVendorCompatibility(
        _ descriptor: DeviceDescriptor, _ fail: (String) -> MockShapeError
    ) throws(MockShapeError) -> (compat: String, blockSize: Int, source: StateSource) {
        let text = descriptor.vendorCompatibility
        let expected = "vendor compatibility '\(text)' is not a mock device's (compat=ID;block-size=N;source=generated|fast)"
        if !text.contains("="), (try? MockSpec.word(text)) != nil {
            let named = try? MockDeviceConfiguration(spec: descriptor.name)
            return (text, named?.blockSize ?? MockDeviceConfiguration(name: "x").blockSize, .generated)
        }
        var fields: [String: String] = [:]
        for part in text.split(separator: ";", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, fields.updateValue(String(pair[1]), forKey: String(pair[0])) == nil else { throw fail(expected) }
        }
        guard let compat = fields.removeValue(forKey: "compat"), (try? MockSpec.word(compat)) != nil,
              let sizeText = fields.removeValue(forKey: "block-size"), let blockSize = Int(sizeText),
              blockSize >= 8, blockSize <= 16 << 20, blockSize % 8 == 0
        else { throw fail(expected) }
        let source = StateSource(rawValue: fields.removeValue(forKey: "source") ?? "generated")
        guard let source, fields.isEmpty else { throw fail(expected) }
        return (compat, blockSize, source)
    }
}

/// A descriptor no mock device can be shaped like, with the reason.
public struct MockShapeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let descriptor: String
    public let message: String
    public var description: String { "cannot shape mock device \(name) like '\(descriptor)': \(message)" }
}
