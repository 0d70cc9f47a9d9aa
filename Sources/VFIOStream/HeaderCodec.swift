// Encoding and decoding of the stream header (fixed part, fields area, CRC).

extension StreamHeader {
    /// The header's bytes: fixed part, fields, CRC32C. Headers are small, so returning an
    /// array is fine; records, the hot path, never allocate.
    /// Crashes on a header that cannot be written (a caller bug): major other than 1,
    /// more than 65535 devices, maxPayload outside the format's bounds, or > 1 MiB encoded.
    public func encoded() -> [UInt8] {
        precondition(version.major == StreamFormat.major, "can only write format major \(StreamFormat.major)")
        precondition(version.readerMinor <= version.minor, "readerMinor above minor")
        precondition(devices.count <= StreamFormat.maxDevices, "too many devices: \(devices.count)")
        precondition(
            Int(maxPayload) >= StreamFormat.minimumMaxPayload && Int(maxPayload) <= StreamFormat.hardMaxPayload,
            "maxPayload \(maxPayload) outside the format's bounds")

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
        for device in devices {
            out.appendField(HeaderFieldTag.device, device.encodedFields())
        }

        let length = out.count + StreamFormat.headerChecksumSize
        precondition(length <= StreamFormat.hardMaxHeaderLength, "header of \(length) bytes exceeds the 1 MiB cap")
        out.storeLittleEndian(UInt32(length), at: 12)
        out.appendLittleEndian(CRC32C.checksum(out))
        return out
    }
}

extension DeviceDescriptor {
    /// The descriptor's fields area (the value of header field 5).
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
                precondition(!name.isEmpty && name.count <= Int(UInt16.max), "mdev attribute name must be 1...65535 bytes")
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

    /// Decodes a whole header from the first `headerLength` bytes of `bytes`.
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: StreamLimits) throws(StreamError) -> (StreamHeader, Int) {
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
        var seen = Set<UInt16>()
        var fields = FieldReader(bytes, start: Int(fieldsOffset), end: crcOffset)
        while let field = try fields.next() {
            if field.tag != HeaderFieldTag.device {
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
            default:
                try field.skipUnknown()
            }
        }
        guard header.devices.count == deviceCount else {
            throw fail(.deviceCountMismatch(declared: deviceCount, found: header.devices.count))
        }
        return (header, length)
    }

    static func decodeDescriptor(_ container: Field) throws(StreamError) -> DeviceDescriptor {
        var name = "", deviceAPI: String?, driverName: String?, driverVersion: String?
        var pci: PCIIdentity?, mdevType: String?, attributes: [MdevAttribute] = []
        var flags: MigrationFlags?, stateSize: UInt64?, vendor = ""
        var seen = Set<UInt16>()
        var firstAttributeOffset: UInt64?

        var fields = FieldReader(container.bytes, start: container.valueStart, end: container.valueEnd)
        while let field = try fields.next() {
            if field.tag != DescriptorFieldTag.mdevAttribute {
                guard seen.insert(field.tag).inserted else {
                    throw StreamError(offset: field.offset, kind: .duplicateField(tag: field.tag))
                }
            }
            switch field.tag {
            case DescriptorFieldTag.name: name = try field.string()
            case DescriptorFieldTag.deviceAPI: deviceAPI = try field.string()
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
