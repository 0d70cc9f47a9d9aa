// vfio-migrate: a thin command line over VFIOMigration. Every subcommand parses, calls one
// library function, and prints; exit codes are documented in docs/cli.md.
import ArgumentParser

@main
struct VFIOMigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfio-migrate",
        abstract: "Drive VFIO device live migration: probe, save, load, inspect and replay device state streams.",
        discussion: """
            DEVICE is a PCI address (0000:06:0d.0), an mdev UUID, a sysfs device path, or a mock
            device `mock:NAME?opts` (see docs/mock.md). With no subcommand, `demo` runs a full
            migration between two mock devices.
            """,
        subcommands: [
            ListCommand.self,
        ],
        defaultSubcommand: ListCommand.self
    )
}
