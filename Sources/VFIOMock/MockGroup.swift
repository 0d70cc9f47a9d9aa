// An emulated IOMMU group (/dev/vfio/N). Guarded by the kernel lock.

final class MockGroup {
    let number: Int
    /// Emulated-IOMMU (mdev-like) groups cannot DMA on their own; they keep type1 dirty
    /// tracking precise.
    let emulated: Bool
    var devices: [MockDevice] = []
    var container: MockContainer?
    /// The group fd is open (only one open at a time).
    var fdOpen = false
    /// Open device fds obtained through this group; they keep the group file alive.
    var deviceFDs = 0

    init(number: Int, emulated: Bool) {
        self.number = number
        self.emulated = emulated
    }

    /// The group file is in use: opened, or held by device fds.
    var isHeld: Bool { fdOpen || deviceFDs > 0 }

    /// A group whose devices all disappeared has no IOMMU group left behind it.
    var isGone: Bool { devices.allSatisfy(\.isGoneLocked) }

    /// Releases the group file (fd closed and no device fds): leaves the container, and the
    /// container drops its IOMMU backend when its last group leaves.
    func releaseIfUnused() {
        guard !isHeld, let container else { return }
        detach(from: container)
    }

    func detach(from container: MockContainer) {
        container.groups.removeAll { $0 === self }
        if container.groups.isEmpty { container.iommu = nil }
        self.container = nil
    }
}
