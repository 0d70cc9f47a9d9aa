// read/write between a descriptor and an array the calling module owns, for code that may not
// hold raw pointers (the kernel emulator's pipe feeders, tests). The address never leaves
// this file: it is built, used for one call, and dropped while the array is pinned.
import SystemPackage

extension KernelInterface {
    /// read(2) into bytes `byteRange` of `array`'s storage; returns the bytes read.
    package func readBytes<Element: BitwiseCopyable>(
        _ fd: CInt, into array: inout [Element], byteRange: Range<Int>
    ) throws(Errno) -> Int {
        let result: Result<Int, Errno> = array.withUnsafeMutableBytes { raw in
            precondition(byteRange.lowerBound >= 0 && byteRange.upperBound <= raw.count, "readBytes range outside the array")
            // SAFETY: the range lies inside the array's storage, which stays pinned for this closure.
            let base = UInt(bitPattern: raw.baseAddress)
            let region = UserRegion(address: base + UInt(byteRange.lowerBound), count: byteRange.count, writable: true)
            return Result { () throws(Errno) -> Int in try read(fd, into: region) }
        }
        return try result.get()
    }

    /// write(2) from bytes `byteRange` of `array`'s storage; returns the bytes written.
    package func writeBytes<Element: BitwiseCopyable>(
        _ fd: CInt, from array: [Element], byteRange: Range<Int>
    ) throws(Errno) -> Int {
        let result: Result<Int, Errno> = array.withUnsafeBytes { raw in
            precondition(byteRange.lowerBound >= 0 && byteRange.upperBound <= raw.count, "writeBytes range outside the array")
            // SAFETY: the range lies inside the array's storage, which stays pinned for this closure.
            let base = UInt(bitPattern: raw.baseAddress)
            let region = UserRegion(address: base + UInt(byteRange.lowerBound), count: byteRange.count, writable: false)
            return Result { () throws(Errno) -> Int in try write(fd, from: region) }
        }
        return try result.get()
    }
}
