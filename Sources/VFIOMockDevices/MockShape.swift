// Shaping a replay target from a capture alone: a mock device's data stream starts with the
// mock vendor header (docs/mock.md: little-endian u64 words magic, version, compat id hash,
// state size, block size, ...), and its descriptor carries the compat id as its vendor string.
// Together they say what a fault-free mock target must be to take the capture.
import VFIOCore
import VFIOMigration
import VFIOMock
import VFIOStream

/// Helpers for test authors working with `mock:` devices.
public enum MockDevices {
    /// The mock vendor header's magic ("MOCKFSS1" as little-endian bytes).
    static let headerMagic: UInt64 = 0x3153_5346_4B43_4F4D
    static let headerPrefixBytes = 40

    /// One fault-free mock device spec per device of the stream from `source`, each able to
    /// load that device's state (same compat id, state size, block size, flags, identity).
    /// Throws `.invalidArgument` for a device whose state does not start with the mock vendor
    /// header (a capture of real hardware: name a target yourself).
    public static func replayTargetSpecs(for source: any ByteSource, names: (Int) -> String = { "replay\($0)" }) throws(VFIOError) -> [String] {
        let input = try StreamInput(from: source)
        let devices = input.header.devices
        var prefixes = Array(repeating: [UInt8](), count: devices.count)
        walk: while prefixes.contains(where: { $0.count < headerPrefixBytes }) {
            switch try input.next() {
            case .state(let chunk, let buffer):
                let missing = headerPrefixBytes - prefixes[chunk.device].count
                if missing > 0 {
                    let take = min(missing, chunk.payload.count)
                    prefixes[chunk.device] += buffer.bytes(chunk.payload.lowerBound..<chunk.payload.lowerBound + take)
                }
            case .endOfStream:
                break walk
            case .progress, .endOfDevice:
                continue
            }
        }
        var specs: [String] = []
        for (i, descriptor) in devices.enumerated() {
            guard let spec = targetSpec(for: descriptor, statePrefix: prefixes[i], name: names(i)) else {
                throw VFIOError(
                    .invalidArgument, "device \(i) of the stream (\(descriptor.name)) was not saved from a mock device",
                    device: source.name, hint: "name a target device")
            }
            specs.append(spec)
        }
        return specs
    }

    public static func replayTargetSpecs(forStreamAt path: String, names: (Int) -> String = { "replay\($0)" }) throws(VFIOError) -> [String] {
        try replayTargetSpecs(for: try FileChannel.reading(path), names: names)
    }

    static func targetSpec(for descriptor: DeviceDescriptor, statePrefix bytes: [UInt8], name: String) -> String? {
        guard bytes.count >= headerPrefixBytes else { return nil }
        func word(_ i: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i * 8 + $1]) << (8 * UInt64($1)) } }
        guard word(0) == headerMagic, word(4) > 0, word(4) <= 1 << 30 else { return nil }
        var c = MockDeviceConfiguration(name: name)
        c.compat = descriptor.vendorCompatibility.isEmpty ? c.compat : descriptor.vendorCompatibility
        c.stateSize = word(3)
        c.blockSize = Int(word(4))
        c.migrationFlags = UInt32(truncatingIfNeeded: descriptor.migrationFlags.rawValue)
        c.driver = descriptor.driverName
        c.driverVersion = descriptor.driverVersion
        if let mdev = descriptor.mdev { c.mdevType = mdev.type }
        if let pci = descriptor.pci {
            c.vendorID = pci.vendorID
            c.deviceID = pci.deviceID
            c.subsystemVendorID = pci.subsystemVendorID
            c.subsystemID = pci.subsystemDeviceID
        }
        return c.spec
    }
}
