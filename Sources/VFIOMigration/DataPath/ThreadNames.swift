// Names of the data path's threads, as `top -H` and /proc/<pid>/task/*/comm show them: the
// role, the channel, and the first six hex digits of the migration id, so an operator (and a
// test) can tell which migration a thread belongs to. Linux keeps 15 bytes of a name.
import Foundation
import VFIOStream

enum ThreadNames {
    /// "vfio-tx0.1a2b3c": role and channel, then the migration when there is one.
    static func name(_ role: String, _ migration: MigrationID?) -> String {
        String("vfio-\(role)\(suffix(migration))".prefix(15))
    }

    /// Names the calling thread (Foundation applies a name to the kernel's thread only when
    /// the thread sets it on itself).
    static func nameCurrent(_ name: String) {
        Thread.current.name = name
    }

    /// ".1a2b3c", or "" without a migration id.
    static func suffix(_ migration: MigrationID?) -> String {
        guard let migration else { return "" }
        return "." + String(String(migration.high >> 40, radix: 16).leftPadded(to: 6))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension MigrationID {
    /// What the names of this migration's threads end with (".1a2b3c"): `vfio-tx0` writes
    /// channel 0, `vfio-rx0` reads it, `vfio-ctl` listens to the target.
    public var threadTag: String { ThreadNames.suffix(self) }
}
