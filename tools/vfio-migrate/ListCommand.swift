import ArgumentParser
import Foundation
import VFIOKernel

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List PCI and mdev devices and whether VFIO is available.")

    @Option(help: "Root of the sysfs tree to read.") var sysfsRoot = "/sys"
    @Option(help: "Root of the device tree (/dev).") var devRoot = "/dev"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reporting {
            let report: DiscoveryReport
            do {
                report = try SysfsDiscovery(root: sysfsRoot).report(devRoot: devRoot)
            } catch {
                throw CLIError(message: "\(error)", code: .notFound)
            }
            if json {
                FileHandle.standardOutput.write(try report.jsonData())
                print()
            } else {
                print(report.humanTable(), terminator: "")
            }
        }
    }
}
