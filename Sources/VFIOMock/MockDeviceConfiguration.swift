// What a mock device is: identity, migration capabilities, state size and behaviour knobs,
// and the faults it starts with. Built in code or parsed from a `mock:NAME?options` spec
// (docs/mock.md lists every option).
import SystemPackage

public struct MockDeviceConfiguration: Sendable, Equatable {
    /// How many state blocks a PRE_COPY read dirties per amount of data read.
    public struct DirtyRate: Sendable, Equatable {
        public var blocks: Int
        public var perBytes: UInt64
        public init(blocks: Int, perBytes: UInt64) {
            precondition(blocks >= 0 && (blocks == 0 || perBytes > 0), "dirty rate needs a positive byte interval")
            self.blocks = blocks
            self.perBytes = perBytes
        }
        public static let none = DirtyRate(blocks: 0, perBytes: 0)
    }

    /// What a PRE_COPY read returns when nothing is pending: ENOMSG (mlx5) or 0 (mtty).
    public enum PrecopyEnd: String, Sendable { case noMessage = "enomsg", zero }
    /// Where a refused load leaves the device: still RESUMING, or ERROR.
    public enum ResumeFailure: String, Sendable { case stay, error }
    /// How the state's bytes are produced: generated word by word and streamed through a pipe
    /// by a producer thread (the default), or sliced from a pool and copied straight into the
    /// caller's buffer (`fast`: memory speed, for benchmarks).
    public enum StateSource: String, Sendable { case generated, fast }

    /// The mock name (`vf0` in `mock:vf0`).
    public var name: String
    public var stateSize: UInt64 = 4 << 20
    /// Raw VFIO_MIGRATION_* bits: 0 (no migration), 0x1, 0x3, 0x5 or 0x7.
    public var migrationFlags: UInt32 = MigrationFlag.stopCopy | MigrationFlag.p2p | MigrationFlag.preCopy
    public var seed: UInt64
    /// Vendor compatibility id written into the stream; devices with different ids refuse each other.
    public var compat: String = "mock-1"
    public var driver: String?
    public var driverVersion: String = "1.0"
    public var vendorID: UInt16 = 0x1B36
    public var deviceID: UInt16 = 0x00F0
    public var subsystemVendorID: UInt16 = 0x1B36
    public var subsystemID: UInt16 = 0x0001
    /// PCI revision (config space 0x08) and 24-bit class code (0x09-0x0B).
    public var revision: UInt8 = 0x01
    public var classCode: UInt32 = 0x02_0000
    /// Set: an mdev-like device in its own emulated-IOMMU group, named by a UUID.
    public var mdevType: String?
    public var uuid: String?
    /// PCI address used as the kernel name of a non-mdev device.
    public var pciAddress: String?
    /// IOMMU group number (non-mdev devices may share one).
    public var group: Int?
    public var blockSize: Int = 64 << 10
    public var dirtyRate = DirtyRate(blocks: 1, perBytes: 1 << 20)
    public var precopyEnd: PrecopyEnd = .noMessage
    /// Whether MIG_DATA_SIZE (a 6.2 feature) is offered.
    public var reportsDataSize = true
    public var dmaLogging = true
    public var resumeFailure: ResumeFailure = .stay
    public var stateSource: StateSource = .generated
    /// Offer VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (REINIT reporting; needs PRE_COPY).
    public var offersPrecopyInfoV2 = true
    /// The device REINITs once per save session, when this many bytes were read in PRE_COPY.
    public var reinitAfterBytes: UInt64?
    /// A replay source: the captured device stream it serves (see MockCapture).
    public var replay: MockCapture?
    /// The DMA the device performs into guest memory as the kernel's clock advances.
    public var dmaWorkload: MockDMAWorkload?
    public var bar0Size: Int = 16 << 10
    public var faults = MockFaults()

    public init(name: String) {
        precondition(MockSpec.isValidName(name), "invalid mock device name '\(name)'")
        self.name = name
        self.seed = fnv1a(name)
    }

    /// Parses `mock:NAME` or `mock:NAME?key=value&...`.
    public init(spec: String) throws(MockSpecError) {
        self = try MockSpec.parse(spec)
    }

    public var isMediated: Bool { mdevType != nil }
    public var supportsMigration: Bool { migrationFlags & MigrationFlag.stopCopy != 0 }
    /// The driver name reported for the device.
    public var driverName: String { driver ?? (isMediated ? "mock-mdev" : "mock-vfio-pci") }

    /// The spec that parses back to this configuration (non-default options only).
    public var spec: String { MockSpec.format(self) }
}

/// A spec string that does not parse, with the reason.
public struct MockSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    public let spec: String
    public let message: String
    public var description: String { "mock device spec '\(spec)': \(message)" }
}
