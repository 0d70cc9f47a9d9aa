// Everything `vfio-migrate list` shows: devices, mdevs, VFIO availability, unreadable entries.
import Foundation

/// A snapshot of the host's VFIO-relevant devices. JSON keys are fixed by `CodingKeys`.
public struct DiscoveryReport: Sendable, Equatable, Codable {
    public var sysfsRoot: String
    public var pciDevices: [PCIDeviceInfo]
    public var mdevDevices: [MdevDeviceInfo]
    public var vfio: VFIOAvailability
    /// One line per device that could not be read (the rest of the report is still valid).
    public var problems: [String]

    public init(
        sysfsRoot: String, pciDevices: [PCIDeviceInfo], mdevDevices: [MdevDeviceInfo],
        vfio: VFIOAvailability, problems: [String] = []
    ) {
        self.sysfsRoot = sysfsRoot
        self.pciDevices = pciDevices
        self.mdevDevices = mdevDevices
        self.vfio = vfio
        self.problems = problems
    }

    enum CodingKeys: String, CodingKey { case sysfsRoot, pciDevices, mdevDevices, vfio, problems }

    /// Pretty-printed JSON with sorted keys, so output diffs cleanly between runs.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Aligned tables for a terminal: PCI functions, mdev instances, problems, and VFIO status.
    public func humanTable() -> String {
        var sections: [String] = []
        if pciDevices.isEmpty {
            sections.append("PCI devices: none")
        } else {
            let rows = pciDevices.map { device in
                [
                    device.address.description, device.vendorDevice, device.className,
                    device.driver ?? "-", device.iommuGroup.map(String.init) ?? "-",
                    device.numaNode.map(String.init) ?? "-", device.sriovRole.summary,
                ]
            }
            sections.append(
                "PCI devices (\(pciDevices.count)):\n"
                    + TextTable.render(
                        header: ["ADDRESS", "VENDOR:DEVICE", "CLASS", "DRIVER", "GROUP", "NUMA", "SR-IOV"], rows: rows))
        }
        if mdevDevices.isEmpty {
            sections.append("mdev devices: none")
        } else {
            let rows = mdevDevices.map { mdev in
                [
                    mdev.uuid, mdev.parent, mdev.typeID, mdev.typeName ?? "-", mdev.driver ?? "-",
                    mdev.iommuGroup.map(String.init) ?? "-", mdev.numaNode.map(String.init) ?? "-",
                ]
            }
            sections.append(
                "mdev devices (\(mdevDevices.count)):\n"
                    + TextTable.render(
                        header: ["UUID", "PARENT", "TYPE", "NAME", "DRIVER", "GROUP", "NUMA"], rows: rows))
        }
        if !problems.isEmpty {
            sections.append("Could not read:\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
        }
        sections.append(vfio.message)
        return sections.joined(separator: "\n\n") + "\n"
    }
}

extension SysfsDiscovery {
    /// Gathers a report, recording unreadable devices in `problems` instead of failing.
    /// Throws only when the sysfs root itself is missing.
    public func report(devRoot: String = "/dev") throws -> DiscoveryReport {
        try checkRoot()
        var problems: [String] = []
        var pci: [PCIDeviceInfo] = []
        do {
            for address in try pciAddresses() {
                do { pci.append(try pciDevice(address)) } catch { problems.append("\(address): \(error)") }
            }
        } catch {
            problems.append("\(error)")
        }
        var mdevs: [MdevDeviceInfo] = []
        do {
            for uuid in try mdevUUIDs() {
                do { mdevs.append(try mdevDevice(uuid: uuid)) } catch { problems.append("\(uuid): \(error)") }
            }
        } catch {
            problems.append("\(error)")
        }
        return DiscoveryReport(
            sysfsRoot: root, pciDevices: pci, mdevDevices: mdevs,
            vfio: vfioAvailability(devRoot: devRoot), problems: problems)
    }
}

/// Left-aligned columns separated by two spaces, without trailing blanks.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        return all.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                line += cell
                if column < row.count - 1 {
                    line += String(repeating: " ", count: widths[column] - cell.count + 2)
                }
            }
            return line
        }.joined(separator: "\n")
    }
}
