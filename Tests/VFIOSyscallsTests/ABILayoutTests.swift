import CVFIO
import CVFIOSystemHeaderCheck
import Testing

/// The byte offset of a stored field, as Swift sees the imported C struct.
private func offset<T>(_ field: PartialKeyPath<T>) -> Int? {
    MemoryLayout<T>.offset(of: field)
}

/// Swift does not import flexible array members, so their offsets come from C
/// (`offsetof` on our struct, recorded in the agreement table).
private func flexibleMemberOffset(_ structAndField: String) -> Int64? {
    let name = "offsetof vfio_\(structAndField)"
    for index in 0..<cvfiocheck_agreeing_count() {
        let row = cvfiocheck_agreeing_row(index)
        if String(cString: row.name) == name { return row.ours }
    }
    return nil
}

@Suite("VFIO struct layouts (sizes and offsets from the kernel ABI)")
struct ABILayoutTests {
    @Test func groupStatus() {
        #expect(MemoryLayout<cvfio_group_status>.size == 8)
        #expect(offset(\cvfio_group_status.argsz) == 0)
        #expect(offset(\cvfio_group_status.flags) == 4)
    }

    @Test("device_info is the 24-byte upstream layout with pad")
    func deviceInfo() {
        #expect(MemoryLayout<cvfio_device_info>.size == 24)
        #expect(offset(\cvfio_device_info.argsz) == 0)
        #expect(offset(\cvfio_device_info.flags) == 4)
        #expect(offset(\cvfio_device_info.num_regions) == 8)
        #expect(offset(\cvfio_device_info.num_irqs) == 12)
        #expect(offset(\cvfio_device_info.cap_offset) == 16)
        #expect(offset(\cvfio_device_info.pad) == 20)
    }

    @Test func capHeader() {
        #expect(MemoryLayout<cvfio_info_cap_header>.size == 8)
        #expect(offset(\cvfio_info_cap_header.id) == 0)
        #expect(offset(\cvfio_info_cap_header.version) == 2)
        #expect(offset(\cvfio_info_cap_header.next) == 4)
        #expect(MemoryLayout.size(ofValue: cvfio_info_cap_header().id) == 2)
        #expect(MemoryLayout.size(ofValue: cvfio_info_cap_header().version) == 2)
    }

    @Test func regionInfo() {
        #expect(MemoryLayout<cvfio_region_info>.size == 32)
        #expect(offset(\cvfio_region_info.argsz) == 0)
        #expect(offset(\cvfio_region_info.flags) == 4)
        #expect(offset(\cvfio_region_info.index) == 8)
        #expect(offset(\cvfio_region_info.cap_offset) == 12)
        #expect(offset(\cvfio_region_info.size) == 16)
        #expect(offset(\cvfio_region_info.offset) == 24)
    }

    @Test func regionCapabilities() {
        #expect(MemoryLayout<cvfio_region_sparse_mmap_area>.size == 16)
        #expect(offset(\cvfio_region_sparse_mmap_area.offset) == 0)
        #expect(offset(\cvfio_region_sparse_mmap_area.size) == 8)
        #expect(MemoryLayout<cvfio_region_info_cap_sparse_mmap>.size == 16)
        #expect(offset(\cvfio_region_info_cap_sparse_mmap.header) == 0)
        #expect(offset(\cvfio_region_info_cap_sparse_mmap.nr_areas) == 8)
        #expect(offset(\cvfio_region_info_cap_sparse_mmap.reserved) == 12)
        #expect(flexibleMemberOffset("region_info_cap_sparse_mmap.areas") == 16)
        #expect(MemoryLayout<cvfio_region_info_cap_type>.size == 16)
        #expect(offset(\cvfio_region_info_cap_type.header) == 0)
        #expect(offset(\cvfio_region_info_cap_type.type) == 8)
        #expect(offset(\cvfio_region_info_cap_type.subtype) == 12)
    }

    @Test func irqInfoAndSet() {
        #expect(MemoryLayout<cvfio_irq_info>.size == 16)
        #expect(offset(\cvfio_irq_info.argsz) == 0)
        #expect(offset(\cvfio_irq_info.flags) == 4)
        #expect(offset(\cvfio_irq_info.index) == 8)
        #expect(offset(\cvfio_irq_info.count) == 12)
        #expect(MemoryLayout<cvfio_irq_set>.size == 20)
        #expect(offset(\cvfio_irq_set.argsz) == 0)
        #expect(offset(\cvfio_irq_set.flags) == 4)
        #expect(offset(\cvfio_irq_set.index) == 8)
        #expect(offset(\cvfio_irq_set.start) == 12)
        #expect(offset(\cvfio_irq_set.count) == 16)
        #expect(flexibleMemberOffset("irq_set.data") == 20)
    }

    @Test("type1 info is 24 bytes with an explicit pad")
    func iommuType1Info() {
        #expect(MemoryLayout<cvfio_iommu_type1_info>.size == 24)
        #expect(offset(\cvfio_iommu_type1_info.argsz) == 0)
        #expect(offset(\cvfio_iommu_type1_info.flags) == 4)
        #expect(offset(\cvfio_iommu_type1_info.iova_pgsizes) == 8)
        #expect(offset(\cvfio_iommu_type1_info.cap_offset) == 16)
        #expect(offset(\cvfio_iommu_type1_info.pad) == 20)
    }

    @Test func iommuType1Capabilities() {
        #expect(MemoryLayout<cvfio_iova_range>.size == 16)
        #expect(offset(\cvfio_iova_range.start) == 0)
        #expect(offset(\cvfio_iova_range.end) == 8)

        #expect(MemoryLayout<cvfio_iommu_type1_info_cap_iova_range>.size == 16)
        #expect(offset(\cvfio_iommu_type1_info_cap_iova_range.header) == 0)
        #expect(offset(\cvfio_iommu_type1_info_cap_iova_range.nr_iovas) == 8)
        #expect(offset(\cvfio_iommu_type1_info_cap_iova_range.reserved) == 12)
        #expect(flexibleMemberOffset("iommu_type1_info_cap_iova_range.iova_ranges") == 16)

        #expect(MemoryLayout<cvfio_iommu_type1_info_cap_migration>.size == 32)
        #expect(offset(\cvfio_iommu_type1_info_cap_migration.header) == 0)
        #expect(offset(\cvfio_iommu_type1_info_cap_migration.flags) == 8)
        #expect(offset(\cvfio_iommu_type1_info_cap_migration.pgsize_bitmap) == 16)
        #expect(offset(\cvfio_iommu_type1_info_cap_migration.max_dirty_bitmap_size) == 24)

        #expect(MemoryLayout<cvfio_iommu_type1_info_dma_avail>.size == 12)
        #expect(offset(\cvfio_iommu_type1_info_dma_avail.header) == 0)
        #expect(offset(\cvfio_iommu_type1_info_dma_avail.avail) == 8)
    }

    @Test func dmaMapAndUnmap() {
        #expect(MemoryLayout<cvfio_iommu_type1_dma_map>.size == 32)
        #expect(offset(\cvfio_iommu_type1_dma_map.argsz) == 0)
        #expect(offset(\cvfio_iommu_type1_dma_map.flags) == 4)
        #expect(offset(\cvfio_iommu_type1_dma_map.vaddr) == 8)
        #expect(offset(\cvfio_iommu_type1_dma_map.iova) == 16)
        #expect(offset(\cvfio_iommu_type1_dma_map.size) == 24)

        #expect(MemoryLayout<cvfio_iommu_type1_dma_unmap>.size == 24)
        #expect(offset(\cvfio_iommu_type1_dma_unmap.argsz) == 0)
        #expect(offset(\cvfio_iommu_type1_dma_unmap.flags) == 4)
        #expect(offset(\cvfio_iommu_type1_dma_unmap.iova) == 8)
        #expect(offset(\cvfio_iommu_type1_dma_unmap.size) == 16)
        #expect(flexibleMemberOffset("iommu_type1_dma_unmap.data") == 24)
        // With GET_DIRTY_BITMAP a cvfio_bitmap follows: the kernel wants argsz >= 48.
        #expect(MemoryLayout<cvfio_iommu_type1_dma_unmap>.size + MemoryLayout<cvfio_bitmap>.size == 48)
    }

    @Test func dirtyBitmaps() {
        #expect(MemoryLayout<cvfio_bitmap>.size == 24)
        #expect(offset(\cvfio_bitmap.pgsize) == 0)
        #expect(offset(\cvfio_bitmap.size) == 8)
        #expect(offset(\cvfio_bitmap.data) == 16)

        #expect(MemoryLayout<cvfio_iommu_type1_dirty_bitmap>.size == 8)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap.argsz) == 0)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap.flags) == 4)
        #expect(flexibleMemberOffset("iommu_type1_dirty_bitmap.data") == 8)

        #expect(MemoryLayout<cvfio_iommu_type1_dirty_bitmap_get>.size == 40)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.iova) == 0)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.size) == 8)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.bitmap) == 16)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.bitmap.pgsize) == 16)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.bitmap.size) == 24)
        #expect(offset(\cvfio_iommu_type1_dirty_bitmap_get.bitmap.data) == 32)
        // GET_BITMAP argsz counts the header and the get struct, not the bitmap memory.
        #expect(MemoryLayout<cvfio_iommu_type1_dirty_bitmap>.size
            + MemoryLayout<cvfio_iommu_type1_dirty_bitmap_get>.size == 48)
    }

    @Test func deviceFeatureHeader() {
        #expect(MemoryLayout<cvfio_device_feature>.size == 8)
        #expect(offset(\cvfio_device_feature.argsz) == 0)
        #expect(offset(\cvfio_device_feature.flags) == 4)
        #expect(flexibleMemberOffset("device_feature.data") == 8)
    }

    @Test("migration feature payloads")
    func migrationPayloads() {
        #expect(MemoryLayout<cvfio_device_feature_migration>.size == 8)
        #expect(MemoryLayout<cvfio_device_feature_migration>.alignment == 8)
        #expect(offset(\cvfio_device_feature_migration.flags) == 0)

        #expect(MemoryLayout<cvfio_device_feature_mig_state>.size == 8)
        #expect(offset(\cvfio_device_feature_mig_state.device_state) == 0)
        #expect(offset(\cvfio_device_feature_mig_state.data_fd) == 4)
        #expect(type(of: cvfio_device_feature_mig_state().device_state) == UInt32.self)
        #expect(type(of: cvfio_device_feature_mig_state().data_fd) == Int32.self)
        // The full MIG_DEVICE_STATE buffer is header + payload = 16 bytes.
        #expect(MemoryLayout<cvfio_device_feature>.size
            + MemoryLayout<cvfio_device_feature_mig_state>.size == 16)

        #expect(MemoryLayout<cvfio_device_feature_mig_data_size>.size == 8)
        #expect(MemoryLayout<cvfio_device_feature_mig_data_size>.alignment == 8)
        #expect(offset(\cvfio_device_feature_mig_data_size.stop_copy_length) == 0)

        #expect(MemoryLayout<cvfio_precopy_info>.size == 24)
        #expect(MemoryLayout<cvfio_precopy_info>.alignment == 8)
        #expect(offset(\cvfio_precopy_info.argsz) == 0)
        #expect(offset(\cvfio_precopy_info.flags) == 4)
        #expect(offset(\cvfio_precopy_info.initial_bytes) == 8)
        #expect(offset(\cvfio_precopy_info.dirty_bytes) == 16)
    }

    @Test("other feature payloads")
    func otherFeaturePayloads() {
        #expect(MemoryLayout<cvfio_device_low_power_entry_with_wakeup>.size == 8)
        #expect(offset(\cvfio_device_low_power_entry_with_wakeup.wakeup_eventfd) == 0)
        #expect(offset(\cvfio_device_low_power_entry_with_wakeup.reserved) == 4)
        #expect(type(of: cvfio_device_low_power_entry_with_wakeup().wakeup_eventfd) == Int32.self)
        #expect(MemoryLayout<cvfio_device_feature_bus_master>.size == 4)
        #expect(offset(\cvfio_device_feature_bus_master.op) == 0)
    }

    @Test("DMA logging payloads")
    func dmaLogging() {
        #expect(MemoryLayout<cvfio_device_feature_dma_logging_control>.size == 24)
        #expect(offset(\cvfio_device_feature_dma_logging_control.page_size) == 0)
        #expect(offset(\cvfio_device_feature_dma_logging_control.num_ranges) == 8)
        #expect(offset(\cvfio_device_feature_dma_logging_control.__reserved) == 12)
        #expect(offset(\cvfio_device_feature_dma_logging_control.ranges) == 16)

        #expect(MemoryLayout<cvfio_device_feature_dma_logging_range>.size == 16)
        #expect(offset(\cvfio_device_feature_dma_logging_range.iova) == 0)
        #expect(offset(\cvfio_device_feature_dma_logging_range.length) == 8)

        #expect(MemoryLayout<cvfio_device_feature_dma_logging_report>.size == 32)
        #expect(offset(\cvfio_device_feature_dma_logging_report.iova) == 0)
        #expect(offset(\cvfio_device_feature_dma_logging_report.length) == 8)
        #expect(offset(\cvfio_device_feature_dma_logging_report.page_size) == 16)
        #expect(offset(\cvfio_device_feature_dma_logging_report.bitmap) == 24)
    }

    @Test("cdev + iommufd device structs")
    func iommufdDevice() {
        #expect(MemoryLayout<cvfio_device_bind_iommufd>.size == 24)
        #expect(offset(\cvfio_device_bind_iommufd.argsz) == 0)
        #expect(offset(\cvfio_device_bind_iommufd.flags) == 4)
        #expect(offset(\cvfio_device_bind_iommufd.iommufd) == 8)
        #expect(offset(\cvfio_device_bind_iommufd.out_devid) == 12)
        #expect(offset(\cvfio_device_bind_iommufd.token_uuid_ptr) == 16)
        #expect(type(of: cvfio_device_bind_iommufd().iommufd) == Int32.self)

        #expect(MemoryLayout<cvfio_device_attach_iommufd_pt>.size == 16)
        #expect(offset(\cvfio_device_attach_iommufd_pt.argsz) == 0)
        #expect(offset(\cvfio_device_attach_iommufd_pt.flags) == 4)
        #expect(offset(\cvfio_device_attach_iommufd_pt.pt_id) == 8)
        #expect(offset(\cvfio_device_attach_iommufd_pt.pasid) == 12)

        #expect(MemoryLayout<cvfio_device_detach_iommufd_pt>.size == 12)
        #expect(offset(\cvfio_device_detach_iommufd_pt.argsz) == 0)
        #expect(offset(\cvfio_device_detach_iommufd_pt.flags) == 4)
        #expect(offset(\cvfio_device_detach_iommufd_pt.pasid) == 8)
    }
}

@Suite("VFIO flag bits and enumerations")
struct ABIFlagTests {
    static let pins: [Pin] = [
        Pin("GROUP_FLAGS_VIABLE", CVFIO_GROUP_FLAGS_VIABLE, 1 << 0),
        Pin("GROUP_FLAGS_CONTAINER_SET", CVFIO_GROUP_FLAGS_CONTAINER_SET, 1 << 1),

        Pin("DEVICE_FLAGS_RESET", CVFIO_DEVICE_FLAGS_RESET, 1 << 0),
        Pin("DEVICE_FLAGS_PCI", CVFIO_DEVICE_FLAGS_PCI, 1 << 1),
        Pin("DEVICE_FLAGS_PLATFORM", CVFIO_DEVICE_FLAGS_PLATFORM, 1 << 2),
        Pin("DEVICE_FLAGS_AMBA", CVFIO_DEVICE_FLAGS_AMBA, 1 << 3),
        Pin("DEVICE_FLAGS_CCW", CVFIO_DEVICE_FLAGS_CCW, 1 << 4),
        Pin("DEVICE_FLAGS_AP", CVFIO_DEVICE_FLAGS_AP, 1 << 5),
        Pin("DEVICE_FLAGS_FSL_MC", CVFIO_DEVICE_FLAGS_FSL_MC, 1 << 6),
        Pin("DEVICE_FLAGS_CAPS", CVFIO_DEVICE_FLAGS_CAPS, 1 << 7),
        Pin("DEVICE_FLAGS_CDX", CVFIO_DEVICE_FLAGS_CDX, 1 << 8),

        Pin("REGION_INFO_FLAG_READ", CVFIO_REGION_INFO_FLAG_READ, 1 << 0),
        Pin("REGION_INFO_FLAG_WRITE", CVFIO_REGION_INFO_FLAG_WRITE, 1 << 1),
        Pin("REGION_INFO_FLAG_MMAP", CVFIO_REGION_INFO_FLAG_MMAP, 1 << 2),
        Pin("REGION_INFO_FLAG_CAPS", CVFIO_REGION_INFO_FLAG_CAPS, 1 << 3),
        Pin("REGION_INFO_CAP_SPARSE_MMAP", CVFIO_REGION_INFO_CAP_SPARSE_MMAP, 1),
        Pin("REGION_INFO_CAP_TYPE", CVFIO_REGION_INFO_CAP_TYPE, 2),
        Pin("PCI_BAR0_REGION_INDEX", CVFIO_PCI_BAR0_REGION_INDEX, 0),
        Pin("PCI_BAR1_REGION_INDEX", CVFIO_PCI_BAR1_REGION_INDEX, 1),
        Pin("PCI_BAR2_REGION_INDEX", CVFIO_PCI_BAR2_REGION_INDEX, 2),
        Pin("PCI_BAR3_REGION_INDEX", CVFIO_PCI_BAR3_REGION_INDEX, 3),
        Pin("PCI_BAR4_REGION_INDEX", CVFIO_PCI_BAR4_REGION_INDEX, 4),
        Pin("PCI_BAR5_REGION_INDEX", CVFIO_PCI_BAR5_REGION_INDEX, 5),
        Pin("PCI_ROM_REGION_INDEX", CVFIO_PCI_ROM_REGION_INDEX, 6),
        Pin("PCI_CONFIG_REGION_INDEX", CVFIO_PCI_CONFIG_REGION_INDEX, 7),
        Pin("PCI_VGA_REGION_INDEX", CVFIO_PCI_VGA_REGION_INDEX, 8),
        Pin("PCI_NUM_REGIONS", CVFIO_PCI_NUM_REGIONS, 9),

        Pin("IRQ_INFO_EVENTFD", CVFIO_IRQ_INFO_EVENTFD, 1 << 0),
        Pin("IRQ_INFO_MASKABLE", CVFIO_IRQ_INFO_MASKABLE, 1 << 1),
        Pin("IRQ_INFO_AUTOMASKED", CVFIO_IRQ_INFO_AUTOMASKED, 1 << 2),
        Pin("IRQ_INFO_NORESIZE", CVFIO_IRQ_INFO_NORESIZE, 1 << 3),
        Pin("IRQ_SET_DATA_NONE", CVFIO_IRQ_SET_DATA_NONE, 1 << 0),
        Pin("IRQ_SET_DATA_BOOL", CVFIO_IRQ_SET_DATA_BOOL, 1 << 1),
        Pin("IRQ_SET_DATA_EVENTFD", CVFIO_IRQ_SET_DATA_EVENTFD, 1 << 2),
        Pin("IRQ_SET_ACTION_MASK", CVFIO_IRQ_SET_ACTION_MASK, 1 << 3),
        Pin("IRQ_SET_ACTION_UNMASK", CVFIO_IRQ_SET_ACTION_UNMASK, 1 << 4),
        Pin("IRQ_SET_ACTION_TRIGGER", CVFIO_IRQ_SET_ACTION_TRIGGER, 1 << 5),
        Pin("IRQ_SET_DATA_TYPE_MASK", CVFIO_IRQ_SET_DATA_TYPE_MASK, 0b000111),
        Pin("IRQ_SET_ACTION_TYPE_MASK", CVFIO_IRQ_SET_ACTION_TYPE_MASK, 0b111000),
        Pin("PCI_INTX_IRQ_INDEX", CVFIO_PCI_INTX_IRQ_INDEX, 0),
        Pin("PCI_MSI_IRQ_INDEX", CVFIO_PCI_MSI_IRQ_INDEX, 1),
        Pin("PCI_MSIX_IRQ_INDEX", CVFIO_PCI_MSIX_IRQ_INDEX, 2),
        Pin("PCI_ERR_IRQ_INDEX", CVFIO_PCI_ERR_IRQ_INDEX, 3),
        Pin("PCI_REQ_IRQ_INDEX", CVFIO_PCI_REQ_IRQ_INDEX, 4),
        Pin("PCI_NUM_IRQS", CVFIO_PCI_NUM_IRQS, 5),

        Pin("IOMMU_INFO_PGSIZES", CVFIO_IOMMU_INFO_PGSIZES, 1 << 0),
        Pin("IOMMU_INFO_CAPS", CVFIO_IOMMU_INFO_CAPS, 1 << 1),
        Pin("IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", CVFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1),
        Pin("IOMMU_TYPE1_INFO_CAP_MIGRATION", CVFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 2),
        Pin("IOMMU_TYPE1_INFO_DMA_AVAIL", CVFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 3),
        Pin("DMA_MAP_FLAG_READ", CVFIO_DMA_MAP_FLAG_READ, 1 << 0),
        Pin("DMA_MAP_FLAG_WRITE", CVFIO_DMA_MAP_FLAG_WRITE, 1 << 1),
        Pin("DMA_MAP_FLAG_VADDR", CVFIO_DMA_MAP_FLAG_VADDR, 1 << 2),
        Pin("DMA_UNMAP_FLAG_GET_DIRTY_BITMAP", CVFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 1 << 0),
        Pin("DMA_UNMAP_FLAG_ALL", CVFIO_DMA_UNMAP_FLAG_ALL, 1 << 1),
        Pin("DMA_UNMAP_FLAG_VADDR", CVFIO_DMA_UNMAP_FLAG_VADDR, 1 << 2),
        Pin("IOMMU_DIRTY_PAGES_FLAG_START", CVFIO_IOMMU_DIRTY_PAGES_FLAG_START, 1 << 0),
        Pin("IOMMU_DIRTY_PAGES_FLAG_STOP", CVFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, 1 << 1),
        Pin("IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP", CVFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, 1 << 2),

        Pin("DEVICE_FEATURE_MASK", CVFIO_DEVICE_FEATURE_MASK, 0x0000_FFFF),
        Pin("DEVICE_FEATURE_GET", CVFIO_DEVICE_FEATURE_GET, 0x0001_0000),
        Pin("DEVICE_FEATURE_SET", CVFIO_DEVICE_FEATURE_SET, 0x0002_0000),
        Pin("DEVICE_FEATURE_PROBE", CVFIO_DEVICE_FEATURE_PROBE, 0x0004_0000),
        Pin("DEVICE_FEATURE_PCI_VF_TOKEN", CVFIO_DEVICE_FEATURE_PCI_VF_TOKEN, 0),
        Pin("DEVICE_FEATURE_MIGRATION", CVFIO_DEVICE_FEATURE_MIGRATION, 1),
        Pin("DEVICE_FEATURE_MIG_DEVICE_STATE", CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 2),
        Pin("DEVICE_FEATURE_LOW_POWER_ENTRY", CVFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, 3),
        Pin("DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP", CVFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, 4),
        Pin("DEVICE_FEATURE_LOW_POWER_EXIT", CVFIO_DEVICE_FEATURE_LOW_POWER_EXIT, 5),
        Pin("DEVICE_FEATURE_DMA_LOGGING_START", CVFIO_DEVICE_FEATURE_DMA_LOGGING_START, 6),
        Pin("DEVICE_FEATURE_DMA_LOGGING_STOP", CVFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, 7),
        Pin("DEVICE_FEATURE_DMA_LOGGING_REPORT", CVFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, 8),
        Pin("DEVICE_FEATURE_MIG_DATA_SIZE", CVFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 9),
        Pin("DEVICE_FEATURE_BUS_MASTER", CVFIO_DEVICE_FEATURE_BUS_MASTER, 10),
        Pin("DEVICE_FEATURE_DMA_BUF", CVFIO_DEVICE_FEATURE_DMA_BUF, 11),
        Pin("DEVICE_FEATURE_MIG_PRECOPY_INFOv2", CVFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, 12),
        Pin("PRECOPY_INFO_REINIT", CVFIO_PRECOPY_INFO_REINIT, 1),
        Pin("DEVICE_FEATURE_CLEAR_MASTER", CVFIO_DEVICE_FEATURE_CLEAR_MASTER, 0),
        Pin("DEVICE_FEATURE_SET_MASTER", CVFIO_DEVICE_FEATURE_SET_MASTER, 1),

        Pin("MIGRATION_STOP_COPY", CVFIO_MIGRATION_STOP_COPY, 1 << 0),
        Pin("MIGRATION_P2P", CVFIO_MIGRATION_P2P, 1 << 1),
        Pin("MIGRATION_PRE_COPY", CVFIO_MIGRATION_PRE_COPY, 1 << 2),
        Pin("DEVICE_STATE_ERROR", CVFIO_DEVICE_STATE_ERROR, 0),
        Pin("DEVICE_STATE_STOP", CVFIO_DEVICE_STATE_STOP, 1),
        Pin("DEVICE_STATE_RUNNING", CVFIO_DEVICE_STATE_RUNNING, 2),
        Pin("DEVICE_STATE_STOP_COPY", CVFIO_DEVICE_STATE_STOP_COPY, 3),
        Pin("DEVICE_STATE_RESUMING", CVFIO_DEVICE_STATE_RESUMING, 4),
        Pin("DEVICE_STATE_RUNNING_P2P", CVFIO_DEVICE_STATE_RUNNING_P2P, 5),
        Pin("DEVICE_STATE_PRE_COPY", CVFIO_DEVICE_STATE_PRE_COPY, 6),
        Pin("DEVICE_STATE_PRE_COPY_P2P", CVFIO_DEVICE_STATE_PRE_COPY_P2P, 7),
        Pin("DEVICE_STATE_NR", CVFIO_DEVICE_STATE_NR, 8),

        Pin("DEVICE_BIND_FLAG_TOKEN", CVFIO_DEVICE_BIND_FLAG_TOKEN, 1 << 0),
        Pin("DEVICE_ATTACH_PASID", CVFIO_DEVICE_ATTACH_PASID, 1 << 0),
        Pin("DEVICE_DETACH_PASID", CVFIO_DEVICE_DETACH_PASID, 1 << 0),
    ]

    @Test("each flag bit and enumeration value", arguments: pins)
    func value(_ pin: Pin) {
        #expect(pin.actual == pin.expected)
    }

    @Test("a MIG_DEVICE_STATE feature request encodes as the kernel expects")
    func featureFlagsCompose() {
        let set = CVFIO_DEVICE_FEATURE_SET | CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
        let get = CVFIO_DEVICE_FEATURE_GET | CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
        #expect(set == 0x20002)
        #expect(get == 0x10002)
        #expect(set & CVFIO_DEVICE_FEATURE_MASK == CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)
    }
}
