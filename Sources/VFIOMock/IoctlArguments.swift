// Decoding ioctl arguments the way the kernel does: fields at fixed offsets of the caller's
// struct, read and written only through UserMemory (EFAULT outside what the caller exposed).
import SystemPackage
import VFIOSyscalls

/// A pointer argument: the struct's address and the memory the call made reachable.
struct UserStruct {
    let address: UInt
    let memory: UserMemory

    /// The pointer argument of `argument`; a missing or by-value pointer faults like a bad address.
    init(_ argument: IoctlArgument) throws(Errno) {
        guard case .pointer(let address, let memory) = argument else { throw .badAddress }
        self.address = address
        self.memory = memory
    }

    init(address: UInt, memory: UserMemory) {
        self.address = address
        self.memory = memory
    }

    func u32(_ offset: UInt) throws(Errno) -> UInt32 { try memory.load(UInt32.self, at: address &+ offset) }
    func i32(_ offset: UInt) throws(Errno) -> Int32 { try memory.load(Int32.self, at: address &+ offset) }
    func u64(_ offset: UInt) throws(Errno) -> UInt64 { try memory.load(UInt64.self, at: address &+ offset) }
    func set(_ offset: UInt, u32 value: UInt32) throws(Errno) { try memory.store(value, at: address &+ offset) }
    func set(_ offset: UInt, i32 value: Int32) throws(Errno) { try memory.store(value, at: address &+ offset) }
    func set(_ offset: UInt, u64 value: UInt64) throws(Errno) { try memory.store(value, at: address &+ offset) }

    /// Another struct the caller pointed to (a user pointer inside this one).
    func pointee(at userAddress: UInt64) -> UserStruct {
        UserStruct(address: UInt(truncatingIfNeeded: userAddress), memory: memory)
    }
}

extension IoctlArgument {
    /// The integer a by-value ioctl argument carries, as the kernel would see it.
    var integerValue: UInt {
        switch self {
        case .none: 0
        case .value(let v): v
        case .pointer(let address, _): address
        }
    }
}

/// Builds little-endian structs (capability chains) before one copy-out.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []
    var count: Int { bytes.count }

    mutating func u16(_ v: UInt16) { append(UInt64(v), 2) }
    mutating func u32(_ v: UInt32) { append(UInt64(v), 4) }
    mutating func u64(_ v: UInt64) { append(v, 8) }

    private mutating func append(_ v: UInt64, _ n: Int) {
        for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    mutating func patch(u32 v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
}

/// Checks that `count` bytes at `address` are writable caller memory, as the kernel's page
/// pinning would, without changing them.
func requireWritable(_ memory: UserMemory, at address: UInt, count: Int) throws(Errno) {
    var offset = 0
    while offset < count {
        let n = min(count - offset, 1 << 20)
        let bytes = try memory.copyIn(from: address &+ UInt(offset), count: n)
        try memory.copyOut(bytes, to: address &+ UInt(offset))
        offset += n
    }
}

/// ORs bit `bit` into a little-endian u64 bitmap at `base` (bitmaps are only ever set).
func setBitmapBit(_ memory: UserMemory, base: UInt, bit: UInt64) throws(Errno) {
    let wordAddress = base &+ UInt(bit / 64) * 8
    let word = try memory.load(UInt64.self, at: wordAddress)
    try memory.store(word | 1 << (bit % 64), at: wordAddress)
}


/// ORs bits `[first, first + count)` into a little-endian u64 bitmap at `base`, a word at a time.
func setBitmapRun(_ memory: UserMemory, base: UInt, first: UInt64, count: UInt64) throws(Errno) {
    var bit = first
    let end = first + count
    while bit < end {
        let inWord = bit % 64
        let n = min(64 - inWord, end - bit)
        let mask: UInt64 = (n == 64 ? ~0 : ((1 << n) - 1)) << inWord
        let wordAddress = base &+ UInt(bit / 64) * 8
        let word = try memory.load(UInt64.self, at: wordAddress)
        try memory.store(word | mask, at: wordAddress)
        bit += n
    }
}
