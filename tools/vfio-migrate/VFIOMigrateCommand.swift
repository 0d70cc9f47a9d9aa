// vfio-migrate: a thin command line over VFIOMigration. Every subcommand parses, calls the
// library, and prints; the exit statuses are one rule for all of them (docs/cli.md).
import ArgumentParser
import Foundation
import VFIOMigration

struct VFIOMigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfio-migrate",
        abstract: "Drive VFIO device live migration: send and receive between hosts, save and load streams, list and probe devices, verify, inspect, compare and replay streams.",
        discussion: """
            DEVICE is a PCI address (0000:06:0d.0), an mdev UUID, a sysfs device path, or an
            emulated device `mock:NAME?opts` (docs/mock.md). With no subcommand, `demo` runs a
            full migration between emulated devices.

            Exit statuses: 0 success; 1 the operation failed; 2 usage (an option, a mock spec,
            the number of devices for a stream); 3 incompatible (a target or this reader cannot
            take a valid stream); 4 not a valid stream (wrong magic, checksum, length, order);
            5 not found; 6 not supported here (no VFIO, a device without migration).

            Examples:
              vfio-migrate list
              vfio-migrate probe 0000:3b:00.2
              vfio-migrate save 0000:3b:00.2 -o vf.vfiomig --after stop
              vfio-migrate target-spec vf.vfiomig
              vfio-migrate load 0000:5e:00.2 -i vf.vfiomig
              vfio-migrate --generate-completion-script bash > /etc/bash_completion.d/vfio-migrate
            """,
        version: VersionInfo.version,
        subcommands: [
            DemoCommand.self, ListCommand.self, ProbeCommand.self, TargetSpecCommand.self, SaveCommand.self,
            LoadCommand.self, SendCommand.self, ReceiveCommand.self, InspectCommand.self, VerifyCommand.self, CompatCommand.self, ReplayCommand.self,
            BenchCommand.self,
        ],
        defaultSubcommand: DemoCommand.self
    )
}

/// The entry point: argument errors exit 2 (usage), as docs/cli.md says, not the parser's 64.
@main
enum Main {
    static func main() {
        do {
            var command = try VFIOMigrateCommand.parseAsRoot()
            try command.run()
        } catch {
            let code = VFIOMigrateCommand.exitCode(for: error)
            if code == .validationFailure {
                Console.err(VFIOMigrateCommand.fullMessage(for: error))
                exit(ExitStatus.usage.rawValue)
            }
            VFIOMigrateCommand.exit(withError: error)
        }
    }
}
