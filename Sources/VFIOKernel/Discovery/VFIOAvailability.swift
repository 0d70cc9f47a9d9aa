// Whether this machine can open VFIO devices at all, and if not, the likely reason.

/// The answer to "can VFIO be used here?", with a one-line message for people.
public struct VFIOAvailability: Sendable, Equatable, Codable {
    public enum Problem: String, Sendable, Equatable, Codable {
        /// Neither the vfio module nor its device nodes are present.
        case moduleNotLoaded
        /// The module is loaded but the device nodes are not visible (e.g. inside a container).
        case deviceNodeMissing
        /// No sysfs to ask, and no device nodes.
        case sysfsMissing
    }

    public var available: Bool
    /// `<dev>/vfio/vfio` when it exists (legacy container/group path).
    public var containerPath: String?
    /// `<dev>/vfio/devices` when it exists (per-device cdev path, kernels ≥ 6.6).
    public var cdevDirectory: String?
    /// `<dev>/iommu` when it exists (iommufd).
    public var iommufdPath: String?
    public var moduleLoaded: Bool
    /// Number of IOMMU groups in sysfs; 0 usually means the IOMMU is off. nil without sysfs.
    public var iommuGroupCount: Int?
    public var problem: Problem?
    public var message: String

    public init(
        available: Bool, containerPath: String? = nil, cdevDirectory: String? = nil, iommufdPath: String? = nil,
        moduleLoaded: Bool, iommuGroupCount: Int? = nil, problem: Problem? = nil, message: String
    ) {
        self.available = available
        self.containerPath = containerPath
        self.cdevDirectory = cdevDirectory
        self.iommufdPath = iommufdPath
        self.moduleLoaded = moduleLoaded
        self.iommuGroupCount = iommuGroupCount
        self.problem = problem
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case available, containerPath, cdevDirectory, iommufdPath, moduleLoaded, iommuGroupCount, problem, message
    }
}

extension SysfsDiscovery {
    /// Looks for the VFIO device nodes under `devRoot` and the module and IOMMU groups in sysfs.
    /// Never throws: every outcome is an answer.
    public func vfioAvailability(devRoot: String = "/dev") -> VFIOAvailability {
        let container = devRoot + "/vfio/vfio"
        let cdevs = devRoot + "/vfio/devices"
        let iommufd = devRoot + "/iommu"
        let hasContainer = reader.exists(container)
        let hasCdevs = reader.isDirectory(cdevs)
        let hasIommufd = reader.exists(iommufd)
        let sysfsPresent = reader.isDirectory(root)
        let moduleLoaded = reader.isDirectory(root + "/module/vfio")
        let groupCount = sysfsPresent ? ((try? reader.list(root + "/kernel/iommu_groups"))??.count ?? 0) : nil

        // Kernels built without the legacy container still work through cdev + iommufd.
        let available = hasContainer || (hasCdevs && hasIommufd)
        let problem: VFIOAvailability.Problem?
        var message: String
        if available {
            problem = nil
            message = hasContainer
                ? "VFIO is available (\(container))"
                : "VFIO is available through device files in \(cdevs) and \(iommufd) (no legacy container)"
            if groupCount == 0 {
                message += "; no IOMMU groups exist, so the IOMMU may be off (intel_iommu=on / amd_iommu=on)"
            }
        } else if !sysfsPresent {
            problem = .sysfsMissing
            message = "VFIO is not available on this machine: \(container) does not exist and there is no sysfs at \(root) to say why"
        } else if !moduleLoaded {
            problem = .moduleNotLoaded
            message = "VFIO is not available on this machine: the vfio kernel module is not loaded (modprobe vfio-pci)"
        } else {
            problem = .deviceNodeMissing
            message = "VFIO is not available on this machine: the vfio module is loaded but \(container) does not exist (is the host's /dev visible here?)"
        }
        return VFIOAvailability(
            available: available,
            containerPath: hasContainer ? container : nil,
            cdevDirectory: hasCdevs ? cdevs : nil,
            iommufdPath: hasIommufd ? iommufd : nil,
            moduleLoaded: moduleLoaded,
            iommuGroupCount: groupCount,
            problem: problem,
            message: message
        )
    }
}
