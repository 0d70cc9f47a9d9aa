import CVFIO
import Testing

/// One constant from cvfio_uapi.h next to the value the kernel ABI fixes for it,
/// written here independently of the header.
struct Pin: Sendable, CustomTestStringConvertible {
    let name: String
    let actual: Int64
    let expected: Int64
    init<T: BinaryInteger>(_ name: String, _ actual: T, _ expected: Int64) {
        self.name = name
        self.actual = Int64(actual)
        self.expected = expected
    }
    var testDescription: String { name }
}

/// Every ioctl request number with its index n in _IO(';', 100 + n).
let ioctlNumbers: [(pin: Pin, n: Int64)] = [
    (Pin("GET_API_VERSION", CVFIO_GET_API_VERSION, 0x3B64), 0),
    (Pin("CHECK_EXTENSION", CVFIO_CHECK_EXTENSION, 0x3B65), 1),
    (Pin("SET_IOMMU", CVFIO_SET_IOMMU, 0x3B66), 2),
    (Pin("GROUP_GET_STATUS", CVFIO_GROUP_GET_STATUS, 0x3B67), 3),
    (Pin("GROUP_SET_CONTAINER", CVFIO_GROUP_SET_CONTAINER, 0x3B68), 4),
    (Pin("GROUP_UNSET_CONTAINER", CVFIO_GROUP_UNSET_CONTAINER, 0x3B69), 5),
    (Pin("GROUP_GET_DEVICE_FD", CVFIO_GROUP_GET_DEVICE_FD, 0x3B6A), 6),
    (Pin("DEVICE_GET_INFO", CVFIO_DEVICE_GET_INFO, 0x3B6B), 7),
    (Pin("DEVICE_GET_REGION_INFO", CVFIO_DEVICE_GET_REGION_INFO, 0x3B6C), 8),
    (Pin("DEVICE_GET_IRQ_INFO", CVFIO_DEVICE_GET_IRQ_INFO, 0x3B6D), 9),
    (Pin("DEVICE_SET_IRQS", CVFIO_DEVICE_SET_IRQS, 0x3B6E), 10),
    (Pin("DEVICE_RESET", CVFIO_DEVICE_RESET, 0x3B6F), 11),
    (Pin("IOMMU_GET_INFO", CVFIO_IOMMU_GET_INFO, 0x3B70), 12),
    (Pin("DEVICE_GET_PCI_HOT_RESET_INFO", CVFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 0x3B70), 12),
    (Pin("IOMMU_MAP_DMA", CVFIO_IOMMU_MAP_DMA, 0x3B71), 13),
    (Pin("DEVICE_PCI_HOT_RESET", CVFIO_DEVICE_PCI_HOT_RESET, 0x3B71), 13),
    (Pin("IOMMU_UNMAP_DMA", CVFIO_IOMMU_UNMAP_DMA, 0x3B72), 14),
    (Pin("DEVICE_QUERY_GFX_PLANE", CVFIO_DEVICE_QUERY_GFX_PLANE, 0x3B72), 14),
    (Pin("IOMMU_ENABLE", CVFIO_IOMMU_ENABLE, 0x3B73), 15),
    (Pin("DEVICE_GET_GFX_DMABUF", CVFIO_DEVICE_GET_GFX_DMABUF, 0x3B73), 15),
    (Pin("IOMMU_DISABLE", CVFIO_IOMMU_DISABLE, 0x3B74), 16),
    (Pin("DEVICE_IOEVENTFD", CVFIO_DEVICE_IOEVENTFD, 0x3B74), 16),
    (Pin("IOMMU_DIRTY_PAGES", CVFIO_IOMMU_DIRTY_PAGES, 0x3B75), 17),
    (Pin("DEVICE_FEATURE", CVFIO_DEVICE_FEATURE, 0x3B75), 17),
    (Pin("DEVICE_BIND_IOMMUFD", CVFIO_DEVICE_BIND_IOMMUFD, 0x3B76), 18),
    (Pin("DEVICE_ATTACH_IOMMUFD_PT", CVFIO_DEVICE_ATTACH_IOMMUFD_PT, 0x3B77), 19),
    (Pin("DEVICE_DETACH_IOMMUFD_PT", CVFIO_DEVICE_DETACH_IOMMUFD_PT, 0x3B78), 20),
    (Pin("MIG_GET_PRECOPY_INFO", CVFIO_MIG_GET_PRECOPY_INFO, 0x3B79), 21),
]

@Suite("VFIO ioctl request numbers")
struct IoctlNumberTests {
    @Test("each request number equals its literal value", arguments: ioctlNumbers.map(\.pin))
    func literal(_ pin: Pin) {
        #expect(pin.actual == pin.expected)
    }

    @Test("each request number is _IO(';', 100 + n): type byte 0x3B, no size or direction bits")
    func derivation() {
        #expect(CVFIO_TYPE == 0x3B)
        #expect(CVFIO_BASE == 100)
        for (pin, n) in ioctlNumbers {
            let derived = (Int64(CVFIO_TYPE) << 8) | (Int64(CVFIO_BASE) + n)
            #expect(pin.actual == derived, "\(pin.name)")
            #expect(pin.actual >> 16 == 0, "\(pin.name) carries no size/direction bits")
        }
    }

    @Test("numbers shared between fd kinds collide exactly as the kernel defines")
    func collisions() {
        #expect(CVFIO_IOMMU_DIRTY_PAGES == CVFIO_DEVICE_FEATURE)
        #expect(CVFIO_DEVICE_FEATURE == 0x3B75)
        #expect(CVFIO_IOMMU_GET_INFO == CVFIO_DEVICE_GET_PCI_HOT_RESET_INFO)
        #expect(CVFIO_IOMMU_MAP_DMA == CVFIO_DEVICE_PCI_HOT_RESET)
        #expect(CVFIO_IOMMU_UNMAP_DMA == CVFIO_DEVICE_QUERY_GFX_PLANE)
        #expect(CVFIO_IOMMU_GET_INFO == 0x3B70)
        #expect(CVFIO_IOMMU_MAP_DMA == 0x3B71)
        #expect(CVFIO_IOMMU_UNMAP_DMA == 0x3B72)
        #expect(CVFIO_MIG_GET_PRECOPY_INFO == 0x3B79)
    }

    @Test("the request numbers cover 0x3B64...0x3B79 without gaps")
    func coverage() {
        let values = Set(ioctlNumbers.map(\.pin.actual))
        #expect(values == Set(Int64(0x3B64)...Int64(0x3B79)))
        #expect(ioctlNumbers.count == 28)
    }

    @Test("API version and extension ids")
    func extensions() {
        #expect(CVFIO_API_VERSION == 0)
        let pins = [
            Pin("TYPE1_IOMMU", CVFIO_TYPE1_IOMMU, 1),
            Pin("SPAPR_TCE_IOMMU", CVFIO_SPAPR_TCE_IOMMU, 2),
            Pin("TYPE1v2_IOMMU", CVFIO_TYPE1v2_IOMMU, 3),
            Pin("DMA_CC_IOMMU", CVFIO_DMA_CC_IOMMU, 4),
            Pin("EEH", CVFIO_EEH, 5),
            Pin("TYPE1_NESTING_IOMMU", CVFIO_TYPE1_NESTING_IOMMU, 6),
            Pin("SPAPR_TCE_v2_IOMMU", CVFIO_SPAPR_TCE_v2_IOMMU, 7),
            Pin("NOIOMMU_IOMMU", CVFIO_NOIOMMU_IOMMU, 8),
            Pin("UNMAP_ALL", CVFIO_UNMAP_ALL, 9),
            Pin("UPDATE_VADDR", CVFIO_UPDATE_VADDR, 10),
        ]
        for pin in pins { #expect(pin.actual == pin.expected, "\(pin.name)") }
    }
}
