import Foundation
import VFIOMigration

extension BenchCommand {
    func runDevices(_ invocation: Invocation) throws {
        throw CLIFailure(.notSupported, "bench --device is not built yet")
    }
}
