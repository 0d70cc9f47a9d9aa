// Whether a device can live-migrate, and if not why, in the terms QEMU's migration blockers
// use: what an operator checks before declaring a device live-migratable.
import VFIOCore
import VFIOStream

/// One reason a device cannot live-migrate.
public struct MigrationBlocker: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Bound to a host driver, or to none: VFIO cannot open it.
        case notBoundToVFIO = "not-bound-to-vfio"
        /// VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY: the driver has no migration support.
        case noMigrationFeature = "no-migration-feature"
        /// Migration flags without STOP_COPY: the device state cannot be read out.
        case noStopCopy = "no-stop-copy"
        /// The device can DMA and nothing tracks the pages it dirties precisely.
        case noDirtyTracking = "no-dirty-tracking"
        /// It must stop together with other devices and cannot quiesce peer-to-peer DMA first.
        case noP2P = "no-p2p"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

public struct MigrationVerdict: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case migratable
        case notMigratable = "not-migratable"
        /// The device could not be asked (VFIO missing, the group busy, no permission).
        case unknown
    }

    public var status: Status
    public var blockers: [MigrationBlocker]
    /// Why the device could not be asked, when `status` is unknown.
    public var reason: String?
    /// The next step for an operator, when there is an obvious one.
    public var hint: String?

    public init(status: Status, blockers: [MigrationBlocker] = [], reason: String? = nil, hint: String? = nil) {
        self.status = status
        self.blockers = blockers
        self.reason = reason
        self.hint = hint
    }

    /// What a guest with a network device that cannot migrate does instead.
    public static let networkFailoverHint =
        "this is a network device: migrate the guest with virtio-net failover instead (a standby virtio-net "
        + "device with the same MAC in the guest; unplug this device before the migration and plug an equivalent "
        + "one on the target after it)"

    /// Judges a device from what it said. `bound` is false for a device on a host driver
    /// (`driver` names it); `peers` are the devices that must stop together with it (its
    /// IOMMU group, or the set being migrated together); `classCode` is its PCI class.
    public static func judge(
        capabilities: MigrationCapabilities?, bound: Bool, driver: String?, mediated: Bool,
        classCode: UInt32?, peers: [String] = []
    ) -> MigrationVerdict {
        let network = !mediated && classCode.map { $0 >> 16 == 0x02 } == true
        var verdict = MigrationVerdict(status: .notMigratable)
        guard bound else {
            let what = driver.map { "it is bound to \($0), not to a VFIO driver" } ?? "it is bound to no driver"
            verdict.blockers = [MigrationBlocker(.notBoundToVFIO, "not bound to a VFIO driver: \(what)")]
            verdict.hint = network ? networkFailoverHint : "bind it to vfio-pci or its VFIO variant driver to ask it"
            return verdict
        }
        guard let capabilities else { return .unknown("the device was not asked") }
        verdict.blockers = blockers(capabilities, mediated: mediated, peers: peers)
        verdict.status = verdict.blockers.isEmpty ? .migratable : .notMigratable
        if verdict.status == .notMigratable && network { verdict.hint = networkFailoverHint }
        return verdict
    }

    /// A device that could not be asked.
    public static func unknown(_ reason: String, hint: String? = nil) -> MigrationVerdict {
        MigrationVerdict(status: .unknown, reason: reason, hint: hint)
    }

    static func blockers(_ c: MigrationCapabilities, mediated: Bool, peers: [String]) -> [MigrationBlocker] {
        guard let flags = c.flags else {
            return [MigrationBlocker(
                .noMigrationFeature,
                "VFIO device doesn't support migration: VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY (its driver has no migration v2 support)")]
        }
        var found: [MigrationBlocker] = []
        if !flags.contains(.stopCopy) {
            found.append(MigrationBlocker(
                .noStopCopy, "VFIO device doesn't support migration: its migration flags \(flags) lack STOP_COPY"))
        }
        if !c.hasPreciseDirtyTracking {
            let type1: String
            switch (c.type1, mediated) {
            case (nil, _): type1 = "the container's IOMMU has no dirty page tracking"
            case (.some, false): type1 = "type1 IOMMU tracking would report every mapped page dirty (it is precise only for mdev groups)"
            case (.some, true): type1 = "type1 IOMMU tracking is not precise here"
            }
            found.append(MigrationBlocker(
                .noDirtyTracking, "VFIO device doesn't support device and IOMMU dirty tracking: no device DMA logging, and \(type1)"))
        }
        if !peers.isEmpty && !flags.contains(.p2p) {
            found.append(MigrationBlocker(
                .noP2P, "multiple VFIO devices migrate only if all of them support P2P migration: it must stop together "
                    + "with \(peers.joined(separator: ", ")) but cannot quiesce peer-to-peer DMA first"))
        }
        return found
    }
}
