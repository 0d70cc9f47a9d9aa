// Every real descriptor the emulator opens and every helper thread it starts goes through a
// ledger, so a test can check that nothing leaked even while other tests run in parallel
// (process-wide /proc/self/fd counts are only exact when nothing else runs).
import Synchronization
import SystemPackage
import VFIOSyscalls

final class DescriptorLedger: Sendable {
    private let descriptors = Atomic<Int>(0)
    private let threads = Atomic<Int>(0)

    var openDescriptors: Int { descriptors.load(ordering: .sequentiallyConsistent) }
    var liveThreads: Int { threads.load(ordering: .sequentiallyConsistent) }

    func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        let fd = try LinuxKernel.shared.open(path, flags)
        descriptors.add(1, ordering: .sequentiallyConsistent)
        return fd
    }

    func reserve() throws(Errno) -> CInt {
        let fd = try LinuxKernel.shared.reserveDescriptor()
        descriptors.add(1, ordering: .sequentiallyConsistent)
        return fd
    }

    func pipe() throws(Errno) -> (read: CInt, write: CInt) {
        let ends = try LinuxKernel.shared.makePipe()
        descriptors.add(2, ordering: .sequentiallyConsistent)
        return ends
    }

    /// Closes a descriptor the emulator opened. On Linux the number is gone even on error.
    func close(_ fd: CInt) throws(Errno) {
        descriptors.subtract(1, ordering: .sequentiallyConsistent)
        try LinuxKernel.shared.close(fd)
    }

    func threadStarted() { threads.add(1, ordering: .sequentiallyConsistent) }
    func threadFinished() { threads.subtract(1, ordering: .sequentiallyConsistent) }
}
