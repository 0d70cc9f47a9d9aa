// RecordingKernel: a KernelInterface for tier-1 tests of the syscall layer. It sees exactly
// what the real kernel would (an fd number, a request, the caller's memory through
// UserMemory) and records every attempt, so a test can check the bytes a wrapper built and
// script how the "kernel" answers: an errno, a number of EINTRs first, and a closure that
// fills out-parameters with UserMemory.copyOut/store the way the kernel fills structs.
import SystemPackage
import VFIOSyscalls

/// What an fd number stands for in the emulated kernel.
enum FDKind: String, Sendable, Equatable {
    case container, group, device, data
}

enum SyscallKind: String, Sendable, Equatable {
    case open, close, ioctl, read, write, pread, pwrite, setNonBlocking
}

/// One attempt of one system call, as the kernel saw it on entry, and how it ended.
struct RecordedCall: Sendable {
    var syscall: SyscallKind
    var fd: CInt
    /// The kind of the fd at call time; nil when the fd was not open.
    var kind: FDKind?
    var path: String?
    var request: UInt?
    /// The by-value ioctl argument (CHECK_EXTENSION, SET_IOMMU).
    var value: UInt?
    /// True when the ioctl got no argument at all.
    var noArgument: Bool = false
    /// The pointer argument and the bytes behind it, copied in through UserMemory on entry.
    var address: UInt?
    var argumentBytes: [UInt8] = []
    /// Every region the call made reachable, by start address, copied in on entry
    /// (lets a test follow a user pointer stored inside the argument).
    var regions: [UInt: [UInt8]] = [:]
    var writableRegions: Set<UInt> = []
    /// read/write/pread/pwrite: the caller's buffer.
    var region: UserRegion?
    var offset: Int64?
    var nonBlocking: Bool?
    /// How the attempt ended: the result, or the errno thrown.
    var result: Int?
    var error: Errno?
}

/// What the handler of a scripted call sees; it answers through `memory` like the kernel.
struct Invocation {
    let syscall: SyscallKind
    let fd: CInt
    let kind: FDKind?
    let request: UInt?
    let argument: IoctlArgument?
    /// Pointer argument of an ioctl, or the buffer start of read/write/pread/pwrite.
    let address: UInt
    let region: UserRegion?
    let offset: Int64?
    let memory: UserMemory
    let kernel: RecordingKernel

    /// Hands out a new fd of `kind`, as the kernel installs one (a device fd, a data fd).
    func newDescriptor(_ kind: FDKind, name: String) -> CInt {
        kernel.install(kind, name: name)
    }

    /// Loads a little-endian field of the pointer argument.
    func field<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws(Errno) -> T {
        try memory.load(T.self, at: address + UInt(offset))
    }

    /// Stores a little-endian field of the pointer argument (copy_to_user).
    func setField<T: FixedWidthInteger>(_ value: T, at offset: Int) throws(Errno) {
        try memory.store(value, at: address + UInt(offset))
    }
}

/// A scripted answer, consumed by the first call that matches it.
struct Response {
    /// EINTRs returned before the real answer.
    var interruptions = 0
    /// The errno of the real answer, if it fails. `handle` still runs first, so a test can
    /// model a kernel that copies a struct back and then fails (a failed MIG_DEVICE_STATE SET).
    var error: Errno?
    /// Fills out-parameters and returns the call's result (ioctl value, byte count, fd).
    var handle: ((Invocation) throws(Errno) -> Int)?

    static func fail(_ errno: Errno, after interruptions: Int = 0) -> Response {
        Response(interruptions: interruptions, error: errno)
    }

    static func interrupted(_ times: Int, then handle: ((Invocation) throws(Errno) -> Int)? = nil) -> Response {
        Response(interruptions: times, handle: handle)
    }

    static func answer(_ handle: @escaping (Invocation) throws(Errno) -> Int) -> Response {
        Response(handle: handle)
    }
}

// Unchecked: one test owns one RecordingKernel and drives it from its own task; the wrappers
// under test are synchronous, so calls never overlap.
final class RecordingKernel: KernelInterface, @unchecked Sendable {
    let name = "recording"

    private struct Script {
        var syscall: SyscallKind
        var request: UInt?
        var kind: FDKind?
        var response: Response
    }

    private struct Descriptor {
        var kind: FDKind
        var name: String
    }

    private struct State {
        var nextFD: CInt = 100
        var open: [CInt: Descriptor] = [:]
        var calls: [RecordedCall] = []
        var scripts: [Script] = []
        var closes: [CInt: Int] = [:]
    }

    private var state = State()

    private func withState<R>(_ body: (inout State) throws -> R) rethrows -> R { try body(&state) }

    // MARK: - Scripting and inspection

    /// Queues `response` for the next `syscall` (with `request`, on an fd of `kind`, when given).
    func script(_ syscall: SyscallKind, request: UInt? = nil, on kind: FDKind? = nil, _ response: Response) {
        withState { s in s.scripts.append(Script(syscall: syscall, request: request, kind: kind, response: response)) }
    }

    /// Shorthand for an ioctl script.
    func onIoctl(_ request: UInt, on kind: FDKind? = nil, _ response: Response) {
        script(.ioctl, request: request, on: kind, response)
    }

    var calls: [RecordedCall] { withState { s in s.calls } }

    /// Every ioctl attempt, in order.
    var ioctls: [RecordedCall] { calls.filter { $0.syscall == .ioctl } }

    /// Scripts nobody consumed (a test expecting a call that never came).
    var pendingScripts: Int { withState { s in s.scripts.count } }

    func closeCount(_ fd: CInt) -> Int { withState { s in s.closes[fd, default: 0] } }

    func kind(of fd: CInt) -> FDKind? { withState { s in s.open[fd]?.kind } }

    func isOpen(_ fd: CInt) -> Bool { withState { s in s.open[fd] != nil } }

    /// Installs a new fd (what the kernel does for open, GET_DEVICE_FD, a migration SET).
    func install(_ kind: FDKind, name: String) -> CInt {
        withState { s in
            let fd = s.nextFD
            s.nextFD += 1
            s.open[fd] = Descriptor(kind: kind, name: name)
            return fd
        }
    }

    // MARK: - Dispatch

    /// Records the attempt, finds the script, runs it, records the outcome.
    private func dispatch(
        _ call: RecordedCall, argument: IoctlArgument?, memory: UserMemory, address: UInt,
        default fallback: (Invocation) throws(Errno) -> Int
    ) throws(Errno) -> Int {
        var record = call
        // Take the matching script (or one interruption of it) under the lock.
        enum Step { case interrupt, run(Response?) }
        let step: Step = withState { s in
            guard let i = s.scripts.firstIndex(where: { script in
                script.syscall == call.syscall
                    && (script.request == nil || script.request == call.request)
                    && (script.kind == nil || script.kind == call.kind)
            }) else { return .run(nil) }
            if s.scripts[i].response.interruptions > 0 {
                s.scripts[i].response.interruptions -= 1
                return .interrupt
            }
            return .run(s.scripts.remove(at: i).response)
        }
        let invocation = Invocation(
            syscall: call.syscall, fd: call.fd, kind: call.kind, request: call.request, argument: argument,
            address: address, region: call.region, offset: call.offset, memory: memory, kernel: self)
        let outcome: Result<Int, Errno>
        switch step {
        case .interrupt:
            outcome = .failure(.interrupted)
        case .run(let response):
            do throws(Errno) {
                let value: Int
                if let handle = response?.handle { value = try handle(invocation) } else { value = try fallback(invocation) }
                if let error = response?.error { throw error }
                outcome = .success(value)
            } catch {
                outcome = .failure(error)
            }
        }
        switch outcome {
        case .success(let v): record.result = v
        case .failure(let e): record.error = e
        }
        withState { s in s.calls.append(record) }
        return try outcome.get()
    }

    private func snapshot(_ memory: UserMemory, into record: inout RecordedCall) {
        for r in memory.regions {
            record.regions[r.address] = (try? memory.copyIn(from: r.address, count: r.count)) ?? []
            if r.writable { record.writableRegions.insert(r.address) }
        }
    }

    // MARK: - KernelInterface

    func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        let call = RecordedCall(syscall: .open, fd: -1, path: path)
        let fd = try dispatch(call, argument: nil, memory: UserMemory([]), address: 0) { (_) throws(Errno) in
            guard let kind = Self.kind(ofPath: path) else { throw .noSuchFileOrDirectory }
            return Int(self.install(kind, name: path))
        }
        return CInt(fd)
    }

    /// /dev/vfio/vfio is the container; /dev/vfio/<number> a group.
    static func kind(ofPath path: String) -> FDKind? {
        if path.hasSuffix("/vfio/vfio") { return .container }
        if let last = path.split(separator: "/").last, path.hasPrefix("/dev/vfio/"), last.allSatisfy(\.isNumber) {
            return .group
        }
        return nil
    }

    func close(_ fd: CInt) throws(Errno) {
        let kind = withState { s -> FDKind? in
            s.closes[fd, default: 0] += 1
            return s.open[fd]?.kind
        }
        // The fd is gone whatever close returns (Linux semantics, EINTR included).
        defer { withState { s in _ = s.open.removeValue(forKey: fd) } }
        var call = RecordedCall(syscall: .close, fd: fd, kind: kind)
        guard kind != nil else {
            call.error = .badFileDescriptor
            withState { s in s.calls.append(call) }
            throw .badFileDescriptor
        }
        _ = try dispatch(call, argument: nil, memory: UserMemory([]), address: 0) { (_) throws(Errno) in 0 }
    }

    func ioctl(_ fd: CInt, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        var call = RecordedCall(syscall: .ioctl, fd: fd, kind: kind(of: fd), request: request)
        var memory = UserMemory([])
        var address: UInt = 0
        switch argument {
        case .none:
            call.noArgument = true
        case .value(let v):
            call.value = v
        case .pointer(let a, let m):
            address = a
            memory = m
            call.address = a
            snapshot(m, into: &call)
            call.argumentBytes = call.regions[a] ?? []
        }
        guard call.kind != nil else {
            call.error = .badFileDescriptor
            withState { s in s.calls.append(call) }
            throw .badFileDescriptor
        }
        let result = try dispatch(call, argument: argument, memory: memory, address: address) { (inv) throws(Errno) in
            try Self.defaultIoctl(inv)
        }
        return CInt(result)
    }

    /// What an unscripted ioctl does: succeed with 0 and leave the argument alone, except
    /// GROUP_GET_DEVICE_FD, which reads the NUL-terminated name and installs a device fd.
    private static func defaultIoctl(_ inv: Invocation) throws(Errno) -> Int {
        if inv.request == 0x3B6A, inv.kind == .group {
            let name = try inv.memory.loadCString(at: inv.address)
            return Int(inv.newDescriptor(.device, name: name))
        }
        return 0
    }

    private func transfer(
        _ syscall: SyscallKind, _ fd: CInt, _ region: UserRegion, offset: Int64?,
        default fallback: (Invocation) throws(Errno) -> Int
    ) throws(Errno) -> Int {
        var call = RecordedCall(syscall: syscall, fd: fd, kind: kind(of: fd), region: region, offset: offset)
        let memory = UserMemory([region])
        snapshot(memory, into: &call)
        call.argumentBytes = call.regions[region.address] ?? []
        guard call.kind != nil else {
            call.error = .badFileDescriptor
            withState { s in s.calls.append(call) }
            throw .badFileDescriptor
        }
        return try dispatch(call, argument: nil, memory: memory, address: region.address, default: fallback)
    }

    func read(_ fd: CInt, into region: UserRegion) throws(Errno) -> Int {
        try transfer(.read, fd, region, offset: nil) { (_) throws(Errno) in 0 }
    }

    func write(_ fd: CInt, from region: UserRegion) throws(Errno) -> Int {
        try transfer(.write, fd, region, offset: nil) { (inv) throws(Errno) in inv.region?.count ?? 0 }
    }

    func pread(_ fd: CInt, into region: UserRegion, offset: Int64) throws(Errno) -> Int {
        try transfer(.pread, fd, region, offset: offset) { (_) throws(Errno) in 0 }
    }

    func pwrite(_ fd: CInt, from region: UserRegion, offset: Int64) throws(Errno) -> Int {
        try transfer(.pwrite, fd, region, offset: offset) { (inv) throws(Errno) in inv.region?.count ?? 0 }
    }

    func setNonBlocking(_ fd: CInt, _ enabled: Bool) throws(Errno) {
        var call = RecordedCall(syscall: .setNonBlocking, fd: fd, kind: kind(of: fd))
        call.nonBlocking = enabled
        guard call.kind != nil else {
            call.error = .badFileDescriptor
            withState { s in s.calls.append(call) }
            throw .badFileDescriptor
        }
        _ = try dispatch(call, argument: nil, memory: UserMemory([]), address: 0) { (_) throws(Errno) in 0 }
    }
}

// MARK: - Reading recorded bytes at literal offsets

extension Array where Element == UInt8 {
    func le<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= count else { return nil }
        var v: T = 0
        for i in 0..<size { v |= T(self[offset + i]) << (8 * i) }
        return v
    }
    func u32(_ offset: Int) -> UInt32? { le(UInt32.self, at: offset) }
    func u64(_ offset: Int) -> UInt64? { le(UInt64.self, at: offset) }
    func i32(_ offset: Int) -> Int32? { le(Int32.self, at: offset) }
}

/// Little-endian bytes of an integer, for building kernel-side structures.
func leBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
