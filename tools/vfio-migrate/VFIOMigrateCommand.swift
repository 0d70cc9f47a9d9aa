// vfio-migrate: a thin command line over VFIOMigration. Every subcommand parses, calls one
// library function, and prints; exit codes are documented in docs/cli.md.
import ArgumentParser
import VFIOMigration

@main
struct VFIOMigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfio-migrate",
        abstract: "Drive VFIO device live migration: probe, save, load, inspect and replay device state streams.",
        discussion: """
            DEVICE is a PCI address (0000:06:0d.0), an mdev UUID, a sysfs device path, or an
            emulated device `mock:NAME?opts` (docs/mock.md). With no subcommand, `demo` runs a
            full migration between emulated devices. Exit codes: 0 ok, 1 failed, 2 usage,
            3 incompatible, 4 corrupt stream, 5 not found, 6 not supported (docs/cli.md).
            """,
        version: VersionInfo.version,
        subcommands: [
            DemoCommand.self, ListCommand.self, ProbeCommand.self, SaveCommand.self, LoadCommand.self,
            InspectCommand.self, VerifyCommand.self, CompatCommand.self, ReplayCommand.self,
        ],
        defaultSubcommand: DemoCommand.self
    )
}
