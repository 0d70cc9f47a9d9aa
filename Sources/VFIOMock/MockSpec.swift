// Parsing and printing `mock:NAME?key=value&...` device specs.
import SystemPackage
import VFIOSyscalls

enum MockSpec {
    static let knownOptions = [
        "state", "flags", "seed", "compat", "driver", "driver-version", "vendor", "device",
        "subsystem-vendor", "subsystem", "mdev-type", "uuid", "bdf", "group", "block-size",
        "dirty-rate", "precopy-end", "data-size", "dma-logging", "resume-failure", "bar0",
        "fail-arc", "short-read", "short-write", "eintr", "eagain", "enodev-after",
        "reset-after", "disappear-after", "source", "revision", "class", "precopy-info-v2",
        "reinit-after", "replay", "replay-device", "dma-rate", "dma-hot", "dma-hot-fraction",
        "dma-pattern", "dma-seed",
    ]

    /// Options of the DMA workload besides `dma-rate`, which they need.
    static let workloadOptions = ["dma-hot", "dma-hot-fraction", "dma-pattern", "dma-seed"]

    /// Options a replay device takes from its capture (giving them too is an error).
    static let capturedOptions = [
        "state", "flags", "vendor", "device", "subsystem-vendor", "subsystem", "revision", "class",
        "driver", "driver-version", "mdev-type", "source", "reinit-after", "dirty-rate",
    ]

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.utf8.allSatisfy { isWordByte($0) }
    }

    private static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
    }

    static func parse(_ spec: String) throws(MockSpecError) -> MockDeviceConfiguration {
        func fail(_ message: String) -> MockSpecError { MockSpecError(spec: spec, message: message) }
        guard spec.hasPrefix("mock:") else { throw fail("must start with 'mock:'") }
        let body = spec.dropFirst("mock:".count)
        let parts = body.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard isValidName(name) else {
            throw fail("device name '\(name)' must be 1-64 letters, digits, '-', '_' or '.'")
        }
        var config = MockDeviceConfiguration(name: name)
        var seen: Set<String> = []
        var replayPath: String?
        var replayDevice: Int?
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&", omittingEmptySubsequences: false) {
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                    throw fail("option '\(pair)' is not key=value")
                }
                let key = String(pair[..<eq]).lowercased()
                let value = String(pair[pair.index(after: eq)...])
                guard knownOptions.contains(key) else {
                    throw fail("unknown option '\(key)' (known: \(knownOptions.joined(separator: ", ")))")
                }
                guard key == "fail-arc" || seen.insert(key).inserted else { throw fail("option '\(key)' given twice") }
                do throws(OptionError) {
                    switch key {
                    case "replay":
                        guard !value.isEmpty else { throw OptionError(expected: "the path of a vfio-migration stream file") }
                        replayPath = value
                    case "replay-device":
                        let n = try integer(value, "a device index of the stream (0, 1, ...)")
                        guard n < 0xFFFF else { throw OptionError(expected: "a device index of the stream (0, 1, ...)") }
                        replayDevice = Int(n)
                    default:
                        try apply(key, value, to: &config)
                    }
                } catch {
                    throw fail("bad value '\(value)' for option '\(key)': \(error.expected)")
                }
            }
        }
        if replayDevice != nil && replayPath == nil { throw fail("'replay-device' needs 'replay'") }
        if let option = workloadOptions.first(where: seen.contains), !seen.contains("dma-rate") {
            throw fail("'\(option)' needs 'dma-rate'")
        }
        if let replayPath {
            if let clash = capturedOptions.first(where: seen.contains) {
                throw fail("option '\(clash)' comes from the capture with 'replay'")
            }
            do throws(MockCaptureError) {
                try config.adopt(MockCapture(path: replayPath, device: replayDevice))
            } catch {
                throw fail(error.description)
            }
        }
        if config.mdevType != nil && (config.pciAddress != nil || config.group != nil) {
            throw fail("'bdf' and 'group' apply to PCI devices, not to mdev-type devices")
        }
        if config.mdevType == nil && config.uuid != nil {
            throw fail("'uuid' needs 'mdev-type'")
        }
        if config.stateSize > 0 && config.stateSize / UInt64(config.blockSize) > UInt64(Int32.max) {
            throw fail("state of \(config.stateSize) bytes needs more than 2^31 blocks; raise block-size")
        }
        return config
    }

    struct OptionError: Error { var expected: String }

    private static func apply(_ key: String, _ value: String, to c: inout MockDeviceConfiguration) throws(OptionError) {
        switch key {
        case "state":
            c.stateSize = try size(value, "a size such as 4096, 64MiB or 16G")
        case "flags":
            c.migrationFlags = try flags(value)
        case "seed":
            c.seed = try integer(value, "an unsigned 64-bit integer (decimal or 0x hex)")
        case "compat":
            c.compat = try word(value)
        case "driver":
            c.driver = try word(value)
        case "driver-version":
            c.driverVersion = try word(value)
        case "vendor":
            c.vendorID = try id16(value)
        case "device":
            c.deviceID = try id16(value)
        case "subsystem-vendor":
            c.subsystemVendorID = try id16(value)
        case "subsystem":
            c.subsystemID = try id16(value)
        case "mdev-type":
            c.mdevType = try word(value)
        case "uuid":
            guard isUUID(value) else { throw OptionError(expected: "a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001") }
            c.uuid = value.lowercased()
        case "bdf":
            guard isPCIAddress(value) else { throw OptionError(expected: "a PCI address such as 0000:06:0d.0") }
            c.pciAddress = value.lowercased()
        case "group":
            let n = try integer(value, "an IOMMU group number 0...65535")
            guard n <= 65535 else { throw OptionError(expected: "an IOMMU group number 0...65535") }
            c.group = Int(n)
        case "block-size":
            let expected = "a multiple of 8 bytes from 8 to 16MiB"
            let n = try size(value, expected)
            guard n >= 8, n <= 16 << 20, n % 8 == 0 else { throw OptionError(expected: expected) }
            c.blockSize = Int(n)
        case "dirty-rate":
            c.dirtyRate = try dirtyRate(value)
        case "precopy-end":
            guard let end = MockDeviceConfiguration.PrecopyEnd(rawValue: value.lowercased()) else {
                throw OptionError(expected: "enomsg or zero")
            }
            c.precopyEnd = end
        case "data-size":
            c.reportsDataSize = try yesNo(value)
        case "dma-logging":
            c.dmaLogging = try yesNo(value)
        case "resume-failure":
            guard let mode = MockDeviceConfiguration.ResumeFailure(rawValue: value.lowercased()) else {
                throw OptionError(expected: "stay or error")
            }
            c.resumeFailure = mode
        case "bar0":
            let expected = "0 or a power of two from 16 bytes to 1GiB"
            let n = try size(value, expected)
            guard n == 0 || (n >= 16 && n <= 1 << 30 && n & (n - 1) == 0) else { throw OptionError(expected: expected) }
            c.bar0Size = Int(n)
        case "fail-arc":
            c.faults.arcFailures.append(try arcFailure(value))
        case "short-read":
            c.faults.shortReadLimit = Int(try positiveSize(value))
        case "short-write":
            c.faults.shortWriteLimit = Int(try positiveSize(value))
        case "eintr":
            c.faults.interruptEvery = try every(value)
        case "eagain":
            c.faults.wouldBlockEvery = try every(value)
        case "enodev-after":
            c.faults.noDeviceAfterBytes = try size(value, "a byte count such as 1MiB")
        case "reset-after":
            c.faults.resetAfterBytes = try size(value, "a byte count such as 1MiB")
        case "disappear-after":
            c.faults.disappearAfterBytes = try size(value, "a byte count such as 1MiB")
        case "source":
            guard let source = MockDeviceConfiguration.StateSource(rawValue: value.lowercased()) else {
                throw OptionError(expected: "generated or fast")
            }
            c.stateSource = source
        case "revision":
            c.revision = UInt8(try hex(value, bits: 8, "an 8-bit hex revision such as 0x01"))
        case "class":
            c.classCode = UInt32(try hex(value, bits: 24, "a 24-bit hex class code such as 0x020000"))
        case "precopy-info-v2":
            c.offersPrecopyInfoV2 = try yesNo(value)
        case "reinit-after":
            c.reinitAfterBytes = try size(value, "a byte count such as 1MiB")
        case "dma-rate", "dma-hot", "dma-hot-fraction", "dma-pattern", "dma-seed":
            var w = c.dmaWorkload ?? MockDMAWorkload(rate: 0)
            try applyDMA(key, value, to: &w)
            c.dmaWorkload = w
        default:
            preconditionFailure("option \(key) listed but not handled")
        }
    }

    private static func applyDMA(_ key: String, _ value: String, to w: inout MockDMAWorkload) throws(OptionError) {
        switch key {
        case "dma-rate":
            let expected = "bytes per second such as 64MiB/s"
            guard value.lowercased().hasSuffix("/s") else { throw OptionError(expected: expected) }
            w.rate = try size(String(value.dropLast(2)), expected)
        case "dma-hot":
            let n = try size(value, "a size of at least one 4KiB page")
            guard n >= MockDMAWorkload.pageSize else { throw OptionError(expected: "a size of at least one 4KiB page") }
            w.hotSet = n
        case "dma-hot-fraction":
            guard let f = Double(value), f >= 0, f <= 1 else { throw OptionError(expected: "a fraction from 0 to 1 such as 0.9") }
            w.hotFraction = f
        case "dma-pattern":
            guard let p = MockDMAWorkload.Pattern(rawValue: value.lowercased()) else {
                throw OptionError(expected: MockDMAWorkload.Pattern.allCases.map(\.rawValue).joined(separator: ", "))
            }
            w.pattern = p
        default:
            w.seed = try integer(value, "an unsigned 64-bit integer (decimal or 0x hex)")
        }
    }

    // MARK: value parsers

    static func integer(_ text: String, _ expected: String) throws(OptionError) -> UInt64 {
        let lower = text.lowercased()
        let parsed = lower.hasPrefix("0x") ? UInt64(lower.dropFirst(2), radix: 16) : UInt64(lower, radix: 10)
        guard let parsed else { throw OptionError(expected: expected) }
        return parsed
    }

    /// A byte count with an optional binary suffix: K/KiB, M/MiB, G/GiB, T/TiB (any case), B.
    static func size(_ text: String, _ expected: String) throws(OptionError) -> UInt64 {
        let lower = text.lowercased()
        let digitsEnd = lower.firstIndex(where: { !($0.isHexDigit || $0 == "x") }) ?? lower.endIndex
        var number = String(lower[..<digitsEnd])
        var suffix = String(lower[digitsEnd...])
        // "0x10" is hex; a trailing "b" right after decimal digits is a unit, not a hex digit.
        if !number.hasPrefix("0x"), let b = number.firstIndex(where: { !$0.isNumber }) {
            suffix = String(number[b...]) + suffix
            number = String(number[..<b])
        }
        let shifts: [String: UInt64] = ["": 0, "b": 0, "k": 10, "kib": 10, "m": 20, "mib": 20, "g": 30, "gib": 30, "t": 40, "tib": 40]
        guard !number.isEmpty, let shift = shifts[suffix] else { throw OptionError(expected: expected) }
        let base = try integer(number, expected)
        guard base <= UInt64.max >> shift else { throw OptionError(expected: expected) }
        return base << shift
    }

    static func positiveSize(_ text: String) throws(OptionError) -> UInt64 {
        let n = try size(text, "a positive byte count")
        guard n > 0, n <= UInt64(Int32.max) else { throw OptionError(expected: "a positive byte count") }
        return n
    }

    static func every(_ text: String) throws(OptionError) -> Int {
        let n = try integer(text, "a period N ≥ 2 (every Nth call)")
        guard n >= 2, n <= UInt64(Int32.max) else { throw OptionError(expected: "a period N ≥ 2 (every Nth call)") }
        return Int(n)
    }

    static func yesNo(_ text: String) throws(OptionError) -> Bool {
        switch text.lowercased() {
        case "yes", "true", "1", "on": return true
        case "no", "false", "0", "off": return false
        default: throw OptionError(expected: "yes or no")
        }
    }

    static func word(_ text: String) throws(OptionError) -> String {
        let ok = !text.isEmpty && text.count <= 128 && text.utf8.allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "+") }
        guard ok else { throw OptionError(expected: "1-128 letters, digits or - _ . : +") }
        return text
    }

    static func id16(_ text: String) throws(OptionError) -> UInt16 {
        UInt16(try hex(text, bits: 16, "a 16-bit hex id such as 0x15b3"))
    }

    /// A hex number of at most `bits` bits, with or without `0x`.
    static func hex(_ text: String, bits: Int, _ expected: String) throws(OptionError) -> UInt64 {
        let lower = text.lowercased()
        let digits = lower.hasPrefix("0x") ? String(lower.dropFirst(2)) : lower
        guard !digits.isEmpty, digits.count <= bits / 4, let v = UInt64(digits, radix: 16) else {
            throw OptionError(expected: expected)
        }
        return v
    }

    static func flags(_ text: String) throws(OptionError) -> UInt32 {
        let expected = "none, or a comma list of stop-copy, p2p, pre-copy (stop-copy is required with the others)"
        if text.lowercased() == "none" { return 0 }
        var flags: UInt32 = 0
        for item in text.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            switch item {
            case "stop-copy": flags |= MigrationFlag.stopCopy
            case "p2p": flags |= MigrationFlag.p2p
            case "pre-copy": flags |= MigrationFlag.preCopy
            default: throw OptionError(expected: expected)
            }
        }
        guard flags & MigrationFlag.stopCopy != 0 else { throw OptionError(expected: expected) }
        return flags
    }

    static func dirtyRate(_ text: String) throws(OptionError) -> MockDeviceConfiguration.DirtyRate {
        let expected = "BLOCKS/SIZE such as 4/1MiB, or 0"
        if text == "0" || text.lowercased() == "none" { return .none }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw OptionError(expected: expected) }
        let blocks = try integer(String(parts[0]), expected)
        let bytes = try size(String(parts[1]), expected)
        guard bytes > 0, blocks <= 1 << 20 else { throw OptionError(expected: expected) }
        return .init(blocks: Int(blocks), perBytes: bytes)
    }

    /// `FROM>TO:ERRNO[:error][:once]`, states by uAPI name, errno by name (EIO) or number.
    static func arcFailure(_ text: String) throws(OptionError) -> MockFaults.ArcFailure {
        let expected = "FROM>TO:ERRNO[:error][:once], e.g. STOP_COPY>STOP:EIO"
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2 else { throw OptionError(expected: expected) }
        let states = fields[0].split(separator: ">", omittingEmptySubsequences: false).map(String.init)
        guard states.count == 2, let from = MockDeviceState(name: states[0]), let to = MockDeviceState(name: states[1]),
              let errno = errnoValue(fields[1])
        else { throw OptionError(expected: expected) }
        var failure = MockFaults.ArcFailure(from: from, to: to, errno: errno)
        for flag in fields.dropFirst(2) {
            switch flag.lowercased() {
            case "error": failure.landInError = true
            case "once": failure.remaining = 1
            default: throw OptionError(expected: expected)
            }
        }
        return failure
    }

    static func errnoValue(_ text: String) -> Errno? {
        if let n = Int32(text), n > 0 { return Errno(rawValue: n) }
        let upper = text.uppercased()
        for raw in Int32(1)...133 where SyscallError.errnoName(Errno(rawValue: raw)) == upper {
            return Errno(rawValue: raw)
        }
        return nil
    }

    static func errnoText(_ e: Errno) -> String {
        let name = SyscallError.errnoName(e)
        return name.hasPrefix("errno ") ? String(e.rawValue) : name
    }

    static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    static func isPCIAddress(_ text: String) -> Bool {
        // DDDD:BB:DD.F
        let chars = Array(text)
        guard chars.count == 12, chars[4] == ":", chars[7] == ":", chars[10] == "." else { return false }
        let hexAt = [0, 1, 2, 3, 5, 6, 8, 9]
        return hexAt.allSatisfy { chars[$0].isHexDigit } && ("0"..."7").contains(chars[11])
    }

    // MARK: printing

    static func format(_ c: MockDeviceConfiguration) -> String {
        var d = MockDeviceConfiguration(name: c.name)
        var options: [String] = []
        func add(_ key: String, _ value: String) { options.append("\(key)=\(value)") }
        if let capture = c.replay {
            // What the capture decides is not repeated: it parses back from the file.
            add("replay", capture.path)
            if capture.deviceIndex != 0 || capture.deviceCount > 1 { add("replay-device", String(capture.deviceIndex)) }
            d.adopt(capture)
        }
        if c.stateSize != d.stateSize { add("state", sizeText(c.stateSize)) }
        if c.migrationFlags != d.migrationFlags { add("flags", flagsText(c.migrationFlags)) }
        if c.seed != d.seed { add("seed", String(c.seed)) }
        if c.compat != d.compat { add("compat", c.compat) }
        if let driver = c.driver, driver != d.driver { add("driver", driver) }
        if c.driverVersion != d.driverVersion { add("driver-version", c.driverVersion) }
        if c.vendorID != d.vendorID { add("vendor", hex16(c.vendorID)) }
        if c.deviceID != d.deviceID { add("device", hex16(c.deviceID)) }
        if c.subsystemVendorID != d.subsystemVendorID { add("subsystem-vendor", hex16(c.subsystemVendorID)) }
        if c.subsystemID != d.subsystemID { add("subsystem", hex16(c.subsystemID)) }
        if c.revision != d.revision { add("revision", hexText(UInt64(c.revision), digits: 2)) }
        if c.classCode != d.classCode { add("class", hexText(UInt64(c.classCode), digits: 6)) }
        if let type = c.mdevType, type != d.mdevType { add("mdev-type", type) }
        if let uuid = c.uuid { add("uuid", uuid) }
        if let bdf = c.pciAddress { add("bdf", bdf) }
        if let group = c.group { add("group", String(group)) }
        if c.blockSize != d.blockSize { add("block-size", sizeText(UInt64(c.blockSize))) }
        if c.dirtyRate != d.dirtyRate {
            add("dirty-rate", c.dirtyRate.blocks == 0 ? "0" : "\(c.dirtyRate.blocks)/\(sizeText(c.dirtyRate.perBytes))")
        }
        if c.precopyEnd != d.precopyEnd { add("precopy-end", c.precopyEnd.rawValue) }
        if c.reportsDataSize != d.reportsDataSize { add("data-size", c.reportsDataSize ? "yes" : "no") }
        if c.dmaLogging != d.dmaLogging { add("dma-logging", c.dmaLogging ? "yes" : "no") }
        if c.resumeFailure != d.resumeFailure { add("resume-failure", c.resumeFailure.rawValue) }
        if c.bar0Size != d.bar0Size { add("bar0", sizeText(UInt64(c.bar0Size))) }
        if c.stateSource != d.stateSource { add("source", c.stateSource.rawValue) }
        if c.offersPrecopyInfoV2 != d.offersPrecopyInfoV2 { add("precopy-info-v2", c.offersPrecopyInfoV2 ? "yes" : "no") }
        if let n = c.reinitAfterBytes { add("reinit-after", sizeText(n)) }
        if let w = c.dmaWorkload {
            let d = MockDMAWorkload(rate: 0)
            add("dma-rate", sizeText(w.rate) + "/s")
            if let hot = w.hotSet { add("dma-hot", sizeText(hot)) }
            if w.hotFraction != d.hotFraction { add("dma-hot-fraction", String(w.hotFraction)) }
            if w.pattern != d.pattern { add("dma-pattern", w.pattern.rawValue) }
            if w.seed != d.seed { add("dma-seed", String(w.seed)) }
        }
        for f in c.faults.arcFailures {
            var text = "\(f.from)>\(f.to):\(errnoText(f.errno))"
            if f.landInError { text += ":error" }
            if f.remaining == 1 { text += ":once" }
            add("fail-arc", text)
        }
        if let n = c.faults.shortReadLimit { add("short-read", sizeText(UInt64(n))) }
        if let n = c.faults.shortWriteLimit { add("short-write", sizeText(UInt64(n))) }
        if let n = c.faults.interruptEvery { add("eintr", String(n)) }
        if let n = c.faults.wouldBlockEvery { add("eagain", String(n)) }
        if let n = c.faults.noDeviceAfterBytes { add("enodev-after", sizeText(n)) }
        if let n = c.faults.resetAfterBytes { add("reset-after", sizeText(n)) }
        if let n = c.faults.disappearAfterBytes { add("disappear-after", sizeText(n)) }
        return "mock:\(c.name)" + (options.isEmpty ? "" : "?" + options.joined(separator: "&"))
    }

    static func sizeText(_ n: UInt64) -> String {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] as [(UInt64, String)]
        where n != 0 && n & ((1 << shift) - 1) == 0 {
            return "\(n >> shift)\(unit)"
        }
        return String(n)
    }

    static func flagsText(_ flags: UInt32) -> String {
        if flags == 0 { return "none" }
        var names: [String] = []
        if flags & MigrationFlag.stopCopy != 0 { names.append("stop-copy") }
        if flags & MigrationFlag.p2p != 0 { names.append("p2p") }
        if flags & MigrationFlag.preCopy != 0 { names.append("pre-copy") }
        return names.joined(separator: ",")
    }

    static func hex16(_ v: UInt16) -> String { hexText(UInt64(v), digits: 4) }

    static func hexText(_ v: UInt64, digits: Int) -> String {
        let text = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
