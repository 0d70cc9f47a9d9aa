// Shared set-up for the syscall-trace tests: the request numbers written out as literals
// from the uAPI fact sheet (so a wrong CVFIO constant cannot make a test agree with itself),
// and short ways to get typed fds from a RecordingKernel.
import SystemPackage
import Testing
import VFIOSyscalls

/// VFIO request numbers, _IO(';', 100 + n) = 0x3B64 + n.
enum Req {
    static let getAPIVersion: UInt = 0x3B64
    static let checkExtension: UInt = 0x3B65
    static let setIOMMU: UInt = 0x3B66
    static let groupGetStatus: UInt = 0x3B67
    static let groupSetContainer: UInt = 0x3B68
    static let groupUnsetContainer: UInt = 0x3B69
    static let groupGetDeviceFD: UInt = 0x3B6A
    static let deviceGetInfo: UInt = 0x3B6B
    static let deviceGetRegionInfo: UInt = 0x3B6C
    static let deviceGetIRQInfo: UInt = 0x3B6D
    static let deviceReset: UInt = 0x3B6F
    static let iommuGetInfo: UInt = 0x3B70
    static let iommuMapDMA: UInt = 0x3B71
    static let iommuUnmapDMA: UInt = 0x3B72
    static let iommuDirtyPages: UInt = 0x3B75 // on a container
    static let deviceFeature: UInt = 0x3B75 // on a device
    static let migGetPrecopyInfo: UInt = 0x3B79 // on a data fd
}

let deviceName = "0000:06:0d.0"
let groupPath = "/dev/vfio/12"

/// Opens group 12 and device 0000:06:0d.0 through the wrappers; the group fd is closed
/// again when this returns (the emulated kernel does not care).
func openTestDevice(_ kernel: RecordingKernel, name: String = deviceName) throws -> DeviceFD {
    let group = try GroupFD.open(groupPath, kernel: kernel)
    return try group.openDevice(name)
}

/// Opens a device and moves it to a state whose SET returns a data fd.
func openTestDataFD(_ kernel: RecordingKernel, state: UInt32 = 3) throws -> MigrationDataFD {
    let device = try openTestDevice(kernel)
    kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
        try inv.setField(Int32(inv.newDescriptor(.data, name: "data")), at: 12)
        return 0
    })
    guard let data = try device.setMigrationState(state) else { throw FixtureError.noDataFD }
    return data
}

enum FixtureError: Error { case noDataFD }

extension RecordingKernel {
    /// The last ioctl attempt with `request`.
    func lastIoctl(_ request: UInt) -> RecordedCall? {
        ioctls.last { $0.request == request }
    }
}
