#!/usr/bin/env python3
"""Independent writer of golden fixtures for stream format v1.0 and v1.1.

Written from docs/stream-format.md alone (its own CRC32C and layout code, nothing shared
with the Swift implementation), so agreement between the two shows the document is
complete. Output: annotated .hex files, one field per line, `#` starts a comment; long
values (page data) wrap 16 bytes per line.
Run from anywhere: python3 Tests/VFIOStreamTests/Fixtures/generate.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


class Annotated:
    """Bytes plus one comment per field, for .hex output."""

    def __init__(self):
        self.parts = []  # (bytes, comment, indent)

    def add(self, data, comment, indent=0):
        self.parts.append((bytes(data), comment, indent))

    def u8(self, v, c, i=0): self.add(struct.pack("<B", v), c, i)
    def u16(self, v, c, i=0): self.add(struct.pack("<H", v), c, i)
    def u32(self, v, c, i=0): self.add(struct.pack("<I", v), c, i)
    def u64(self, v, c, i=0): self.add(struct.pack("<Q", v), c, i)
    def i64(self, v, c, i=0): self.add(struct.pack("<q", v), c, i)

    def extend(self, other):
        self.parts.extend(other.parts)

    @property
    def data(self):
        return b"".join(p[0] for p in self.parts)

    def render(self, title, base=0):
        lines = ["# " + t for t in title.splitlines()]
        pos = base
        for chunk, comment, indent in self.parts:
            text = " ".join("%02x" % b for b in chunk) if chunk else ""
            # Long values wrap 16 bytes per line; the comment goes on the first.
            rows = [chunk[i:i + 16] for i in range(0, len(chunk), 16)] or [b""]
            for n, row in enumerate(rows):
                hexrow = " ".join("%02x" % b for b in row)
                note = "  # @%d %s%s" % (pos, "  " * indent, comment) if n == 0 else ""
                lines.append((hexrow.ljust(48) + note).rstrip() if row else "# @%d %s%s (empty)" % (pos, "  " * indent, comment))
            pos += len(chunk)
        return "\n".join(lines) + "\n"


def field(tag, value, comment, indent=0, flags=0):
    f = Annotated()
    f.u16(tag, "field tag %d: %s" % (tag, comment), indent)
    f.u16(flags, "field flags", indent)
    length = len(value.data) if isinstance(value, Annotated) else len(value)
    f.u32(length, "field length", indent)
    if isinstance(value, Annotated):
        f.extend(value)
    else:
        f.add(value, "value %r" % (value.decode("utf-8") if isinstance(value, bytes) else value), indent + 1)
    return f


def string_field(tag, text, name, indent=0):
    return field(tag, text.encode("utf-8"), name, indent)


def descriptor(d, indent=1):
    a = Annotated()
    if d.get("name"):
        a.extend(string_field(1, d["name"], "name", indent))
    a.extend(string_field(2, d["deviceAPI"], "deviceAPI", indent))
    a.extend(string_field(3, d["driverName"], "driverName", indent))
    a.extend(string_field(4, d["driverVersion"], "driverVersion", indent))
    if "pci" in d:
        p = d["pci"]
        v = Annotated()
        v.u16(p["vendor"], "vendorID", indent + 1)
        v.u16(p["device"], "deviceID", indent + 1)
        v.u16(p["subvendor"], "subsystemVendorID", indent + 1)
        v.u16(p["subdevice"], "subsystemDeviceID", indent + 1)
        v.u8(p["revision"], "revision", indent + 1)
        c = p["class"]
        v.add(bytes([c & 0xFF, (c >> 8) & 0xFF, (c >> 16) & 0xFF]), "classCode 0x%06x (progIf, subclass, base)" % c, indent + 1)
        a.extend(field(5, v, "pci", indent))
    if "mdevType" in d:
        a.extend(string_field(6, d["mdevType"], "mdevType", indent))
        for name, value in d.get("attrs", []):
            v = Annotated()
            v.u16(len(name.encode()), "nameLength", indent + 1)
            v.add(name.encode(), "name %r" % name, indent + 1)
            v.add(value.encode(), "value %r" % value, indent + 1)
            a.extend(field(7, v, "mdevAttribute", indent))
    v = Annotated()
    v.u64(d["flags"], "VFIO_MIGRATION_* flags", indent + 1)
    a.extend(field(8, v, "migrationFlags", indent))
    if "stateSize" in d:
        v = Annotated()
        v.u64(d["stateSize"], "bytes", indent + 1)
        a.extend(field(9, v, "expectedStateSize", indent))
    if d.get("vendor"):
        a.extend(string_field(10, d["vendor"], "vendorCompatibility", indent))
    return a


def header(devices, minor=0, reader_minor=0, host=None, writer="", extra_fields=None,
           created=1_700_000_000_123_456_789, max_payload=16 << 20, flags=0):
    host = host or {}
    fields = Annotated()
    for tag, key in ((1, "hostName"), (2, "machineID"), (3, "kernelRelease")):
        if host.get(key):
            fields.extend(string_field(tag, host[key], key))
    if writer:
        fields.extend(string_field(4, writer, "writer"))
    for index, d in enumerate(devices):
        fields.extend(field(5, descriptor(d), "device %d descriptor" % index))
    for extra in extra_fields or []:
        fields.extend(extra)
    length = 40 + len(fields.data) + 4
    h = Annotated()
    h.add(bytes([0x89, 0x56, 0x46, 0x49, 0x4F, 0x4D, 0x0D, 0x0A]), "magic \\x89 VFIOM \\r\\n")
    h.u16(1, "major")
    h.u16(minor, "minor (writer)")
    h.u32(length, "headerLength")
    h.u16(reader_minor, "readerMinor")
    h.u16(len(devices), "deviceCount")
    h.u32(flags, "flags" + (" (bit 0 NO_RECORD_CHECKSUMS)" if flags & 1 else ""))
    h.i64(created, "creationTime (ns since epoch)")
    h.u32(max_payload, "maxPayload")
    h.u32(40, "fieldsOffset")
    h.extend(fields)
    h.u32(crc32c(h.data), "headerCRC (CRC32C of all bytes above)")
    assert len(h.data) == length
    return h


class Records:
    def __init__(self, checksums=True):
        self.out = Annotated()
        self.sequence = 0
        self.checksums = checksums

    def record(self, rtype, name, device, phase, offset, payload, flags=0):
        body = payload.data if isinstance(payload, Annotated) else payload
        r = Annotated()
        r.u16(rtype, "record type %d: %s" % (rtype, name))
        r.u16(flags, "record flags")
        r.u16(device, "device index" if device != 0xFFFF else "device: none (0xFFFF)")
        r.u8(phase, "phase")
        r.u8(0, "reserved")
        r.u32(len(body), "payloadLength")
        r.u32(0, "crc (filled in below)")
        r.u64(self.sequence, "sequence")
        r.u64(offset, "offset")
        if self.checksums:
            crc = crc32c(r.data + body)
            r.parts[6] = (struct.pack("<I", crc), "crc: CRC32C of this header (crc field zero) + payload", 0)
        else:
            r.parts[6] = (struct.pack("<I", 0), "crc: 0 (NO_RECORD_CHECKSUMS)", 0)
        if isinstance(payload, Annotated):
            r.extend(payload)
        else:
            r.add(payload, "payload %r" % payload, 1)
        self.out.extend(r)
        self.sequence += 1


def words(*pairs):
    a = Annotated()
    for size, value, comment in pairs:
        {2: a.u16, 4: a.u32, 8: a.u64}[size](value, comment, 1)
    return a


PCI_DEVICE = {
    "name": "0000:3b:00.1", "deviceAPI": "vfio-pci", "driverName": "mlx5_vfio_pci", "driverVersion": "1.0",
    "pci": {"vendor": 0x15B3, "device": 0x101E, "subvendor": 0x15B3, "subdevice": 0x0063, "revision": 0, "class": 0x020000},
    "flags": 0x5, "stateSize": 1 << 20, "vendor": "mlx5 fw 22.36",
}
MDEV_DEVICE = {
    "name": "6f8e4c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "deviceAPI": "vfio-ap", "driverName": "vfio_ap",
    "driverVersion": "", "mdevType": "vfio_ap-passthrough",
    "attrs": [("assign_adapter", "5"), ("assign_domain", "0x47"), ("assign_domain", "0xff")],
    "flags": 0x1,
}
HOST = {"hostName": "src-host", "machineID": "0123456789abcdef0123456789abcdef", "kernelRelease": "6.8.0-test"}
WRITER = "vfio-migration test"


# v1.1 pieces.

def migration_id_field(id16):
    v = Annotated()
    v.add(id16, "migrationID " + id16.hex(), 1)
    return field(6, v, "migrationID (SKIPPABLE)", flags=1)


def channel_field(index, count):
    v = Annotated()
    v.u16(index, "channel index", 1)
    v.u16(count, "channel count", 1)
    return field(7, v, "channel")


def region_field(start, length, page_size, number):
    v = Annotated()
    v.u64(start, "start 0x%x" % start, 1)
    v.u64(length, "length 0x%x" % length, 1)
    v.u32(page_size, "pageSize", 1)
    v.u32(0, "flags (reserved)", 1)
    return field(8, v, "memoryRegion %d" % number)


def pages_payload(region, runs, page_size, data):
    """runs: (firstPage, pageCount, zero); data: the non-zero runs' bytes in order."""
    a = Annotated()
    a.u32(region, "region", 1)
    a.u32(len(runs), "runCount", 1)
    expected = 0
    for n, (first, count, zero) in enumerate(runs):
        a.u64(first, "run %d firstPage" % n, 1)
        a.u32(count, "run %d pageCount" % n, 1)
        a.u32(1 if zero else 0, "run %d flags%s" % (n, " (ZERO)" if zero else ""), 1)
        if not zero:
            expected += count * page_size
    assert len(data) == expected
    if data:
        a.add(data, "page data (%d bytes)" % len(data), 1)
    return a


def digest_payload(descriptor_value, data_crc):
    a = Annotated()
    a.u32(crc32c(descriptor_value), "descriptorCRC: CRC32C of the device field's value", 1)
    a.u32(data_crc, "dataCRC: CRC32C of the device's data in offset order", 1)
    return a


def end_of_device(records, device, offset, pre, stop, chunks):
    records.record(4, "endOfDevice", device, 0, offset,
                   words((8, pre, "preCopyBytes"), (8, stop, "stopCopyBytes"), (8, chunks, "chunkCount")))


def end_of_stream(records, devices, state_bytes):
    records.record(5, "endOfStream", 0xFFFF, 0, 0,
                   words((4, devices, "deviceCount"), (4, 0, "reserved"), (8, state_bytes, "totalStateBytes"),
                         (8, records.sequence, "recordCount")))


def pci_device_tail(records, pci_value):
    """The one-device fixtures' ending: digest of the 13 data bytes, end of device, end of stream."""
    records.record(6, "deviceDigest (SKIPPABLE)", 0, 0, 13, digest_payload(pci_value, crc32c(b"pre-copystate")), flags=1)
    end_of_device(records, 0, 13, 8, 5, 2)
    end_of_stream(records, 1, 13)


def page_bytes(index):
    return bytes(((i * 7 + index * 31 + 1) & 0xFF) for i in range(4096))


MIGRATION_ID = bytes.fromhex("0123456789abcdeffedcba9876543210")
REGIONS = [(0, 1 << 20, 4096), (1 << 32, 4 << 20, 2 << 20)]


def write(name, annotated, title, base=0):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(annotated.render(title, base))


def main():
    h1 = header([PCI_DEVICE], host=HOST, writer=WRITER)
    write("header-1dev.hex", h1, "Stream header v1.0: one PCI device (PRE_COPY|STOP_COPY).\nGenerated by generate.py from docs/stream-format.md; do not edit by hand.")

    h2 = header([PCI_DEVICE, MDEV_DEVICE], host=HOST, writer=WRITER)
    write("header-2dev.hex", h2, "Stream header v1.0: a PCI device and an mdev (vfio-ap, repeated attribute).\nGenerated by generate.py; do not edit by hand.")

    # One device: every v1.0 record type once or more.
    r = Records()
    r.record(2, "preCopyProgress", 0, 0, 0, words((8, 8, "initialBytes"), (8, 0, "dirtyBytes")))
    r.record(1, "deviceState", 0, 1, 0, b"pre-copy")
    r.record(1, "deviceState", 0, 2, 8, b"state")
    r.record(4, "endOfDevice", 0, 0, 13, words((8, 8, "preCopyBytes"), (8, 5, "stopCopyBytes"), (8, 2, "chunkCount")))
    r.record(5, "endOfStream", 0xFFFF, 0, 0, words((4, 1, "deviceCount"), (4, 0, "reserved"), (8, 13, "totalStateBytes"), (8, 4, "recordCount")))
    write("records-1dev.hex", r.out, "Records following header-1dev.hex: progress, pre-copy chunk, stop-copy chunk,\nend of device, end of stream. Offsets are stream offsets. Generated by generate.py.", len(h1.data))

    # Two devices, interleaved; device 1 has no PRE_COPY.
    r = Records()
    r.record(1, "deviceState", 0, 1, 0, b"AAAA")
    r.record(1, "deviceState", 1, 2, 0, b"xyz")
    r.record(1, "deviceState", 0, 2, 4, b"BB")
    r.record(4, "endOfDevice", 1, 0, 3, words((8, 0, "preCopyBytes"), (8, 3, "stopCopyBytes"), (8, 1, "chunkCount")))
    r.record(4, "endOfDevice", 0, 0, 6, words((8, 4, "preCopyBytes"), (8, 2, "stopCopyBytes"), (8, 2, "chunkCount")))
    r.record(5, "endOfStream", 0xFFFF, 0, 0, words((4, 2, "deviceCount"), (4, 0, "reserved"), (8, 9, "totalStateBytes"), (8, 5, "recordCount")))
    write("records-2dev.hex", r.out, "Records following header-2dev.hex: two devices interleaved. Generated by generate.py.", len(h2.data))

    # A stream from a hypothetical 1.1 writer that stays readable by 1.0 readers:
    # minor 1, readerMinor 0, one unknown skippable header field, one unknown skippable record.
    extra = field(0x7F01, b"future", "unknown tag 0x7f01 (SKIPPABLE)", flags=1)
    h = header([], minor=1, reader_minor=0, extra_fields=[extra])
    r = Records()
    r.record(0x0106, "unknown type 262 (SKIPPABLE)", 0xFFFF, 0, 0, b"later", flags=1)
    r.record(5, "endOfStream", 0xFFFF, 0, 0, words((4, 0, "deviceCount"), (4, 0, "reserved"), (8, 0, "totalStateBytes"), (8, 1, "recordCount")))
    s = Annotated()
    s.extend(h)
    s.extend(r.out)
    write("stream-v1.1-skippable.hex", s, "Whole stream written by a later writer for 1.0 readers (minor 1, readerMinor 0):\nskippable unknown field and record. Generated by generate.py.")

    pci_value = descriptor(PCI_DEVICE).data
    mdev_value = descriptor(MDEV_DEVICE).data

    # v1.1, device state only: readerMinor stays 0, the device digest is SKIPPABLE for 1.0 readers.
    h = header([PCI_DEVICE], minor=1, reader_minor=0, host=HOST, writer=WRITER)
    r = Records()
    r.record(2, "preCopyProgress", 0, 0, 0, words((8, 8, "initialBytes"), (8, 0, "dirtyBytes")))
    r.record(1, "deviceState", 0, 1, 0, b"pre-copy")
    r.record(1, "deviceState", 0, 2, 8, b"state")
    pci_device_tail(r, pci_value)
    s = Annotated()
    s.extend(h)
    s.extend(r.out)
    write("stream-v1.1-1dev.hex", s, "Whole v1.1 stream of device state only (readerMinor 0): the one-device records\nwith the device digest before the end of the device. Generated by generate.py.")

    # v1.1 with memory: migration id, two regions, pages records of both phases.
    regions = [region_field(start, length, size, n) for n, (start, length, size) in enumerate(REGIONS)]
    h = header([PCI_DEVICE], minor=1, reader_minor=1, host=HOST, writer=WRITER,
               extra_fields=[migration_id_field(MIGRATION_ID)] + regions)
    r = Records()
    r.record(3, "pages (phase 1, round 0)", 0xFFFF, 1, 0, pages_payload(0, [(0, 1, False), (2, 3, True)], 4096, page_bytes(0)))
    r.record(2, "preCopyProgress", 0, 0, 0, words((8, 8, "initialBytes"), (8, 0, "dirtyBytes")))
    r.record(1, "deviceState", 0, 1, 0, b"pre-copy")
    r.record(3, "pages (phase 1, round 1)", 0xFFFF, 1, 1, pages_payload(1, [(0, 2, True)], 2 << 20, b""))
    r.record(1, "deviceState", 0, 2, 8, b"state")
    r.record(3, "pages (phase 2, round 2)", 0xFFFF, 2, 2, pages_payload(0, [(0, 1, True), (5, 1, False)], 4096, page_bytes(5)))
    pci_device_tail(r, pci_value)
    s = Annotated()
    s.extend(h)
    s.extend(r.out)
    write("stream-v1.1-pages.hex", s, "Whole v1.1 stream (readerMinor 1): migration id, two memory regions, pages records\nwith data and ZERO runs in both phases, device state and its digest. Generated by generate.py.")

    # v1.1 over two channels: the device's 10 data bytes split 0..5 + 8..10 (channel 0), 5..8 (channel 1).
    data = b"AAAAABBBDD"
    for index in (0, 1):
        h = header([PCI_DEVICE], minor=1, reader_minor=1, host=HOST, writer=WRITER,
                   extra_fields=[migration_id_field(MIGRATION_ID), channel_field(index, 2)] + regions)
        r = Records()
        if index == 0:
            r.record(1, "deviceState", 0, 2, 0, data[0:5])
            r.record(1, "deviceState", 0, 2, 8, data[8:10])
            r.record(6, "deviceDigest (SKIPPABLE)", 0, 0, 10, digest_payload(pci_value, crc32c(data)), flags=1)
            end_of_device(r, 0, 10, 0, 7, 2)
            end_of_stream(r, 1, 7)
        else:
            r.record(3, "pages (phase 2, round 0)", 0xFFFF, 2, 0, pages_payload(0, [(1, 1, True)], 4096, b""))
            r.record(1, "deviceState", 0, 2, 5, data[5:8])
            end_of_device(r, 0, 10, 0, 3, 1)
            end_of_stream(r, 1, 3)
        s = Annotated()
        s.extend(h)
        s.extend(r.out)
        write("stream-v1.1-channel%d.hex" % index, s,
              "Channel %d of 2 of one migration (v1.1, readerMinor 1): device data split across channels;\n"
              "digest on channel 0 only. Generated by generate.py." % index)

    # v1.1 without record checksums: every record crc 0, digest dataCRC 0; header CRC as always.
    h = header([MDEV_DEVICE], minor=1, reader_minor=1, host=HOST, writer=WRITER, flags=1)
    r = Records(checksums=False)
    r.record(1, "deviceState", 0, 2, 0, b"xyz")
    r.record(6, "deviceDigest (SKIPPABLE)", 0, 0, 3, digest_payload(mdev_value, 0), flags=1)
    end_of_device(r, 0, 3, 0, 3, 1)
    end_of_stream(r, 1, 3)
    s = Annotated()
    s.extend(h)
    s.extend(r.out)
    write("stream-v1.1-nocrc.hex", s, "Whole v1.1 stream with NO_RECORD_CHECKSUMS (readerMinor 1): record CRCs and the\ndigest's data CRC are 0. Generated by generate.py.")


    # Control connection (docs/transfer-protocol.md): each direction a prefix, then messages.
    def prefix(role):
        a = Annotated()
        a.add(bytes([0x89, 0x56, 0x46, 0x49, 0x4F, 0x43, 0x0D, 0x0A]), "control magic \\x89 VFIOC \\r\\n")
        a.u16(1, "major")
        a.u16(0, "minor")
        a.u16(role, "role (1 source, 2 target)")
        a.u16(0, "reserved")
        return a

    def message(out, mtype, name, seq, payload):
        body = payload.data if isinstance(payload, Annotated) else payload
        head = struct.pack("<HHIII", mtype, 0, len(body), 0, seq)
        crc = crc32c(head + body)
        out.u16(mtype, "message type %d: %s" % (mtype, name))
        out.u16(0, "flags")
        out.u32(len(body), "payload length")
        out.u32(crc, "CRC32C of the header (this field 0) and the payload")
        out.u32(seq, "sequence")
        if isinstance(payload, Annotated):
            out.extend(payload)
        elif body:
            out.add(body, "payload", 1)

    proposed = header([PCI_DEVICE], minor=1, reader_minor=1, host=HOST, writer=WRITER,
                      extra_fields=[channel_field(0, 2)])
    src = prefix(1)
    message(src, 1, "propose (the stream header of channel 0, no migration id)", 0, proposed.data)
    message(src, 7, "commit", 1, b"")
    write("control-source.hex", src, "Source side of a control connection: prefix, propose, commit.\nGenerated by generate.py from docs/transfer-protocol.md; do not edit by hand.")

    target_host = {"hostName": "dst-host"}
    accepted = header([PCI_DEVICE], minor=1, reader_minor=0, host=target_host, writer=WRITER,
                      extra_fields=[migration_id_field(MIGRATION_ID)])
    dst = prefix(2)
    message(dst, 2, "accept (the target's header: its devices, the nonce as migration id)", 0, accepted.data)
    message(dst, 4, "switchover-ack", 1, words((2, 0, "device"), (2, 0, "reserved"), (4, 1, "epoch"), (8, 8, "offset")))
    message(dst, 5, "loaded", 2, words((4, 1, "deviceCount"), (4, 0, "reserved"), (8, 13, "totalStateBytes"), (8, 2_500_000, "validation (ns)")))
    message(dst, 8, "committed", 3, words((4, 2, "state (1 stopped, 2 running)"), (4, 0, "reserved"), (8, 700_000, "resume (ns)")))
    write("control-target.hex", dst, "Target side of a control connection: prefix, accept, switchover-ack, loaded,\ncommitted. Generated by generate.py; do not edit by hand.")

    refusal = prefix(2)
    reason = Annotated()
    reason.u32(1, "code 1: incompatible")
    reason.add("device 0: driverName".encode(), "reason 'device 0: driverName'", 1)
    message(refusal, 3, "refuse", 0, reason)
    message(refusal, 6, "failed", 1, "resume failed".encode())
    write("control-refused.hex", refusal, "Target side refusing: prefix, refuse (incompatible), failed.\nGenerated by generate.py; do not edit by hand.")


if __name__ == "__main__":
    main()
