import CVFIO
import CVFIOSystemHeaderCheck
import Testing

/// A row of the comparison table built in Tests/CVFIOSystemHeaderCheck/check.c,
/// which compiles cvfio_uapi.h next to the system <linux/vfio.h> (Debian 6.1).
private struct Row: Equatable {
    let name: String
    let ours: Int64
    let system: Int64
    init(_ row: cvfiocheck_row) {
        name = String(cString: row.name)
        ours = row.ours
        system = row.system
    }
}

private let agreeing = (0..<cvfiocheck_agreeing_count()).map { Row(cvfiocheck_agreeing_row($0)) }
private let differing = (0..<cvfiocheck_differing_count()).map { Row(cvfiocheck_differing_row($0)) }

@Suite("cvfio_uapi.h agrees with the system <linux/vfio.h> wherever both define a fact")
struct SystemHeaderAgreementTests {
    @Test("every shared constant, struct size, field offset and field width is equal")
    func everyRowAgrees() {
        for row in agreeing {
            #expect(row.ours == row.system, "\(row.name): ours \(row.ours), system \(row.system)")
        }
    }

    /// 116 constants + 25 struct sizes + 85 fields (offset and width) + 6 flexible
    /// array offsets. A change here means agreement_rows.h gained or lost a fact.
    @Test("the table holds every fact agreement_rows.h lists, once")
    func rowCount() {
        #expect(agreeing.count == 116 + 25 + 85 * 2 + 6)
        #expect(Set(agreeing.map(\.name)).count == agreeing.count)
        #expect(agreeing.filter { $0.name.hasPrefix("VFIO_") }.count == 116)
        #expect(agreeing.filter { $0.name.hasPrefix("sizeof vfio_") && !$0.name.contains(".") }.count == 25)
    }

    @Test("the table reads real values, not zeros")
    func rowsCarryValues() throws {
        let byName = Dictionary(uniqueKeysWithValues: agreeing.map { ($0.name, $0) })
        let feature = try #require(byName["VFIO_DEVICE_FEATURE"])
        #expect(feature.ours == 0x3B75 && feature.system == 0x3B75)
        let dirty = try #require(byName["VFIO_IOMMU_DIRTY_PAGES"])
        #expect(dirty.system == 0x3B75)
        let regionInfo = try #require(byName["sizeof vfio_region_info"])
        #expect(regionInfo.system == 32)
        let bitmapData = try #require(byName["offsetof vfio_iommu_type1_dirty_bitmap_get.bitmap.data"])
        #expect(bitmapData.system == 32)
        let dataFdWidth = try #require(byName["sizeof vfio_device_feature_mig_state.data_fd"])
        #expect(dataFdWidth.system == 4)
        #expect(agreeing.filter { $0.ours == 0 && $0.system == 0 }.count < agreeing.count / 4)
    }

    /// The 6.1 header's vfio_device_info ends after cap_offset (20 bytes); upstream
    /// (~6.6) appended `pad` (24). The kernel accepts argsz >= 16, so ours is safe on
    /// both. Every other shared struct has the same size in both headers.
    @Test("the only shared fact that differs is vfio_device_info's size (24 ours, 20 in 6.1)")
    func knownDifferences() {
        #expect(differing.count == 1)
        #expect(differing.first?.name == "sizeof vfio_device_info")
        #expect(differing.first?.ours == 24)
        #expect(differing.first?.system == 20)
        #expect(MemoryLayout<cvfio_device_info>.size == 24)
    }

    /// Definitions the 6.1 header lacks, so they can only be checked against literals
    /// (IoctlNumberTests, ABILayoutTests). If the system header is ever upgraded, move
    /// them into agreement_rows.h.
    @Test("facts newer than 6.1 are ours only and absent from the comparison")
    func oursOnly() {
        let newerThan61: [Pin] = [
            Pin("VFIO_MIG_GET_PRECOPY_INFO", CVFIO_MIG_GET_PRECOPY_INFO, 0x3B79),
            Pin("VFIO_DEVICE_BIND_IOMMUFD", CVFIO_DEVICE_BIND_IOMMUFD, 0x3B76),
            Pin("VFIO_DEVICE_ATTACH_IOMMUFD_PT", CVFIO_DEVICE_ATTACH_IOMMUFD_PT, 0x3B77),
            Pin("VFIO_DEVICE_DETACH_IOMMUFD_PT", CVFIO_DEVICE_DETACH_IOMMUFD_PT, 0x3B78),
            Pin("VFIO_MIGRATION_PRE_COPY", CVFIO_MIGRATION_PRE_COPY, 4),
            Pin("VFIO_DEVICE_STATE_PRE_COPY", CVFIO_DEVICE_STATE_PRE_COPY, 6),
            Pin("VFIO_DEVICE_STATE_PRE_COPY_P2P", CVFIO_DEVICE_STATE_PRE_COPY_P2P, 7),
            Pin("VFIO_DEVICE_STATE_NR", CVFIO_DEVICE_STATE_NR, 8),
            Pin("VFIO_DEVICE_FEATURE_MIG_DATA_SIZE", CVFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 9),
            Pin("VFIO_DEVICE_FEATURE_BUS_MASTER", CVFIO_DEVICE_FEATURE_BUS_MASTER, 10),
            Pin("VFIO_DEVICE_FEATURE_DMA_BUF", CVFIO_DEVICE_FEATURE_DMA_BUF, 11),
            Pin("VFIO_DEVICE_FLAGS_CDX", CVFIO_DEVICE_FLAGS_CDX, 0x100),
            Pin("VFIO_DEVICE_BIND_FLAG_TOKEN", CVFIO_DEVICE_BIND_FLAG_TOKEN, 1),
            Pin("VFIO_DEVICE_ATTACH_PASID", CVFIO_DEVICE_ATTACH_PASID, 1),
            Pin("VFIO_DEVICE_DETACH_PASID", CVFIO_DEVICE_DETACH_PASID, 1),
        ]
        let compared = Set(agreeing.map(\.name) + differing.map(\.name))
        for pin in newerThan61 {
            #expect(pin.actual == pin.expected, "\(pin.name)")
            #expect(!compared.contains(pin.name), "\(pin.name) exists in 6.1 after all")
        }
        for structName in ["precopy_info", "device_feature_mig_data_size", "device_bind_iommufd",
                           "device_attach_iommufd_pt", "device_detach_iommufd_pt",
                           "device_feature_bus_master"] {
            #expect(!compared.contains("sizeof vfio_\(structName)"), "\(structName)")
        }
        #expect(!compared.contains("offsetof vfio_device_info.pad"))
        #expect(!compared.contains("offsetof vfio_iommu_type1_info.pad"))
    }
}
