// Compile-time proof of the ABI facts behind cvfio_uapi.h: every struct size and
// field offset, and every ioctl number against the kernel's _IO(';', 100 + n) rule.
// <linux/ioctl.h> only supplies _IO; nothing here includes <linux/vfio.h>.
#include "CVFIO.h"

#include <linux/ioctl.h>
#include <stddef.h>

#define SIZE(s, n) _Static_assert(sizeof(struct s) == (n), "sizeof " #s)
#define OFF(s, f, n) _Static_assert(offsetof(struct s, f) == (n), #s "." #f)
#define NR(name, n) _Static_assert((name) == _IO(';', CVFIO_BASE + (n)), #name)

// ioctl numbers
_Static_assert(CVFIO_TYPE == ';', "CVFIO_TYPE");
NR(CVFIO_GET_API_VERSION, 0);
NR(CVFIO_CHECK_EXTENSION, 1);
NR(CVFIO_SET_IOMMU, 2);
NR(CVFIO_GROUP_GET_STATUS, 3);
NR(CVFIO_GROUP_SET_CONTAINER, 4);
NR(CVFIO_GROUP_UNSET_CONTAINER, 5);
NR(CVFIO_GROUP_GET_DEVICE_FD, 6);
NR(CVFIO_DEVICE_GET_INFO, 7);
NR(CVFIO_DEVICE_GET_REGION_INFO, 8);
NR(CVFIO_DEVICE_GET_IRQ_INFO, 9);
NR(CVFIO_DEVICE_SET_IRQS, 10);
NR(CVFIO_DEVICE_RESET, 11);
NR(CVFIO_IOMMU_GET_INFO, 12);
NR(CVFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 12);
NR(CVFIO_IOMMU_MAP_DMA, 13);
NR(CVFIO_DEVICE_PCI_HOT_RESET, 13);
NR(CVFIO_IOMMU_UNMAP_DMA, 14);
NR(CVFIO_DEVICE_QUERY_GFX_PLANE, 14);
NR(CVFIO_IOMMU_ENABLE, 15);
NR(CVFIO_DEVICE_GET_GFX_DMABUF, 15);
NR(CVFIO_IOMMU_DISABLE, 16);
NR(CVFIO_DEVICE_IOEVENTFD, 16);
NR(CVFIO_IOMMU_DIRTY_PAGES, 17);
NR(CVFIO_DEVICE_FEATURE, 17);
NR(CVFIO_DEVICE_BIND_IOMMUFD, 18);
NR(CVFIO_DEVICE_ATTACH_IOMMUFD_PT, 19);
NR(CVFIO_DEVICE_DETACH_IOMMUFD_PT, 20);
NR(CVFIO_MIG_GET_PRECOPY_INFO, 21);

// group / device
SIZE(cvfio_group_status, 8);
OFF(cvfio_group_status, argsz, 0);
OFF(cvfio_group_status, flags, 4);

SIZE(cvfio_device_info, 24);
OFF(cvfio_device_info, argsz, 0);
OFF(cvfio_device_info, flags, 4);
OFF(cvfio_device_info, num_regions, 8);
OFF(cvfio_device_info, num_irqs, 12);
OFF(cvfio_device_info, cap_offset, 16);
OFF(cvfio_device_info, pad, 20);

SIZE(cvfio_info_cap_header, 8);
OFF(cvfio_info_cap_header, id, 0);
OFF(cvfio_info_cap_header, version, 2);
OFF(cvfio_info_cap_header, next, 4);

// regions
SIZE(cvfio_region_info, 32);
OFF(cvfio_region_info, argsz, 0);
OFF(cvfio_region_info, flags, 4);
OFF(cvfio_region_info, index, 8);
OFF(cvfio_region_info, cap_offset, 12);
OFF(cvfio_region_info, size, 16);
OFF(cvfio_region_info, offset, 24);

SIZE(cvfio_region_sparse_mmap_area, 16);
OFF(cvfio_region_sparse_mmap_area, offset, 0);
OFF(cvfio_region_sparse_mmap_area, size, 8);

SIZE(cvfio_region_info_cap_sparse_mmap, 16);
OFF(cvfio_region_info_cap_sparse_mmap, header, 0);
OFF(cvfio_region_info_cap_sparse_mmap, nr_areas, 8);
OFF(cvfio_region_info_cap_sparse_mmap, reserved, 12);
OFF(cvfio_region_info_cap_sparse_mmap, areas, 16);

SIZE(cvfio_region_info_cap_type, 16);
OFF(cvfio_region_info_cap_type, header, 0);
OFF(cvfio_region_info_cap_type, type, 8);
OFF(cvfio_region_info_cap_type, subtype, 12);

// interrupts
SIZE(cvfio_irq_info, 16);
OFF(cvfio_irq_info, argsz, 0);
OFF(cvfio_irq_info, flags, 4);
OFF(cvfio_irq_info, index, 8);
OFF(cvfio_irq_info, count, 12);

SIZE(cvfio_irq_set, 20);
OFF(cvfio_irq_set, argsz, 0);
OFF(cvfio_irq_set, flags, 4);
OFF(cvfio_irq_set, index, 8);
OFF(cvfio_irq_set, start, 12);
OFF(cvfio_irq_set, count, 16);
OFF(cvfio_irq_set, data, 20);

// type1 IOMMU
SIZE(cvfio_iommu_type1_info, 24);
OFF(cvfio_iommu_type1_info, argsz, 0);
OFF(cvfio_iommu_type1_info, flags, 4);
OFF(cvfio_iommu_type1_info, iova_pgsizes, 8);
OFF(cvfio_iommu_type1_info, cap_offset, 16);
OFF(cvfio_iommu_type1_info, pad, 20);

SIZE(cvfio_iova_range, 16);
OFF(cvfio_iova_range, start, 0);
OFF(cvfio_iova_range, end, 8);

SIZE(cvfio_iommu_type1_info_cap_iova_range, 16);
OFF(cvfio_iommu_type1_info_cap_iova_range, header, 0);
OFF(cvfio_iommu_type1_info_cap_iova_range, nr_iovas, 8);
OFF(cvfio_iommu_type1_info_cap_iova_range, reserved, 12);
OFF(cvfio_iommu_type1_info_cap_iova_range, iova_ranges, 16);

SIZE(cvfio_iommu_type1_info_cap_migration, 32);
OFF(cvfio_iommu_type1_info_cap_migration, header, 0);
OFF(cvfio_iommu_type1_info_cap_migration, flags, 8);
OFF(cvfio_iommu_type1_info_cap_migration, pgsize_bitmap, 16);
OFF(cvfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size, 24);

SIZE(cvfio_iommu_type1_info_dma_avail, 12);
OFF(cvfio_iommu_type1_info_dma_avail, header, 0);
OFF(cvfio_iommu_type1_info_dma_avail, avail, 8);

SIZE(cvfio_iommu_type1_dma_map, 32);
OFF(cvfio_iommu_type1_dma_map, argsz, 0);
OFF(cvfio_iommu_type1_dma_map, flags, 4);
OFF(cvfio_iommu_type1_dma_map, vaddr, 8);
OFF(cvfio_iommu_type1_dma_map, iova, 16);
OFF(cvfio_iommu_type1_dma_map, size, 24);

SIZE(cvfio_bitmap, 24);
OFF(cvfio_bitmap, pgsize, 0);
OFF(cvfio_bitmap, size, 8);
OFF(cvfio_bitmap, data, 16);

SIZE(cvfio_iommu_type1_dma_unmap, 24);
OFF(cvfio_iommu_type1_dma_unmap, argsz, 0);
OFF(cvfio_iommu_type1_dma_unmap, flags, 4);
OFF(cvfio_iommu_type1_dma_unmap, iova, 8);
OFF(cvfio_iommu_type1_dma_unmap, size, 16);
OFF(cvfio_iommu_type1_dma_unmap, data, 24);

SIZE(cvfio_iommu_type1_dirty_bitmap, 8);
OFF(cvfio_iommu_type1_dirty_bitmap, argsz, 0);
OFF(cvfio_iommu_type1_dirty_bitmap, flags, 4);
OFF(cvfio_iommu_type1_dirty_bitmap, data, 8);

SIZE(cvfio_iommu_type1_dirty_bitmap_get, 40);
OFF(cvfio_iommu_type1_dirty_bitmap_get, iova, 0);
OFF(cvfio_iommu_type1_dirty_bitmap_get, size, 8);
OFF(cvfio_iommu_type1_dirty_bitmap_get, bitmap, 16);
OFF(cvfio_iommu_type1_dirty_bitmap_get, bitmap.pgsize, 16);
OFF(cvfio_iommu_type1_dirty_bitmap_get, bitmap.size, 24);
OFF(cvfio_iommu_type1_dirty_bitmap_get, bitmap.data, 32);

// DEVICE_FEATURE
SIZE(cvfio_device_feature, 8);
OFF(cvfio_device_feature, argsz, 0);
OFF(cvfio_device_feature, flags, 4);
OFF(cvfio_device_feature, data, 8);

SIZE(cvfio_device_feature_migration, 8);
OFF(cvfio_device_feature_migration, flags, 0);

SIZE(cvfio_device_feature_mig_state, 8);
OFF(cvfio_device_feature_mig_state, device_state, 0);
OFF(cvfio_device_feature_mig_state, data_fd, 4);

SIZE(cvfio_device_feature_mig_data_size, 8);
OFF(cvfio_device_feature_mig_data_size, stop_copy_length, 0);

SIZE(cvfio_device_low_power_entry_with_wakeup, 8);
OFF(cvfio_device_low_power_entry_with_wakeup, wakeup_eventfd, 0);
OFF(cvfio_device_low_power_entry_with_wakeup, reserved, 4);

SIZE(cvfio_device_feature_bus_master, 4);
OFF(cvfio_device_feature_bus_master, op, 0);

SIZE(cvfio_device_feature_dma_logging_control, 24);
OFF(cvfio_device_feature_dma_logging_control, page_size, 0);
OFF(cvfio_device_feature_dma_logging_control, num_ranges, 8);
OFF(cvfio_device_feature_dma_logging_control, __reserved, 12);
OFF(cvfio_device_feature_dma_logging_control, ranges, 16);

SIZE(cvfio_device_feature_dma_logging_range, 16);
OFF(cvfio_device_feature_dma_logging_range, iova, 0);
OFF(cvfio_device_feature_dma_logging_range, length, 8);

SIZE(cvfio_device_feature_dma_logging_report, 32);
OFF(cvfio_device_feature_dma_logging_report, iova, 0);
OFF(cvfio_device_feature_dma_logging_report, length, 8);
OFF(cvfio_device_feature_dma_logging_report, page_size, 16);
OFF(cvfio_device_feature_dma_logging_report, bitmap, 24);

// migration data_fd
SIZE(cvfio_precopy_info, 24);
OFF(cvfio_precopy_info, argsz, 0);
OFF(cvfio_precopy_info, flags, 4);
OFF(cvfio_precopy_info, initial_bytes, 8);
OFF(cvfio_precopy_info, dirty_bytes, 16);

// cdev + iommufd
SIZE(cvfio_device_bind_iommufd, 24);
OFF(cvfio_device_bind_iommufd, argsz, 0);
OFF(cvfio_device_bind_iommufd, flags, 4);
OFF(cvfio_device_bind_iommufd, iommufd, 8);
OFF(cvfio_device_bind_iommufd, out_devid, 12);
OFF(cvfio_device_bind_iommufd, token_uuid_ptr, 16);

SIZE(cvfio_device_attach_iommufd_pt, 16);
OFF(cvfio_device_attach_iommufd_pt, argsz, 0);
OFF(cvfio_device_attach_iommufd_pt, flags, 4);
OFF(cvfio_device_attach_iommufd_pt, pt_id, 8);
OFF(cvfio_device_attach_iommufd_pt, pasid, 12);

SIZE(cvfio_device_detach_iommufd_pt, 12);
OFF(cvfio_device_detach_iommufd_pt, argsz, 0);
OFF(cvfio_device_detach_iommufd_pt, flags, 4);
OFF(cvfio_device_detach_iommufd_pt, pasid, 8);

// The feature flag fields and the migration state count fit their kernel widths.
_Static_assert((CVFIO_DEVICE_FEATURE_GET & CVFIO_DEVICE_FEATURE_MASK) == 0, "GET outside index");
_Static_assert((CVFIO_DEVICE_FEATURE_SET & CVFIO_DEVICE_FEATURE_MASK) == 0, "SET outside index");
_Static_assert((CVFIO_DEVICE_FEATURE_PROBE & CVFIO_DEVICE_FEATURE_MASK) == 0, "PROBE outside index");
_Static_assert(CVFIO_DEVICE_STATE_NR == CVFIO_DEVICE_STATE_PRE_COPY_P2P + 1, "state count");
