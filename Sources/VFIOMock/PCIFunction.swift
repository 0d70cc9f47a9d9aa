// The PCI face of a mock device as vfio-pci shows it: nine regions (BAR0 and the 256-byte
// config space are backed; the rest are empty), five IRQ indexes, and region I/O at
// `index << 40` file offsets. Guarded by the kernel lock.
import SystemPackage

final class PCIFunction {
    static let configSize = 256
    static let pageSize = 4096

    let bar0Size: Int
    private var config: [UInt8]
    /// BAR0 contents, allocated a page at a time when first written.
    private var bar0Pages: [Int: [UInt8]] = [:]

    init(configuration c: MockDeviceConfiguration) {
        bar0Size = c.bar0Size
        var bytes = [UInt8](repeating: 0, count: Self.configSize)
        func put16(_ v: UInt16, _ at: Int) { bytes[at] = UInt8(v & 0xFF); bytes[at + 1] = UInt8(v >> 8) }
        put16(c.vendorID, 0x00)
        put16(c.deviceID, 0x02)
        bytes[0x08] = c.revision
        bytes[0x09] = UInt8(truncatingIfNeeded: c.classCode)
        bytes[0x0A] = UInt8(truncatingIfNeeded: c.classCode >> 8)
        bytes[0x0B] = UInt8(truncatingIfNeeded: c.classCode >> 16) // default: network controller
        bytes[0x10] = 0x00 // BAR0: 32-bit memory, not prefetchable
        put16(c.subsystemVendorID, 0x2C)
        put16(c.subsystemID, 0x2E)
        bytes[0x3D] = 0x01 // interrupt pin A
        config = bytes
    }

    /// (size, flags) of a region, or EINVAL for an index vfio-pci would refuse.
    func regionInfo(_ index: UInt32) throws(Errno) -> (size: UInt64, flags: UInt32) {
        switch Int(index) {
        case PCIRegion.bar0:
            return bar0Size == 0 ? (0, 0) : (UInt64(bar0Size), RegionFlag.read | RegionFlag.write)
        case PCIRegion.config:
            return (UInt64(Self.configSize), RegionFlag.read | RegionFlag.write)
        case 1..<PCIRegion.config:
            return (0, 0)
        default:
            // VGA (no VGA on this device) and anything past the last region.
            throw .invalidArgument
        }
    }

    /// Resolves a file offset to (region, offset, bytes available there).
    private func locate(_ offset: Int64, count: Int) throws(Errno) -> (region: Int, at: Int, count: Int) {
        guard offset >= 0 else { throw .invalidArgument }
        let index = Int(UInt64(offset) >> PCIRegion.offsetShift)
        let at = Int(UInt64(offset) & ((1 << PCIRegion.offsetShift) - 1))
        let size: Int
        switch index {
        case PCIRegion.bar0: size = bar0Size
        case PCIRegion.config: size = Self.configSize
        default: throw .invalidArgument
        }
        guard at < size else { throw .invalidArgument }
        return (index, at, min(count, size - at))
    }

    func read(at offset: Int64, count: Int) throws(Errno) -> [UInt8] {
        let (region, at, n) = try locate(offset, count: count)
        if region == PCIRegion.config { return Array(config[at..<at + n]) }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        for i in at..<at + n {
            out.append(bar0Pages[i / Self.pageSize]?[i % Self.pageSize] ?? 0)
        }
        return out
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws(Errno) -> Int {
        let (region, at, n) = try locate(offset, count: bytes.count)
        if region == PCIRegion.config {
            for i in 0..<n where Self.configWritable(at + i) { config[at + i] = bytes[i] }
            // BAR0 sizing: only the address bits above the BAR's size stick.
            let bar = UInt32(config[0x10]) | UInt32(config[0x11]) << 8 | UInt32(config[0x12]) << 16 | UInt32(config[0x13]) << 24
            let masked = bar0Size == 0 ? 0 : bar & ~UInt32(truncatingIfNeeded: bar0Size - 1)
            for j in 0..<4 { config[0x10 + j] = UInt8(truncatingIfNeeded: masked >> (8 * UInt32(j))) }
            return n
        }
        for i in 0..<n {
            let address = at + i
            bar0Pages[address / Self.pageSize, default: [UInt8](repeating: 0, count: Self.pageSize)][address % Self.pageSize] = bytes[i]
        }
        return n
    }

    /// Command, cache line, latency, BAR0 and interrupt line; everything else is read-only.
    private static func configWritable(_ offset: Int) -> Bool {
        (0x04...0x05).contains(offset) || (0x0C...0x0D).contains(offset) || (0x10...0x13).contains(offset) || offset == 0x3C
    }

    /// (flags, count) of an IRQ index: INTx, MSI, MSI-X, ERR, REQ.
    static func irqInfo(_ index: UInt32) throws(Errno) -> (flags: UInt32, count: UInt32) {
        switch index {
        case 0: return (IRQFlag.eventfd | IRQFlag.maskable | IRQFlag.automasked, 1)
        case 1: return (IRQFlag.eventfd | IRQFlag.noResize, 1)
        case 2: return (IRQFlag.eventfd | IRQFlag.noResize, 16)
        case 3, 4: return (IRQFlag.eventfd | IRQFlag.noResize, 1)
        default: throw .invalidArgument
        }
    }
}
