// Which tracker a migration uses, chosen as QEMU chooses: device DMA logging when every
// device offers it (and it works: START and one REPORT), else type1 container tracking when
// every container has the MIGRATION capability, else nothing. A device that can DMA with no
// tracker would lose its writes, so that case is refused unless the embedder says every page
// may be treated as dirty (AllDirtyTracker: converges only with an idle guest).
import VFIOCore
import VFIOSyscalls

public enum DirtyTrackerChoice {
    /// The tracker for `devices` writing into `memory` (mapped into their containers), with
    /// the reason in its report. `extraRanges` are logged by DMA logging besides the memory
    /// (the 64-bit PCI hole).
    public static func choose(
        for devices: [VFIODevice], memory: GuestMemory, allowAllDirty: Bool = false, extraRanges: [DMARange] = []
    ) throws(VFIOError) -> any DirtyPageTracker {
        guard !devices.isEmpty else { return AllDirtyTracker(reason: "no device: only the VMM's own log knows what changed") }
        var notes: [String] = []
        let lacking = devices.filter { !((try? $0.supports(.dmaLoggingStart, for: .set)) ?? false) }
        if lacking.isEmpty {
            let tracker = try DMALoggingTracker(
                devices: devices, memory: memory, extraRanges: extraRanges,
                reason: "device DMA logging: every device (\(devices.map(\.name).joined(separator: ", "))) offers it")
            do throws(VFIOError) {
                try tracker.start()
                defer { try? tracker.stop() }
                try tracker.probeReport()
                return tracker
            } catch where error.code == .notSupported {
                notes.append(error.message)
            }
        } else {
            notes.append("no DMA logging on \(lacking.map(\.name).joined(separator: ", "))")
        }
        let containers = devices.map(\.container)
        let capable = containers.allSatisfy { ((try? $0.iommuInfo())?.migration) != nil }
        if capable {
            let precise = devices.allSatisfy { $0.identity.mdev != nil }
            return try Type1DirtyTracker(
                containers: containers, memory: memory, precise: precise,
                reason: "type1 container tracking: " + notes.joined(separator: "; "))
        }
        notes.append("the container's IOMMU has no MIGRATION capability")
        guard allowAllDirty else {
            throw VFIOError(
                .notSupported,
                "refused to migrate guest memory: no dirty page tracker for \(devices.map(\.name).joined(separator: ", ")) (\(notes.joined(separator: "; "))), so pages the devices write would be lost",
                hint: "treat every page as dirty at every round (allowAllDirty, --all-pages-dirty), which converges only with an idle guest")
        }
        return AllDirtyTracker(reason: "every page treated as dirty, as asked: " + notes.joined(separator: "; "))
    }
}
