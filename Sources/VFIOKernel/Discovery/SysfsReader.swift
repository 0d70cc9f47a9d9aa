// Small typed reads of sysfs attributes and links, turning every oddity into a DiscoveryError.
import Foundation

/// Reads sysfs files and links through Foundation. Paths are absolute.
struct SysfsReader: Sendable {
    private var files: FileManager { FileManager.default }

    func exists(_ path: String) -> Bool { files.fileExists(atPath: path) }

    func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return files.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The raw target of a symlink, or nil when `path` is not a symlink (or absent).
    func rawLink(_ path: String) -> String? {
        try? files.destinationOfSymbolicLink(atPath: path)
    }

    /// Entry names of a directory, sorted; nil when the directory does not exist.
    func list(_ path: String) throws -> [String]? {
        guard isDirectory(path) else { return nil }
        do {
            return try files.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw DiscoveryError.attributeUnreadable(path: path, reason: Self.reason(error))
        }
    }

    // MARK: attributes

    /// The attribute's text without the trailing newline; nil when it does not exist.
    func optionalString(_ path: String) throws -> String? {
        guard exists(path) else {
            if let target = rawLink(path) { throw DiscoveryError.brokenSymlink(path: path, target: target) }
            return nil
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DiscoveryError.attributeUnreadable(path: path, reason: Self.reason(error))
        }
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    func string(_ path: String) throws -> String {
        guard let text = try optionalString(path) else { throw DiscoveryError.attributeMissing(path: path) }
        return text
    }

    /// A hex attribute such as `0x8086` that must fit in `bits` bits.
    func optionalHex(_ path: String, bits: Int) throws -> UInt64? {
        guard let raw = try optionalString(path) else { return nil }
        let body = raw.hasPrefix("0x") || raw.hasPrefix("0X") ? raw.dropFirst(2) : Substring(raw)
        guard !body.isEmpty, body.allSatisfy(\.isHexDigit), let value = UInt64(body, radix: 16),
              bits >= 64 || value < (UInt64(1) << UInt64(bits))
        else {
            throw DiscoveryError.attributeUnparsable(path: path, raw: raw, expected: "a \(bits)-bit hex number like 0x\(String(repeating: "f", count: bits / 4))")
        }
        return value
    }

    func hex(_ path: String, bits: Int) throws -> UInt64 {
        guard let value = try optionalHex(path, bits: bits) else { throw DiscoveryError.attributeMissing(path: path) }
        return value
    }

    /// A decimal attribute such as `numa_node` (`-1`) or `sriov_totalvfs`.
    func optionalInt(_ path: String) throws -> Int? {
        guard let raw = try optionalString(path) else { return nil }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw DiscoveryError.attributeUnparsable(path: path, raw: raw, expected: "a decimal integer")
        }
        return value
    }

    // MARK: links

    /// The last component of a link's target (driver name, group number, BDF); nil when the
    /// link is absent. A dangling link or a non-link is an error.
    func optionalLinkName(_ path: String) throws -> String? {
        guard let target = rawLink(path) else {
            if exists(path) {
                throw DiscoveryError.attributeUnparsable(path: path, raw: "(not a symlink)", expected: "a symlink")
            }
            return nil
        }
        // Resolved rather than split, so a target ending in ".." still names its node.
        guard exists(path), let resolved = canonicalPath(path) else {
            throw DiscoveryError.brokenSymlink(path: path, target: target)
        }
        return Self.basename(resolved)
    }

    /// The IOMMU group number from an `iommu_group` link.
    func optionalGroup(_ path: String) throws -> Int? {
        guard let name = try optionalLinkName(path) else { return nil }
        guard let group = Int(name), group >= 0 else {
            throw DiscoveryError.attributeUnparsable(path: path, raw: name, expected: "a link to kernel/iommu_groups/<number>")
        }
        return group
    }

    /// The `vfioN` name under `<dev>/vfio-dev/` (kernels ≥ 6.1), if present.
    func vfioCdev(_ devicePath: String) throws -> String? {
        try list(devicePath + "/vfio-dev")?.first { $0.hasPrefix("vfio") }
    }

    // MARK: paths

    /// `path` with every symlink resolved and `.`/`..` removed; nil when a component is missing
    /// or links loop. Walks component by component so relative kernel links resolve as the
    /// kernel would.
    func canonicalPath(_ path: String) -> String? {
        let absolute = path.hasPrefix("/") ? path : files.currentDirectoryPath + "/" + path
        var resolved: [String] = []
        var pending = Array(Self.components(absolute).reversed())
        var hops = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            if let target = rawLink(candidate) {
                hops += 1
                if hops > 40 { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: Self.components(target).reversed())
            } else if exists(candidate) {
                resolved.append(component)
            } else {
                return nil
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init)
    }

    static func basename(_ path: String) -> String {
        components(path).last ?? path
    }

    static func dirname(_ path: String) -> String {
        let parts = components(path)
        return "/" + parts.dropLast().joined(separator: "/")
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}
