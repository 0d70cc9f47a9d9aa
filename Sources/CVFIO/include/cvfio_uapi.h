// cvfio_uapi.h: the project's own definitions of the Linux VFIO user ABI.
//
// Why this exists: the build host's <linux/vfio.h> comes from linux-libc-dev 6.1,
// which predates the pre-copy migration states, VFIO_MIG_GET_PRECOPY_INFO, the
// MIG_DATA_SIZE feature, the cdev/iommufd device ioctls and the explicit padding
// fields of newer kernels. Rather than mixing that header with hand-written patches,
// every definition the engine uses is written here once, with a `cvfio_`/`CVFIO_`
// prefix so it can sit next to the system header (see Tests/CVFIOSystemHeaderCheck).
//
// Newest uAPI matched: mainline vfio.h including the 6.2 pre-copy additions, the 6.6
// cdev/iommufd device ioctls, the bind VF-token field, and DEVICE_FEATURE indexes up
// to 11 (DMA_BUF). Layouts are the same on every 64-bit Linux ABI we target
// (x86-64, arm64). Sizes and offsets are pinned by _Static_assert in cvfio.c and by
// Tests/VFIOSyscallsTests/ABILayoutTests.swift; docs/uapi.md says how to add more.
//
// Constants are plain integer literals, so Swift imports them as Int32; convert at
// the point of use (e.g. UInt(CVFIO_DEVICE_FEATURE) for ioctl).
#ifndef CVFIO_UAPI_H
#define CVFIO_UAPI_H

#include <stdint.h>

// The kernel's __aligned_u64: 8-byte alignment even on 32-bit ABIs.
#define CVFIO_ALIGNED_U64 __attribute__((aligned(8)))

// MARK: - ioctl numbering
// Every request is _IO(';', 100 + n): no size or direction bits; argsz carries size.

#define CVFIO_TYPE 0x3B
#define CVFIO_BASE 100

#define CVFIO_GET_API_VERSION 0x3B64
#define CVFIO_CHECK_EXTENSION 0x3B65
#define CVFIO_SET_IOMMU 0x3B66
#define CVFIO_GROUP_GET_STATUS 0x3B67
#define CVFIO_GROUP_SET_CONTAINER 0x3B68
#define CVFIO_GROUP_UNSET_CONTAINER 0x3B69
#define CVFIO_GROUP_GET_DEVICE_FD 0x3B6A
#define CVFIO_DEVICE_GET_INFO 0x3B6B
#define CVFIO_DEVICE_GET_REGION_INFO 0x3B6C
#define CVFIO_DEVICE_GET_IRQ_INFO 0x3B6D
#define CVFIO_DEVICE_SET_IRQS 0x3B6E
#define CVFIO_DEVICE_RESET 0x3B6F
// 0x3B70..0x3B79 are shared: the meaning depends on the kind of fd.
#define CVFIO_IOMMU_GET_INFO 0x3B70               // container
#define CVFIO_DEVICE_GET_PCI_HOT_RESET_INFO 0x3B70 // device
#define CVFIO_IOMMU_MAP_DMA 0x3B71                // container
#define CVFIO_DEVICE_PCI_HOT_RESET 0x3B71         // device
#define CVFIO_IOMMU_UNMAP_DMA 0x3B72              // container
#define CVFIO_DEVICE_QUERY_GFX_PLANE 0x3B72       // device
#define CVFIO_IOMMU_ENABLE 0x3B73                 // container
#define CVFIO_DEVICE_GET_GFX_DMABUF 0x3B73        // device
#define CVFIO_IOMMU_DISABLE 0x3B74                // container
#define CVFIO_DEVICE_IOEVENTFD 0x3B74             // device
#define CVFIO_IOMMU_DIRTY_PAGES 0x3B75            // container
#define CVFIO_DEVICE_FEATURE 0x3B75               // device
#define CVFIO_DEVICE_BIND_IOMMUFD 0x3B76          // cdev device fd
#define CVFIO_DEVICE_ATTACH_IOMMUFD_PT 0x3B77     // cdev device fd
#define CVFIO_DEVICE_DETACH_IOMMUFD_PT 0x3B78     // cdev device fd
#define CVFIO_MIG_GET_PRECOPY_INFO 0x3B79         // migration data_fd

// MARK: - Container: API version and extensions

#define CVFIO_API_VERSION 0

// Ids for CHECK_EXTENSION (and the IOMMU type for SET_IOMMU).
#define CVFIO_TYPE1_IOMMU 1
#define CVFIO_SPAPR_TCE_IOMMU 2
#define CVFIO_TYPE1v2_IOMMU 3
#define CVFIO_DMA_CC_IOMMU 4
#define CVFIO_EEH 5
#define CVFIO_TYPE1_NESTING_IOMMU 6 // obsolete; reserved upstream
#define CVFIO_SPAPR_TCE_v2_IOMMU 7
#define CVFIO_NOIOMMU_IOMMU 8
#define CVFIO_UNMAP_ALL 9
#define CVFIO_UPDATE_VADDR 10

// MARK: - Group

struct cvfio_group_status {
    uint32_t argsz;
    uint32_t flags;
};
#define CVFIO_GROUP_FLAGS_VIABLE 0x1
#define CVFIO_GROUP_FLAGS_CONTAINER_SET 0x2

// MARK: - Device info

// 24 bytes upstream (`pad` added ~6.6); the 6.1 header has 20. Kernels accept both.
struct cvfio_device_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
    uint32_t cap_offset;
    uint32_t pad;
};
#define CVFIO_DEVICE_FLAGS_RESET 0x1
#define CVFIO_DEVICE_FLAGS_PCI 0x2
#define CVFIO_DEVICE_FLAGS_PLATFORM 0x4
#define CVFIO_DEVICE_FLAGS_AMBA 0x8
#define CVFIO_DEVICE_FLAGS_CCW 0x10
#define CVFIO_DEVICE_FLAGS_AP 0x20
#define CVFIO_DEVICE_FLAGS_FSL_MC 0x40
#define CVFIO_DEVICE_FLAGS_CAPS 0x80
#define CVFIO_DEVICE_FLAGS_CDX 0x100

// Every capability chain entry starts with this; `next` is an offset from the start
// of the caller's buffer, 0 ends the chain.
struct cvfio_info_cap_header {
    uint16_t id;
    uint16_t version;
    uint32_t next;
};

// MARK: - Regions

struct cvfio_region_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset;
    uint64_t size;
    uint64_t offset; // offset into the device fd for read/write/mmap
};
#define CVFIO_REGION_INFO_FLAG_READ 0x1
#define CVFIO_REGION_INFO_FLAG_WRITE 0x2
#define CVFIO_REGION_INFO_FLAG_MMAP 0x4
#define CVFIO_REGION_INFO_FLAG_CAPS 0x8

// Region capability ids.
#define CVFIO_REGION_INFO_CAP_SPARSE_MMAP 1
#define CVFIO_REGION_INFO_CAP_TYPE 2

struct cvfio_region_sparse_mmap_area {
    uint64_t offset;
    uint64_t size;
};

struct cvfio_region_info_cap_sparse_mmap {
    struct cvfio_info_cap_header header;
    uint32_t nr_areas;
    uint32_t reserved;
    struct cvfio_region_sparse_mmap_area areas[];
};

struct cvfio_region_info_cap_type {
    struct cvfio_info_cap_header header;
    uint32_t type;
    uint32_t subtype;
};

// Fixed vfio-pci region indexes; indexes >= CVFIO_PCI_NUM_REGIONS are device specific.
#define CVFIO_PCI_BAR0_REGION_INDEX 0
#define CVFIO_PCI_BAR1_REGION_INDEX 1
#define CVFIO_PCI_BAR2_REGION_INDEX 2
#define CVFIO_PCI_BAR3_REGION_INDEX 3
#define CVFIO_PCI_BAR4_REGION_INDEX 4
#define CVFIO_PCI_BAR5_REGION_INDEX 5
#define CVFIO_PCI_ROM_REGION_INDEX 6
#define CVFIO_PCI_CONFIG_REGION_INDEX 7
#define CVFIO_PCI_VGA_REGION_INDEX 8
#define CVFIO_PCI_NUM_REGIONS 9

// MARK: - Interrupts

struct cvfio_irq_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};
#define CVFIO_IRQ_INFO_EVENTFD 0x1
#define CVFIO_IRQ_INFO_MASKABLE 0x2
#define CVFIO_IRQ_INFO_AUTOMASKED 0x4
#define CVFIO_IRQ_INFO_NORESIZE 0x8

struct cvfio_irq_set {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
    uint8_t data[]; // none, u8 bools or s32 eventfds, per DATA_* flag
};
#define CVFIO_IRQ_SET_DATA_NONE 0x1
#define CVFIO_IRQ_SET_DATA_BOOL 0x2
#define CVFIO_IRQ_SET_DATA_EVENTFD 0x4
#define CVFIO_IRQ_SET_ACTION_MASK 0x8
#define CVFIO_IRQ_SET_ACTION_UNMASK 0x10
#define CVFIO_IRQ_SET_ACTION_TRIGGER 0x20
#define CVFIO_IRQ_SET_DATA_TYPE_MASK 0x7
#define CVFIO_IRQ_SET_ACTION_TYPE_MASK 0x38

#define CVFIO_PCI_INTX_IRQ_INDEX 0
#define CVFIO_PCI_MSI_IRQ_INDEX 1
#define CVFIO_PCI_MSIX_IRQ_INDEX 2
#define CVFIO_PCI_ERR_IRQ_INDEX 3
#define CVFIO_PCI_REQ_IRQ_INDEX 4
#define CVFIO_PCI_NUM_IRQS 5

// MARK: - Type1 IOMMU (container)

// 24 bytes: the 6.1 header leaves `pad` as implicit tail padding.
struct cvfio_iommu_type1_info {
    uint32_t argsz;
    uint32_t flags;
    uint64_t iova_pgsizes; // bitmap of supported IOMMU page sizes
    uint32_t cap_offset;
    uint32_t pad;
};
#define CVFIO_IOMMU_INFO_PGSIZES 0x1
#define CVFIO_IOMMU_INFO_CAPS 0x2

// Capability ids in the IOMMU_GET_INFO chain.
#define CVFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1
#define CVFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION 2
#define CVFIO_IOMMU_TYPE1_INFO_DMA_AVAIL 3

struct cvfio_iova_range {
    uint64_t start;
    uint64_t end; // inclusive
};

struct cvfio_iommu_type1_info_cap_iova_range {
    struct cvfio_info_cap_header header;
    uint32_t nr_iovas;
    uint32_t reserved;
    struct cvfio_iova_range iova_ranges[];
};

// Present only when the container implements IOMMU_DIRTY_PAGES.
struct cvfio_iommu_type1_info_cap_migration {
    struct cvfio_info_cap_header header;
    uint32_t flags;
    uint64_t pgsize_bitmap;         // page sizes usable for dirty bitmaps
    uint64_t max_dirty_bitmap_size; // bytes
};

struct cvfio_iommu_type1_info_dma_avail {
    struct cvfio_info_cap_header header;
    uint32_t avail; // MAP_DMA entries still allowed
};

struct cvfio_iommu_type1_dma_map {
    uint32_t argsz;
    uint32_t flags;
    uint64_t vaddr;
    uint64_t iova;
    uint64_t size;
};
#define CVFIO_DMA_MAP_FLAG_READ 0x1  // device may read
#define CVFIO_DMA_MAP_FLAG_WRITE 0x2 // device may write
#define CVFIO_DMA_MAP_FLAG_VADDR 0x4 // re-supply an invalidated vaddr

// A dirty bitmap buffer: one bit per `pgsize` bytes, `size` bytes long.
struct cvfio_bitmap {
    uint64_t pgsize;
    uint64_t size;
    uint64_t *data;
};

struct cvfio_iommu_type1_dma_unmap {
    uint32_t argsz;
    uint32_t flags;
    uint64_t iova;
    uint64_t size; // out: bytes actually unmapped
    uint8_t data[]; // a cvfio_bitmap with GET_DIRTY_BITMAP
};
#define CVFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP 0x1
#define CVFIO_DMA_UNMAP_FLAG_ALL 0x2
#define CVFIO_DMA_UNMAP_FLAG_VADDR 0x4

struct cvfio_iommu_type1_dirty_bitmap {
    uint32_t argsz;
    uint32_t flags;
    uint8_t data[]; // a cvfio_iommu_type1_dirty_bitmap_get with GET_BITMAP
};
#define CVFIO_IOMMU_DIRTY_PAGES_FLAG_START 0x1
#define CVFIO_IOMMU_DIRTY_PAGES_FLAG_STOP 0x2
#define CVFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP 0x4

struct cvfio_iommu_type1_dirty_bitmap_get {
    uint64_t iova;
    uint64_t size;
    struct cvfio_bitmap bitmap;
};

// MARK: - DEVICE_FEATURE

struct cvfio_device_feature {
    uint32_t argsz; // 8 + payload bytes
    uint32_t flags; // feature index | GET/SET/PROBE
    uint8_t data[];
};
#define CVFIO_DEVICE_FEATURE_MASK 0xFFFF
#define CVFIO_DEVICE_FEATURE_GET 0x10000
#define CVFIO_DEVICE_FEATURE_SET 0x20000
#define CVFIO_DEVICE_FEATURE_PROBE 0x40000

// Feature indexes.
#define CVFIO_DEVICE_FEATURE_PCI_VF_TOKEN 0
#define CVFIO_DEVICE_FEATURE_MIGRATION 1
#define CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE 2
#define CVFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#define CVFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#define CVFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#define CVFIO_DEVICE_FEATURE_DMA_LOGGING_START 6
#define CVFIO_DEVICE_FEATURE_DMA_LOGGING_STOP 7
#define CVFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT 8
#define CVFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#define CVFIO_DEVICE_FEATURE_BUS_MASTER 10
#define CVFIO_DEVICE_FEATURE_DMA_BUF 11
// SET with no payload (PROBE to detect): opts in to cvfio_precopy_info.flags as an output.
#define CVFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 12

// MIGRATION (GET): which optional states the device supports.
struct cvfio_device_feature_migration {
    uint64_t flags CVFIO_ALIGNED_U64;
};
#define CVFIO_MIGRATION_STOP_COPY 0x1
#define CVFIO_MIGRATION_P2P 0x2
#define CVFIO_MIGRATION_PRE_COPY 0x4

// MIG_DEVICE_STATE (GET/SET): data_fd is -1 unless the final arc opened a session.
struct cvfio_device_feature_mig_state {
    uint32_t device_state;
    int32_t data_fd;
};

// Values of device_state (the kernel's enum vfio_device_mig_state).
#define CVFIO_DEVICE_STATE_ERROR 0
#define CVFIO_DEVICE_STATE_STOP 1
#define CVFIO_DEVICE_STATE_RUNNING 2
#define CVFIO_DEVICE_STATE_STOP_COPY 3
#define CVFIO_DEVICE_STATE_RESUMING 4
#define CVFIO_DEVICE_STATE_RUNNING_P2P 5
#define CVFIO_DEVICE_STATE_PRE_COPY 6
#define CVFIO_DEVICE_STATE_PRE_COPY_P2P 7
#define CVFIO_DEVICE_STATE_NR 8

// MIG_DATA_SIZE (GET): estimate of the STOP_COPY stream length.
struct cvfio_device_feature_mig_data_size {
    uint64_t stop_copy_length CVFIO_ALIGNED_U64;
};

// LOW_POWER_ENTRY_WITH_WAKEUP (SET).
struct cvfio_device_low_power_entry_with_wakeup {
    int32_t wakeup_eventfd;
    uint32_t reserved;
};

// BUS_MASTER (SET).
struct cvfio_device_feature_bus_master {
    uint32_t op;
};
#define CVFIO_DEVICE_FEATURE_CLEAR_MASTER 0
#define CVFIO_DEVICE_FEATURE_SET_MASTER 1

// DMA_LOGGING_START (SET): page_size is rewritten with the granularity chosen.
struct cvfio_device_feature_dma_logging_control {
    uint64_t page_size CVFIO_ALIGNED_U64;
    uint32_t num_ranges;
    uint32_t __reserved;
    uint64_t ranges CVFIO_ALIGNED_U64; // user pointer to cvfio_device_feature_dma_logging_range[]
};

struct cvfio_device_feature_dma_logging_range {
    uint64_t iova CVFIO_ALIGNED_U64;
    uint64_t length CVFIO_ALIGNED_U64;
};

// DMA_LOGGING_REPORT (GET): reading clears the device's log for the range.
struct cvfio_device_feature_dma_logging_report {
    uint64_t iova CVFIO_ALIGNED_U64;
    uint64_t length CVFIO_ALIGNED_U64;
    uint64_t page_size CVFIO_ALIGNED_U64;
    uint64_t bitmap CVFIO_ALIGNED_U64; // user pointer, u64 words
};

// MARK: - Migration data_fd

// MIG_GET_PRECOPY_INFO: only valid in PRE_COPY / PRE_COPY_P2P.
struct cvfio_precopy_info {
    uint32_t argsz;
    uint32_t flags; // an output only after MIG_PRECOPY_INFOv2 was set; reserved before

    uint64_t initial_bytes CVFIO_ALIGNED_U64;
    uint64_t dirty_bytes CVFIO_ALIGNED_U64;
};
// New initial data appeared (the device was reconfigured): initial and dirty bytes restart.
#define CVFIO_PRECOPY_INFO_REINIT 0x1

// MARK: - cdev + iommufd device path

struct cvfio_device_bind_iommufd {
    uint32_t argsz;
    uint32_t flags;
    int32_t iommufd;
    uint32_t out_devid;
    uint64_t token_uuid_ptr CVFIO_ALIGNED_U64; // only read with BIND_FLAG_TOKEN
};
#define CVFIO_DEVICE_BIND_FLAG_TOKEN 0x1

struct cvfio_device_attach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
    uint32_t pt_id; // in: IOAS or HWPT id; out: attached HWPT id
    uint32_t pasid; // only read with ATTACH_PASID
};
#define CVFIO_DEVICE_ATTACH_PASID 0x1

struct cvfio_device_detach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
    uint32_t pasid; // only read with DETACH_PASID
};
#define CVFIO_DEVICE_DETACH_PASID 0x1

#endif
