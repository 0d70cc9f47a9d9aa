// The source host's identity for stream headers, and driver versions, read from the files
// Linux keeps them in.
import Foundation
import VFIOStream

public enum HostInfo {
    /// This host: its name, /etc/machine-id and kernel release.
    public static let current: HostIdentity = {
        HostIdentity(
            hostName: ProcessInfo.processInfo.hostName, machineID: read("/etc/machine-id"),
            kernelRelease: read("/proc/sys/kernel/osrelease"))
    }()

    /// A module's version (/sys/module/NAME/version); in-tree drivers have none and version
    /// with the kernel, so the kernel release stands in.
    public static func moduleVersion(_ module: String, sysfsRoot: String = "/sys") -> String {
        let name = module.replacingOccurrences(of: "-", with: "_")
        let version = read("\(sysfsRoot)/module/\(name)/version")
        return version.isEmpty ? current.kernelRelease : version
    }

    private static func read(_ path: String) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
