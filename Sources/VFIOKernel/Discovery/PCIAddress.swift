// A PCI function address: domain:bus:device.function, as sysfs names devices.

/// A PCI function address such as `0000:06:0d.0`.
///
/// Parsing accepts the full form and the short form `06:0d.0` (domain 0). Formatting always
/// gives the full lower-case form the kernel uses for sysfs names and `VFIO_GROUP_GET_DEVICE_FD`.
public struct PCIAddress: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let domain: UInt32
    public let bus: UInt8
    /// 0...31
    public let device: UInt8
    /// 0...7
    public let function: UInt8

    /// nil when `device` is above 31 or `function` above 7.
    public init?(domain: UInt32 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        guard device < 32, function < 8 else { return nil }
        self.init(checked: domain, bus: bus, device: device, function: function)
    }

    private init(checked domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) {
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `DDDD:BB:dd.f` or `BB:dd.f`; throws `DiscoveryError.badPCIAddress` saying what is wrong.
    public init(parsing text: String) throws {
        func bad(_ reason: String) -> DiscoveryError { .badPCIAddress(text, reason: reason) }

        let dotParts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard dotParts.count == 2 else { throw bad("expected exactly one '.' before the function number") }
        let colonParts = dotParts[0].split(separator: ":", omittingEmptySubsequences: false)
        guard colonParts.count == 2 || colonParts.count == 3 else {
            throw bad("expected domain:bus:device.function or bus:device.function")
        }

        func hex(_ field: Substring, _ name: String, maxDigits: Int) throws -> UInt32 {
            guard !field.isEmpty, field.count <= maxDigits, field.allSatisfy(\.isHexDigit),
                  let value = UInt32(field, radix: 16)
            else { throw bad("\(name) '\(field)' is not 1 to \(maxDigits) hex digits") }
            return value
        }

        // Domains are 16 bits on most hosts; VMD and some hypervisors use wider ones.
        let domain = colonParts.count == 3 ? try hex(colonParts[0], "domain", maxDigits: 8) : 0
        let bus = try hex(colonParts[colonParts.count - 2], "bus", maxDigits: 2)
        let device = try hex(colonParts[colonParts.count - 1], "device", maxDigits: 2)
        let function = try hex(dotParts[1], "function", maxDigits: 1)
        guard device < 32 else { throw bad("device 0x\(String(device, radix: 16)) is above 0x1f") }
        guard function < 8 else { throw bad("function \(function) is above 7") }
        self.init(checked: domain, bus: UInt8(bus), device: UInt8(device), function: UInt8(function))
    }

    /// Non-throwing parse for places where "not an address" is an ordinary answer.
    public init?(_ text: String) {
        guard let parsed = try? PCIAddress(parsing: text) else { return nil }
        self = parsed
    }

    /// `0000:06:0d.0`
    public var description: String {
        "\(Self.hex(domain, width: 4)):\(Self.hex(UInt32(bus), width: 2)):\(Self.hex(UInt32(device), width: 2)).\(function)"
    }

    public static func < (lhs: PCIAddress, rhs: PCIAddress) -> Bool {
        (lhs.domain, lhs.bus, lhs.device, lhs.function) < (rhs.domain, rhs.bus, rhs.device, rhs.function)
    }

    // Encoded as its text form so JSON output reads like lspci and sysfs.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
