// Encoding and decoding of the stream header (fixed part, fields area, CRC).

extension StreamHeader {
    /// The header's bytes: fixed part, fields (in tag order), CRC32C. Headers are small, so
    /// returning an array is fine; records, the hot path, never allocate.
    /// Throws for a header that cannot be written (see `writingProblem`).
    public func encoded() throws(StreamUsageError) -> [UInt8] {
        try encodedWithDescriptorCRCs().bytes
    }

    /// The bytes, and the CRC32C of each descriptor's field value (what deviceDigest records carry).
    func encodedWithDescriptorCRCs() throws(StreamUsageError) -> (bytes: [UInt8], descriptorCRCs: [UInt32]) {
        try checkWritable()
        var out: [UInt8] = StreamFormat.magic
        out.reserveCapacity(256)
        out.appendLittleEndian(version.major)
        out.appendLittleEndian(version.minor)
        out.appendLittleEndian(UInt32(0))  // headerLength, patched below
        out.appendLittleEndian(version.readerMinor)
        out.appendLittleEndian(UInt16(devices.count))
        out.appendLittleEndian(flags)
        out.appendLittleEndian(creationTimeNanoseconds)
        out.appendLittleEndian(maxPayload)
        out.appendLittleEndian(UInt32(StreamFormat.fixedHeaderSize))  // fieldsOffset
        assert(out.count == StreamFormat.fixedHeaderSize)

        out.appendStringField(HeaderFieldTag.hostName, host.hostName, omitIfEmpty: true)
        out.appendStringField(HeaderFieldTag.machineID, host.machineID, omitIfEmpty: true)
        out.appendStringField(HeaderFieldTag.kernelRelease, host.kernelRelease, omitIfEmpty: true)
        out.appendStringField(HeaderFieldTag.writer, writer, omitIfEmpty: true)
        var descriptorCRCs: [UInt32] = []
        descriptorCRCs.reserveCapacity(devices.count)
        for device in devices {
            let fields = device.encodedFields()
            descriptorCRCs.append(CRC32C.checksum(fields))
            out.appendField(HeaderFieldTag.device, fields)
        }
        if let migrationID {
            out.appendField(HeaderFieldTag.migrationID, migrationID.bytes, flags: .skippable)
        }
        if let channel {
            var value: [UInt8] = []
            value.appendLittleEndian(channel.index)
            value.appendLittleEndian(channel.count)
            out.appendField(HeaderFieldTag.channel, value)
        }
        for region in regions {
            var value: [UInt8] = []
            value.appendLittleEndian(region.start)
            value.appendLittleEndian(region.length)
            value.appendLittleEndian(region.pageSize)
            value.appendLittleEndian(region.flags)
            out.appendField(HeaderFieldTag.memoryRegion, value)
        }

        let length = out.count + StreamFormat.headerChecksumSize
        guard length <= StreamFormat.hardMaxHeaderLength else {
            throw StreamUsageError(.invalidHeader(reason: "header of \(length) bytes exceeds the 1 MiB cap"))
        }
        out.storeLittleEndian(UInt32(length), at: 12)
        out.appendLittleEndian(CRC32C.checksum(out))
        return (out, descriptorCRCs)
    }

    /// Every rule a reader would check that the writer can get wrong.
    func checkWritable() throws(StreamUsageError) {
        func refuse(_ reason: String) -> StreamUsageError { StreamUsageError(.invalidHeader(reason: reason)) }
        guard version.major == StreamFormat.major else { throw refuse("major \(version.major): this codec writes major \(StreamFormat.major)") }
        guard version.readerMinor <= version.minor else { throw refuse("readerMinor \(version.readerMinor) above minor \(version.minor)") }
        guard version.readerMinor <= StreamFormat.minor else {
            throw refuse("readerMinor \(version.readerMinor) above this codec's minor \(StreamFormat.minor)")
        }
        guard version.readerMinor >= requiredReaderMinor else {
            throw StreamUsageError(.readerMinorTooLow(required: requiredReaderMinor, declared: version.readerMinor))
        }
        let unknownRequired = flags & StreamFormat.requiredHeaderFlagsMask & ~StreamFormat.knownHeaderFlags
        guard unknownRequired == 0 else { throw refuse("required flags \(hex(unknownRequired)) are not defined") }
        guard devices.count <= StreamFormat.maxDevices else { throw refuse("\(devices.count) devices, at most \(StreamFormat.maxDevices)") }
        guard Int(maxPayload) >= StreamFormat.minimumMaxPayload && Int(maxPayload) <= StreamFormat.hardMaxPayload else {
            throw refuse("maxPayload \(maxPayload) outside \(StreamFormat.minimumMaxPayload)...\(StreamFormat.hardMaxPayload)")
        }
        if let problem = channel?.problem { throw refuse(problem) }
        for (index, region) in regions.enumerated() {
            if let problem = region.problem { throw refuse("memory region \(index): \(problem)") }
        }
        if let overlap = overlappingRegions(in: regions) {
            throw refuse("memory region \(overlap.later) overlaps memory region \(overlap.earlier)")
        }
        for (index, device) in devices.enumerated() {
            if let problem = device.writingProblem { throw refuse("device \(index): \(problem)") }
        }
    }
}

extension DeviceDescriptor {
    /// Why this descriptor cannot be written (a reader would refuse it), or nil.
    var writingProblem: String? {
        if deviceAPI.isEmpty { return "deviceAPI is empty" }
        if let pci, pci.classCode > 0xFF_FFFF { return "PCI class code \(hex(pci.classCode)) is wider than 24 bits" }
        for attribute in mdev?.attributes ?? [] where attribute.name.utf8.isEmpty || attribute.name.utf8.count > Int(UInt16.max) {
            return "mdev attribute name must be 1...65535 bytes"
        }
        return nil
    }

    /// The descriptor's fields area (the value of header field 5). `writingProblem` must be nil.
    func encodedFields() -> [UInt8] {
        var out: [UInt8] = []
        out.appendStringField(DescriptorFieldTag.name, name, omitIfEmpty: true)
        out.appendStringField(DescriptorFieldTag.deviceAPI, deviceAPI, omitIfEmpty: false)
        out.appendStringField(DescriptorFieldTag.driverName, driverName, omitIfEmpty: false)
        out.appendStringField(DescriptorFieldTag.driverVersion, driverVersion, omitIfEmpty: false)
        if let pci {
            var value: [UInt8] = []
            value.appendLittleEndian(pci.vendorID)
            value.appendLittleEndian(pci.deviceID)
            value.appendLittleEndian(pci.subsystemVendorID)
            value.appendLittleEndian(pci.subsystemDeviceID)
            value.append(pci.revision)
            value.append(UInt8(truncatingIfNeeded: pci.classCode))
            value.append(UInt8(truncatingIfNeeded: pci.classCode >> 8))
            value.append(UInt8(truncatingIfNeeded: pci.classCode >> 16))
            out.appendField(DescriptorFieldTag.pci, value)
        }
        if let mdev {
            out.appendStringField(DescriptorFieldTag.mdevType, mdev.type, omitIfEmpty: false)
            for attribute in mdev.attributes {
                let name = Array(attribute.name.utf8)
                var value: [UInt8] = []
                value.appendLittleEndian(UInt16(name.count))
                value.append(contentsOf: name)
                value.append(contentsOf: attribute.value.utf8)
                out.appendField(DescriptorFieldTag.mdevAttribute, value)
            }
        }
        var flags: [UInt8] = []
        flags.appendLittleEndian(migrationFlags.rawValue)
        out.appendField(DescriptorFieldTag.migrationFlags, flags)
        if let expectedStateSize {
            var size: [UInt8] = []
            size.appendLittleEndian(expectedStateSize)
            out.appendField(DescriptorFieldTag.expectedStateSize, size)
        }
        out.appendStringField(DescriptorFieldTag.vendorCompatibility, vendorCompatibility, omitIfEmpty: true)
        return out
    }
}

extension Array where Element == UInt8 {
    mutating func appendField(_ tag: UInt16, _ value: [UInt8], flags: FieldFlags = []) {
        precondition(tag != 0, "field tag 0 is invalid")
        appendLittleEndian(tag)
        appendLittleEndian(flags.rawValue)
        appendLittleEndian(UInt32(value.count))
        append(contentsOf: value)
    }

    mutating func appendStringField(_ tag: UInt16, _ value: String, omitIfEmpty: Bool) {
        if omitIfEmpty && value.isEmpty { return }
        appendField(tag, Array(value.utf8))
    }
}

// MARK: - Decoding

/// Header decoding steps; StreamDecoder sequences them and tracks offsets.
enum HeaderCodec {
    /// From the first 16 bytes: checks magic, major and length bounds, returns the length.
    static func headerLength(prefix: UnsafeRawBufferPointer, limits: StreamLimits) throws(StreamError) -> Int {
        func fail(_ kind: StreamError.Kind) -> StreamError { StreamError(offset: 0, kind: kind) }
        guard prefix.count >= StreamFormat.headerPrefixSize else {
            // A short input that already differs from the magic is not ours at all.
            let known = min(prefix.count, StreamFormat.magic.count)
            if !prefix.prefix(known).elementsEqual(StreamFormat.magic.prefix(known)) { throw fail(.badMagic) }
            throw fail(.truncated(needed: StreamFormat.headerPrefixSize, available: prefix.count))
        }
        var reader = LittleEndianReader(prefix)
        guard reader.take(8).elementsEqual(StreamFormat.magic) else { throw fail(.badMagic) }
        let major = reader.read(UInt16.self)
        guard major == StreamFormat.major else { throw fail(.unsupportedMajor(major)) }
        _ = reader.read(UInt16.self)  // minor: informational, checked via readerMinor after the CRC
        let length = reader.read(UInt32.self)
        guard length >= StreamFormat.minimumHeaderLength else { throw fail(.invalidHeaderLength(length)) }
        guard length <= limits.maxHeaderLength else { throw fail(.headerTooLarge(length: length, limit: limits.maxHeaderLength)) }
        return Int(length)
    }

    /// A decoded header, its length, and the CRC32C of each descriptor's field value.
    struct Decoded {
        var header: StreamHeader
        var length: Int
        var descriptorCRCs: [UInt32]
    }

    /// Header tags that may occur at most once (device and memoryRegion repeat).
    static let singleHeaderTags: Set<UInt16> = [
        HeaderFieldTag.hostName, HeaderFieldTag.machineID, HeaderFieldTag.kernelRelease, HeaderFieldTag.writer,
        HeaderFieldTag.migrationID, HeaderFieldTag.channel,
    ]

    /// Decodes a whole header from the first `headerLength` bytes of `bytes`.
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: StreamLimits) throws(StreamError) -> Decoded {
        func fail(_ kind: StreamError.Kind) -> StreamError { StreamError(offset: 0, kind: kind) }
        // SAFETY: rebasing a prefix of `bytes` (count clamped to its size) stays inside it.
        let length = try headerLength(prefix: UnsafeRawBufferPointer(rebasing: bytes.prefix(StreamFormat.headerPrefixSize)), limits: limits)
        guard bytes.count >= length else { throw fail(.truncated(needed: length, available: bytes.count)) }
        let crcOffset = length - StreamFormat.headerChecksumSize

        var reader = LittleEndianReader(bytes, index: StreamFormat.headerPrefixSize)
        let covered = LittleEndianReader(bytes).peek(crcOffset)
        var crcReader = LittleEndianReader(bytes, index: crcOffset)
        let stored = crcReader.read(UInt32.self)
        let computed = CRC32C.update(0, covered)
        guard stored == computed else { throw fail(.headerChecksumMismatch(stored: stored, computed: computed)) }

        var prefixReader = LittleEndianReader(bytes, index: 8)
        let major = prefixReader.read(UInt16.self)
        let minor = prefixReader.read(UInt16.self)
        let readerMinor = reader.read(UInt16.self)
        guard readerMinor <= minor else { throw fail(.inconsistentVersion(minor: minor, readerMinor: readerMinor)) }
        guard readerMinor <= StreamFormat.minor else { throw fail(.unsupportedMinor(readerMinor: readerMinor)) }
        let deviceCount = Int(reader.read(UInt16.self))
        let flags = reader.read(UInt32.self)
        let unknownRequired = flags & StreamFormat.requiredHeaderFlagsMask & ~StreamFormat.knownHeaderFlags
        guard unknownRequired == 0 else { throw fail(.unsupportedHeaderFlags(unknownRequired)) }
        if flags & HeaderFlags.noRecordChecksums.rawValue != 0 && !limits.acceptsNoRecordChecksums {
            throw fail(.recordChecksumsNotAccepted)
        }
        let created = reader.read(Int64.self)
        let maxPayload = reader.read(UInt32.self)
        guard Int(maxPayload) >= StreamFormat.minimumMaxPayload && Int(maxPayload) <= StreamFormat.hardMaxPayload else {
            throw fail(.invalidMaxPayload(maxPayload))
        }
        guard Int(maxPayload) <= limits.maxPayload else {
            throw fail(.maxPayloadAboveLimit(declared: maxPayload, limit: limits.maxPayload))
        }
        let fieldsOffset = reader.read(UInt32.self)
        guard fieldsOffset >= StreamFormat.fixedHeaderSize && Int(fieldsOffset) <= crcOffset else {
            throw fail(.invalidFieldsOffset(fieldsOffset))
        }

        var header = StreamHeader(
            version: FormatVersion(major: major, minor: minor, readerMinor: readerMinor), flags: flags,
            creationTimeNanoseconds: created, maxPayload: maxPayload, devices: [])
        header.devices.reserveCapacity(deviceCount)
        var descriptorCRCs: [UInt32] = []
        descriptorCRCs.reserveCapacity(deviceCount)
        var regionOffsets: [UInt64] = []
        var seen = Set<UInt16>()
        var fields = FieldReader(bytes, start: Int(fieldsOffset), end: crcOffset)
        while let field = try fields.next() {
            // The duplicate rule is for known tags; unknown skippable ones are skipped, repeated or not.
            if singleHeaderTags.contains(field.tag) {
                guard seen.insert(field.tag).inserted else {
                    throw StreamError(offset: field.offset, kind: .duplicateField(tag: field.tag))
                }
            }
            switch field.tag {
            case HeaderFieldTag.hostName: header.host.hostName = try field.string()
            case HeaderFieldTag.machineID: header.host.machineID = try field.string()
            case HeaderFieldTag.kernelRelease: header.host.kernelRelease = try field.string()
            case HeaderFieldTag.writer: header.writer = try field.string()
            case HeaderFieldTag.device:
                guard header.devices.count < deviceCount else {
                    throw fail(.deviceCountMismatch(declared: deviceCount, found: header.devices.count + 1))
                }
                header.devices.append(try decodeDescriptor(field))
                descriptorCRCs.append(CRC32C.update(0, field.value))
            case HeaderFieldTag.migrationID:
                _ = try field.fixed(MigrationID.byteCount)
                header.migrationID = MigrationID(bytes: field.value)
            case HeaderFieldTag.channel:
                var value = try field.fixed(channelFieldSize)
                let channel = StreamChannel(index: value.read(UInt16.self), count: value.read(UInt16.self))
                if let problem = channel.problem { throw StreamError(offset: field.offset, kind: .malformedField(tag: field.tag, reason: problem)) }
                header.channel = channel
            case HeaderFieldTag.memoryRegion:
                var value = try field.fixed(memoryRegionFieldSize)
                let region = MemoryRegionDescriptor(
                    start: value.read(UInt64.self), length: value.read(UInt64.self), pageSize: value.read(UInt32.self),
                    flags: value.read(UInt32.self))
                if let problem = region.problem {
                    throw StreamError(
                        offset: field.offset, kind: .malformedField(tag: field.tag, reason: "memory region \(header.regions.count): \(problem)"))
                }
                header.regions.append(region)
                regionOffsets.append(field.offset)
            default:
                try field.skipUnknown()
            }
        }
        guard header.devices.count == deviceCount else {
            throw fail(.deviceCountMismatch(declared: deviceCount, found: header.devices.count))
        }
        if let overlap = overlappingRegions(in: header.regions) {
            throw StreamError(
                offset: regionOffsets[overlap.later],
                kind: .malformedField(
                    tag: HeaderFieldTag.memoryRegion, reason: "memory region \(overlap.later) overlaps memory region \(overlap.earlier)"))
        }
        // A writer must announce what a 1.0 reader cannot skip; refusing an understated
        // version keeps "decoded header re-encodes to the same bytes" true.
        guard readerMinor >= header.requiredReaderMinor else {
            throw fail(.readerMinorTooLow(required: header.requiredReaderMinor, declared: readerMinor))
        }
        return Decoded(header: header, length: length, descriptorCRCs: descriptorCRCs)
    }

    /// Descriptor tags that may occur at most once (mdevAttribute repeats).
    static let singleDescriptorTags = Set<UInt16>(1...10).subtracting([DescriptorFieldTag.mdevAttribute])

    static func decodeDescriptor(_ container: Field) throws(StreamError) -> DeviceDescriptor {
        var name = "", deviceAPI: String?, driverName: String?, driverVersion: String?
        var pci: PCIIdentity?, mdevType: String?, attributes: [MdevAttribute] = []
        var flags: MigrationFlags?, stateSize: UInt64?, vendor = ""
        var seen = Set<UInt16>()
        var firstAttributeOffset: UInt64?

        var fields = FieldReader(container.bytes, start: container.valueStart, end: container.valueEnd)
        while let field = try fields.next() {
            if singleDescriptorTags.contains(field.tag) {
                guard seen.insert(field.tag).inserted else {
                    throw StreamError(offset: field.offset, kind: .duplicateField(tag: field.tag))
                }
            }
            switch field.tag {
            case DescriptorFieldTag.name: name = try field.string()
            case DescriptorFieldTag.deviceAPI:
                let api = try field.string()
                guard !api.isEmpty else { throw StreamError(offset: field.offset, kind: .malformedField(tag: field.tag, reason: "deviceAPI is empty")) }
                deviceAPI = api
            case DescriptorFieldTag.driverName: driverName = try field.string()
            case DescriptorFieldTag.driverVersion: driverVersion = try field.string()
            case DescriptorFieldTag.pci:
                var value = try field.fixed(pciFieldSize)
                let vendorID = value.read(UInt16.self), deviceID = value.read(UInt16.self)
                let subVendor = value.read(UInt16.self), subDevice = value.read(UInt16.self)
                let revision = value.read(UInt8.self)
                let low = UInt32(value.read(UInt8.self)), mid = UInt32(value.read(UInt8.self)), high = UInt32(value.read(UInt8.self))
                pci = PCIIdentity(
                    vendorID: vendorID, deviceID: deviceID, subsystemVendorID: subVendor, subsystemDeviceID: subDevice,
                    revision: revision, classCode: low | mid << 8 | high << 16)
            case DescriptorFieldTag.mdevType: mdevType = try field.string()
            case DescriptorFieldTag.mdevAttribute:
                firstAttributeOffset = firstAttributeOffset ?? field.offset
                attributes.append(try field.mdevAttribute())
            case DescriptorFieldTag.migrationFlags:
                var value = try field.fixed(8)
                flags = MigrationFlags(rawValue: value.read(UInt64.self))
            case DescriptorFieldTag.expectedStateSize:
                var value = try field.fixed(8)
                stateSize = value.read(UInt64.self)
            case DescriptorFieldTag.vendorCompatibility: vendor = try field.string()
            default:
                try field.skipUnknown()
            }
        }
        func missing(_ tag: UInt16) -> StreamError { StreamError(offset: container.offset, kind: .missingField(tag: tag)) }
        guard let deviceAPI else { throw missing(DescriptorFieldTag.deviceAPI) }
        guard let driverName else { throw missing(DescriptorFieldTag.driverName) }
        guard let driverVersion else { throw missing(DescriptorFieldTag.driverVersion) }
        guard let flags else { throw missing(DescriptorFieldTag.migrationFlags) }
        var mdev: MdevDefinition?
        if let mdevType {
            mdev = MdevDefinition(type: mdevType, attributes: attributes)
        } else if let firstAttributeOffset {
            throw StreamError(
                offset: firstAttributeOffset,
                kind: .malformedField(tag: DescriptorFieldTag.mdevAttribute, reason: "mdev attribute without an mdev type"))
        }
        return DeviceDescriptor(
            name: name, deviceAPI: deviceAPI, driverName: driverName, driverVersion: driverVersion, pci: pci, mdev: mdev,
            migrationFlags: flags, expectedStateSize: stateSize, vendorCompatibility: vendor)
    }
}

/// One field as found: tag, flags, and where its value lies in the header bytes.
struct Field {
    let bytes: UnsafeRawBufferPointer
    let offset: UInt64  // of the field header, from the start of the stream
    let tag: UInt16
    let flags: FieldFlags
    let valueStart: Int
    let valueEnd: Int

    var value: UnsafeRawBufferPointer {
        var reader = LittleEndianReader(bytes, index: valueStart)
        return reader.take(valueEnd - valueStart)
    }

    func string() throws(StreamError) -> String {
        guard let text = decodeUTF8(value) else { throw StreamError(offset: offset, kind: .invalidUTF8(tag: tag)) }
        return text
    }

    func fixed(_ size: Int) throws(StreamError) -> LittleEndianReader {
        guard valueEnd - valueStart == size else {
            throw StreamError(offset: offset, kind: .invalidFieldLength(tag: tag, expected: size, found: valueEnd - valueStart))
        }
        return LittleEndianReader(value)
    }

    func mdevAttribute() throws(StreamError) -> MdevAttribute {
        func malformed(_ reason: String) -> StreamError { StreamError(offset: offset, kind: .malformedField(tag: tag, reason: reason)) }
        var reader = LittleEndianReader(value)
        guard reader.remaining >= 2 else { throw malformed("shorter than its name length") }
        let nameLength = Int(reader.read(UInt16.self))
        guard nameLength > 0 else { throw malformed("empty attribute name") }
        guard nameLength <= reader.remaining else { throw malformed("name length \(nameLength) runs past the value") }
        guard let name = decodeUTF8(reader.take(nameLength)), let text = decodeUTF8(reader.take(reader.remaining)) else {
            throw StreamError(offset: offset, kind: .invalidUTF8(tag: tag))
        }
        return MdevAttribute(name: name, value: text)
    }

    /// The compatibility rule for fields: skip an unknown tag only when marked skippable.
    func skipUnknown() throws(StreamError) {
        guard flags.contains(.skippable) else { throw StreamError(offset: offset, kind: .unknownField(tag: tag)) }
    }
}

/// Walks the fields of one area (the header's or a descriptor's).
struct FieldReader {
    private var reader: LittleEndianReader
    private let end: Int

    init(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) {
        precondition(start <= end && end <= bytes.count, "field area outside its buffer")
        // SAFETY: `0..<end` lies inside `bytes` (checked above).
        self.reader = LittleEndianReader(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), index: start)
        self.end = end
    }

    mutating func next() throws(StreamError) -> Field? {
        guard reader.remaining > 0 else { return nil }
        let offset = UInt64(reader.index)
        guard reader.remaining >= fieldHeaderSize else {
            throw StreamError(
                offset: offset,
                kind: .malformedField(tag: 0, reason: "\(reader.remaining) bytes left, too few for a field header"))
        }
        let tag = reader.read(UInt16.self)
        let flags = reader.read(UInt16.self)
        let length = reader.read(UInt32.self)
        guard tag != 0 else { throw StreamError(offset: offset, kind: .zeroFieldTag) }
        guard flags & ~FieldFlags.skippable.rawValue == 0 else {
            throw StreamError(offset: offset, kind: .unknownFieldFlags(tag: tag, flags: flags))
        }
        guard UInt64(length) <= UInt64(reader.remaining) else {
            throw StreamError(offset: offset, kind: .fieldOverrun(tag: tag, length: length, available: reader.remaining))
        }
        let start = reader.index
        reader.skip(Int(length))
        return Field(bytes: reader.bytes, offset: offset, tag: tag, flags: FieldFlags(rawValue: flags), valueStart: start, valueEnd: start + Int(length))
    }
}

extension LittleEndianReader {
    /// The first `count` bytes from the current index, without advancing.
    func peek(_ count: Int) -> UnsafeRawBufferPointer {
        var copy = self
        return copy.take(count)
    }
}
