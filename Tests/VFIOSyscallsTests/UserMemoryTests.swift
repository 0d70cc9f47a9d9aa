// UserMemory is the emulated kernel's only way into the caller's memory: every access must
// lie inside one region the call made reachable, writes only into writable regions, and
// anything else is EFAULT, as copy_from_user/copy_to_user would report. The in-bounds cases
// run inside scripted calls, on memory the wrappers really lent; out-of-bounds cases on made-up
// addresses fail before touching memory.
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

/// Runs `access` and returns the errno it threw, or nil on success.
func errnoOf(_ access: () throws(Errno) -> Void) -> Errno? {
    do { try access() } catch { return error }
    return nil
}

@Suite struct UserMemoryTests {
    @Test func accessesAreBoundedByTheArgumentStruct() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        var outcomes: [String: Errno?] = [:]
        kernel.onIoctl(Req.deviceGetRegionInfo, .answer { inv throws(Errno) in
            let a = inv.address, m = inv.memory
            outcomes["last u64"] = errnoOf { () throws(Errno) in _ = try m.load(UInt64.self, at: a + 24) }
            outcomes["u64 one past"] = errnoOf { () throws(Errno) in _ = try m.load(UInt64.self, at: a + 25) }
            outcomes["empty at end"] = errnoOf { () throws(Errno) in _ = try m.copyIn(from: a + 32, count: 0) }
            outcomes["byte at end"] = errnoOf { () throws(Errno) in _ = try m.copyIn(from: a + 32, count: 1) }
            outcomes["byte before"] = errnoOf { () throws(Errno) in _ = try m.copyIn(from: a - 1, count: 1) }
            outcomes["negative count"] = errnoOf { () throws(Errno) in _ = try m.copyIn(from: a, count: -1) }
            outcomes["store u32 at 28"] = errnoOf { () throws(Errno) in try m.store(UInt32(0xAABB_CCDD), at: a + 28) }
            outcomes["store u64 at 28"] = errnoOf { () throws(Errno) in try m.store(UInt64(1), at: a + 28) }
            outcomes["copyOut past end"] = errnoOf { () throws(Errno) in try m.copyOut([1, 2, 3], to: a + 30) }
            return 0
        })
        let region = try device.regionInfo(0)
        // The one in-bounds store landed, little-endian, in `offset` (@24, upper half).
        #expect(region.offset == 0xAABB_CCDD << 32)
        #expect(outcomes["last u64"] == .some(nil))
        #expect(outcomes["empty at end"] == .some(nil))
        #expect(outcomes["store u32 at 28"] == .some(nil))
        for label in ["u64 one past", "byte at end", "byte before", "negative count", "store u64 at 28", "copyOut past end"] {
            #expect(outcomes[label] == .some(.badAddress), "\(label)")
        }
    }

    @Test func readOnlyRegionsCanBeReadButNotWritten() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        var outcomes: [String: Errno?] = [:]
        var tableIova: UInt64?
        kernel.onIoctl(Req.deviceFeature, .answer { inv throws(Errno) in
            let table = UInt(try inv.field(UInt64.self, at: 24))
            let m = inv.memory
            outcomes["load table"] = errnoOf { () throws(Errno) in tableIova = try m.load(UInt64.self, at: table) }
            outcomes["store table"] = errnoOf { () throws(Errno) in try m.store(UInt64(0), at: table) }
            outcomes["empty copyOut to table"] = errnoOf { () throws(Errno) in try m.copyOut([], to: table) }
            outcomes["store argument"] = errnoOf { () throws(Errno) in try inv.setField(UInt64(0x1000), at: 8) }
            return 0
        })
        let chosen = try device.startDMALogging(ranges: [DMARange(iova: 0xABC0_0000, length: 0x1000)], pageSize: 4096)
        #expect(chosen == 0x1000)
        #expect(tableIova == 0xABC0_0000)
        #expect(outcomes["load table"] == .some(nil))
        #expect(outcomes["store argument"] == .some(nil))
        #expect(outcomes["store table"] == .some(.badAddress))
        #expect(outcomes["empty copyOut to table"] == .some(.badAddress))
    }

    @Test func aKernelWritingPastTheStructFailsTheCallWithEFAULT() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetInfo, .answer { inv throws(Errno) in
            try inv.setField(UInt32(1), at: 24) // one field past the 24-byte struct
            return 0
        })
        let error = #expect(throws: SyscallError.self) { _ = try device.info() }
        #expect(error?.description.hasPrefix("VFIO_DEVICE_GET_INFO on device 0000:06:0d.0 failed: EFAULT") == true)
    }

    @Test func loadCStringHonoursItsLimitAndTheRegionEnd() throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        var outcomes: [String: Errno?] = [:]
        var name: String?
        kernel.onIoctl(Req.groupGetDeviceFD, .answer { inv throws(Errno) in
            let m = inv.memory, a = inv.address
            // "0000:06:0d.0" is 12 bytes; with its NUL 13 must be read.
            outcomes["limit 12"] = errnoOf { () throws(Errno) in _ = try m.loadCString(at: a, limit: 12) }
            outcomes["limit 13"] = errnoOf { () throws(Errno) in name = try m.loadCString(at: a, limit: 13) }
            outcomes["from the middle"] = errnoOf { () throws(Errno) in
                if try m.loadCString(at: a + 5) != "06:0d.0" { throw .invalidArgument }
            }
            return Int(inv.newDescriptor(.device, name: name ?? ""))
        })
        _ = try group.openDevice(deviceName)
        #expect(name == deviceName)
        #expect(outcomes["limit 13"] == .some(nil))
        #expect(outcomes["from the middle"] == .some(nil))
        #expect(outcomes["limit 12"] == .some(.fileNameTooLong))
    }

    @Test func loadCStringWithoutANulStopsAtTheRegionEnd() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel, state: 4)
        let buffer = IOBuffer(capacity: 64)
        buffer.write([UInt8](repeating: 0x41, count: 64), at: 0)
        var outcomes: [String: Errno?] = [:]
        kernel.script(.write, .answer { inv throws(Errno) in
            let m = inv.memory, a = inv.address
            outcomes["unterminated"] = errnoOf { () throws(Errno) in _ = try m.loadCString(at: a) }
            outcomes["limit 10"] = errnoOf { () throws(Errno) in _ = try m.loadCString(at: a, limit: 10) }
            return 16
        })
        #expect(try data.write(from: buffer, range: 0..<16) == 16)
        #expect(outcomes["unterminated"] == .some(.badAddress))
        #expect(outcomes["limit 10"] == .some(.fileNameTooLong))
    }

    @Test func accessesOutsideEveryRegionAreEFAULT() {
        let a = UserRegion(address: 0x1000, count: 16, writable: true)
        let b = UserRegion(address: 0x1010, count: 16, writable: true)
        let memory = UserMemory([a, b])
        // Spanning two adjacent regions is not inside either.
        #expect(errnoOf { () throws(Errno) in _ = try memory.copyIn(from: 0x100C, count: 8) } == .badAddress)
        #expect(errnoOf { () throws(Errno) in _ = try memory.copyIn(from: 0x0FFF, count: 1) } == .badAddress)
        #expect(errnoOf { () throws(Errno) in _ = try memory.copyIn(from: 0x1020, count: 1) } == .badAddress)
        #expect(errnoOf { () throws(Errno) in try memory.store(UInt16(1), at: 0x101F) } == .badAddress)
        #expect(errnoOf { () throws(Errno) in _ = try UserMemory([]).copyIn(from: 0x1000, count: 1) } == .badAddress)
        // Address arithmetic near the top of the address space must not wrap into range.
        let top = UserMemory([UserRegion(address: UInt.max - 3, count: 4, writable: true)])
        #expect(errnoOf { () throws(Errno) in _ = try top.copyIn(from: UInt.max - 1, count: 8) } == .badAddress)
        #expect(errnoOf { () throws(Errno) in _ = try top.copyIn(from: UInt.max - 1, count: Int.max) } == .badAddress)
    }

    @Test func regionPrefixAndDropFirstClampToTheRegion() {
        let r = UserRegion(address: 0x2000, count: 100, writable: false)
        #expect(r.prefix(10) == UserRegion(address: 0x2000, count: 10, writable: false))
        #expect(r.prefix(1000) == r)
        #expect(r.dropFirst(30) == UserRegion(address: 0x201E, count: 70, writable: false))
        #expect(r.dropFirst(1000) == UserRegion(address: 0x2064, count: 0, writable: false))
        #expect(r.dropFirst(40).prefix(5) == UserRegion(address: 0x2028, count: 5, writable: false))
    }
}
