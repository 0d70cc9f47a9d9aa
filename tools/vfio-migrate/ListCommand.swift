import ArgumentParser
import Foundation
import VFIOMigration

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List VFIO-capable devices and whether each can live-migrate (or why not).",
        discussion: """
            Without DEVICE arguments, every PCI function that is not a bridge and every mdev in
            sysfs is listed. Devices bound to a VFIO driver are opened one at a time and asked
            with GETs and PROBEs only (no state changes); one that cannot be opened says why and
            the listing goes on. Reasons use QEMU's migration blockers' terms: not bound to a
            VFIO driver, no migration feature, no STOP_COPY, no dirty tracking while the device
            can DMA, no P2P where several devices must stop together (devices sharing an IOMMU
            group, or the DEVICEs named together). Exit 0 when the listing was made, also on a
            machine without VFIO (then one line says so).

            Examples:
              vfio-migrate list
              vfio-migrate list --json | jq '.devices[] | select(.verdict.status == "migratable") | .name'
              vfio-migrate list 0000:3b:00.2 0000:3b:00.3      # as a set that stops together
              vfio-migrate list 'mock:a' 'mock:b?flags=stop-copy'
            """)

    @Argument(help: "Devices to judge as one set (default: every device in sysfs).") var devices: [String] = []
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        try execute(common) { invocation in
            let env = environment.make()
            let inventory = devices.isEmpty ? try env.migrationInventory() : env.migrationInventory(of: devices)
            invocation.logger.info("listed \(inventory.devices.count) device(s)")
            if common.json { return try JSONOutput.print(inventory) }
            Console.out(Self.render(inventory, named: !devices.isEmpty))
        }
    }

    static func render(_ inventory: MigrationInventory, named: Bool) -> String {
        var out: [String] = []
        // Named emulated devices need no VFIO; say so only where it kept devices from being asked.
        if !inventory.vfio.available && (!named || inventory.devices.contains { $0.verdict.status == .unknown }) {
            out.append(inventory.vfio.message)
        }
        if inventory.devices.isEmpty {
            out.append("no VFIO-capable devices found")
            return out.joined(separator: "\n")
        }
        let rows = inventory.devices.map { d -> [String] in
            [shown(d.name, limit: 64), d.kind.rawValue, shown(d.mdevType ?? d.className ?? "-", limit: 40),
             shown(d.driver ?? "-", limit: 40), d.iommuGroup.map(String.init) ?? "-", status(d)]
        }
        let table = TextColumns.render(header: ["DEVICE", "KIND", "CLASS/TYPE", "DRIVER", "GROUP", "MIGRATION"], rows: rows)
        var lines = table.split(separator: "\n").map(String.init)
        // Each device's reasons and hint right under its row.
        var result = [lines.removeFirst()]
        for (d, line) in zip(inventory.devices, lines) {
            result.append(line)
            for b in d.verdict.blockers { result.append("    - \(shown(b.message, limit: 512))") }
            if let reason = d.verdict.reason { result.append("    - \(shown(reason, limit: 512))") }
            if let hint = d.verdict.hint { result.append("    hint: \(shown(hint, limit: 512))") }
        }
        out += result
        for problem in inventory.problems { out.append("could not read: \(shown(problem, limit: 512))") }
        return out.joined(separator: "\n")
    }

    static func status(_ d: InventoryDevice) -> String {
        switch d.verdict.status {
        case .migratable:
            let flags = d.capabilities?.flags.map { "\($0)" } ?? ""
            return "migratable (\(flags); \(tracker(d.capabilities)))"
        case .notMigratable:
            return "not migratable: " + d.verdict.blockers.map(\.kind.rawValue).joined(separator: ", ")
        case .unknown:
            return "unknown"
        }
    }

    static func tracker(_ c: MigrationCapabilities?) -> String {
        guard let c else { return "-" }
        if c.dmaLogging { return "dirty pages: device DMA logging" }
        if c.type1?.precise == true { return "dirty pages: type1 (precise)" }
        return "no dirty tracking"
    }
}

/// Left-aligned columns two spaces apart, no trailing blanks.
enum TextColumns {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        return all.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n")
    }
}
