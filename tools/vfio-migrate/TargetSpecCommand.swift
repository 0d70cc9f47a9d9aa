import ArgumentParser
import Foundation
import VFIOMigration

struct TargetSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target-spec",
        abstract: "Describe the target device a stream (or a live device) needs, and how to create it.",
        discussion: """
            SOURCE is a stream file ("-" for standard input) or a device. For an mdev the result
            is the definition `mdevctl define --jsonfile` takes (mdev_type, start, attrs), with a
            UUID (the source's when it has one, else a new one; --uuid overrides) and a parent
            (--parent, else the only parent on this host that offers the type); the text output
            is the commands to run, with mdevctl or through sysfs. With --json the document is
            itself a valid mdevctl definition (mdevctl ignores its other keys). For a PCI
            function (an SR-IOV VF) the result is what a target function must be: vendor,
            device and subsystem IDs, class, driver and its major version, the vendor
            compatibility string, the migration flags, and matching functions on this host.

            Examples:
              vfio-migrate target-spec vf.vfiomig
              vfio-migrate target-spec mdev.vfiomig --parent 0000:00:02.0 --json > target.json
              mdevctl define --uuid "$(jq -r .uuid target.json)" --parent 0000:00:02.0 --jsonfile target.json
              vfio-migrate target-spec 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 --uuid "$(uuidgen)"
            """)

    @Argument(help: "A stream file (or - for standard input), or a device.") var source: String
    @Option(help: "The stream's device to describe, by index (needed when it carries several).") var deviceIndex: Int?
    @Option(help: "UUID of the mdev to create (default: the source's, or a new one).") var uuid: String?
    @Option(help: "Parent device to create the mdev on (mdevctl's --parent).") var parent: String?
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    var sourceIsStream: Bool {
        if source == "-" { return true }
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: source, isDirectory: &directory) && !directory.boolValue
            && !source.hasPrefix(environment.sysfsRoot + "/")
    }

    func run() throws {
        try execute(common) { invocation in
            let host = SysfsDiscovery(root: environment.sysfsRoot)
            let spec: TargetSpec
            if sourceIsStream {
                spec = try Migration.targetSpec(
                    forStreamFrom: try CheckedStream.open(source), device: deviceIndex, uuid: uuid, parent: parent, host: host)
            } else {
                guard deviceIndex == nil else { throw CLIFailure(.usage, "--device-index applies to a stream, not to a device") }
                spec = try environment.make().open(source).targetSpec(uuid: uuid, parent: parent, host: host)
            }
            if common.json { return try JSONOutput.print(spec) }
            Console.out(render(spec))
        }
    }

    func render(_ spec: TargetSpec) -> String {
        var out: [String] = []
        switch spec.kind {
        case .mdev(let m):
            out.append("target mdev for \(shown(spec.source)):")
            out.append("  mdev type    \(shown(m.definition.type))")
            out.append("  uuid         \(m.uuid)")
            if let p = m.parent {
                out.append("  parent       \(shown(p))")
            } else {
                let offered = m.parentCandidates.isEmpty ? "none on this host offers the type"
                    : "parents here offering the type: " + m.parentCandidates.map { shown($0) }.joined(separator: ", ")
                out.append("  parent       not known: pass --parent (\(offered))")
            }
            out.append("  start        \(m.start)")
            if m.definition.attributes.isEmpty { out.append("  attrs        (none)") }
            for a in m.definition.attributes { out.append("  attr         \(shown(a.name, limit: 64)) = \(shown(a.value))") }
            out.append("create it with:")
            var again = ["vfio-migrate", "target-spec", source, "--uuid", m.uuid]
            if let p = m.parent { again += ["--parent", p] }
            out.append("  " + (again + ["--json"]).map(shellQuoted).joined(separator: " ") + " > target.json")
            out += m.commands(definitionFile: "target.json").map { "  " + shown($0, limit: 1024) }
        case .pci(let p):
            let i = p.identity
            out.append("target PCI function for \(shown(spec.source)):")
            out.append(String(format: "  ids          vendor 0x%04x device 0x%04x, subsystem 0x%04x:0x%04x", i.vendorID, i.deviceID, i.subsystemVendorID, i.subsystemDeviceID))
            out.append(String(format: "  class        0x%06x", i.classCode))
            out.append("  driver       \(shown(p.driverName)) \(shown(p.driverVersion)) (major \(shown(p.driverMajor)) must match)")
            out.append("  device API   \(shown(p.deviceAPI))")
            out.append("  vendor compat \(p.vendorCompatibility.isEmpty ? "(none)" : shown(p.vendorCompatibility))")
            out.append("  migration    \(p.migrationFlags) (the target needs at least these)")
            out.append("  state size   \(p.expectedStateSize.map { "about \(formatBytes($0))" } ?? "unknown")")
            out.append("  on this host \(p.candidates.isEmpty ? "no function with these IDs" : p.candidates.joined(separator: ", "))")
        }
        return out.joined(separator: "\n")
    }
}
