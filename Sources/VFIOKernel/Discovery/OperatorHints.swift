// The next step an operator takes after the common failures, derived from the error itself
// when whoever threw it gave no hint: permissions on /dev/vfio, a group in use, the locked
// memory limit, and network devices that cannot migrate.
import Foundation
import VFIOCore

extension VFIOError {
    /// `hint`, or one derived from the errno and the object that failed.
    public var operatorHint: String? {
        if let hint { return hint }
        guard let errno else { return nil }
        let object = device ?? ""
        let onVFIONode = object.contains("/vfio/")
        switch errno {
        case .permissionDenied where onVFIONode, .notPermitted where onVFIONode:
            return "no permission on \(object): run as root, or give this user the device file (its owner, or a udev rule)"
        case .busy where onVFIONode && operation == "open":
            return "\(object) is open in another process (a running VMM holds the group); stop it or choose another device"
        case .noSuchFileOrDirectory where object.hasSuffix("/vfio/vfio"):
            return "load the VFIO modules (modprobe vfio-pci)"
        case .noMemory where operation?.contains("MAP_DMA") == true:
            let limit = Self.lockedMemoryLimit().map { " (it is \($0) now)" } ?? ""
            return "RLIMIT_MEMLOCK is too small for the pinned guest memory\(limit): raise it (ulimit -l, or LimitMEMLOCK= for a service)"
        default:
            return nil
        }
    }

    /// This error with the network-failover hint, when it says that a network device among
    /// `devices` cannot migrate.
    public func withFailoverHint(for devices: [VFIODevice]) -> VFIOError {
        guard code == .notSupported, hint == nil,
              let failing = devices.first(where: { $0.name == device }), !failing.isMediated,
              let classCode = failing.pciClassCode(), classCode >> 16 == 0x02
        else { return self }
        var copy = self
        copy.hint = MigrationVerdict.networkFailoverHint
        return copy
    }

    /// "Max locked memory" of this process from /proc/self/limits, in bytes as text.
    static func lockedMemoryLimit() -> String? {
        guard let limits = try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8),
              let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max locked memory") })
        else { return nil }
        let fields = line.dropFirst("Max locked memory".count).split(separator: " ")
        guard let soft = fields.first else { return nil }
        if soft == "unlimited" { return "unlimited" }
        return UInt64(soft).map { "\($0) bytes" }
    }
}
