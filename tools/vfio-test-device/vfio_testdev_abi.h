/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What userspace can rely on when talking to a vfio_testdev mdev: PCI identity, the BAR0
 * register map of the DMA engine, and the layout of the saved-state stream. Plain #defines
 * only, so the kernel module, the guest smoke test and any binding can include it.
 */
#ifndef VFIO_TESTDEV_ABI_H
#define VFIO_TESTDEV_ABI_H

/* Fake PCI identity (0x1234 is the unofficial vendor id QEMU's own test devices use). */
#define VTD_PCI_VENDOR_ID 0x1234
#define VTD_PCI_DEVICE_ID 0x7e57
#define VTD_PCI_CLASS 0xff0000 /* "unassigned" class code */

/* mdev types: the suffix selects the BAR0 size, so a stream of one type is foreign to the other. */
#define VTD_TYPE1_NAME "vfio_testdev-1"
#define VTD_TYPE1_BAR_SIZE 0x4000 /* 16 KiB */
#define VTD_TYPE2_NAME "vfio_testdev-2"
#define VTD_TYPE2_BAR_SIZE 0x10000 /* 64 KiB */

/* BAR0 registers: little-endian u32, accessed with aligned 4-byte reads/writes. */
#define VTD_REG_ID 0x00        /* RO: VTD_ID_VALUE */
#define VTD_REG_BAR_SIZE 0x04  /* RO: BAR0 size in bytes */
#define VTD_REG_DMA_SRC 0x08   /* RW: BAR offset (to-memory) or destination BAR offset (from-memory) */
#define VTD_REG_DMA_LEN 0x0c   /* RW: bytes to move, 1..bar size */
#define VTD_REG_DMA_IOVA_LO 0x10 /* RW: IOVA in the device's container, low half */
#define VTD_REG_DMA_IOVA_HI 0x14 /* RW: high half */
#define VTD_REG_DMA_CMD 0x18   /* WO: writing a command runs it synchronously; reads 0 */
#define VTD_REG_DMA_STATUS 0x1c /* RO: 0 = last command succeeded, else its positive errno */
#define VTD_REG_DMA_COUNT 0x20 /* RO: number of commands that succeeded */
#define VTD_REG_SCRATCH 0x24   /* RW scratch registers up to VTD_DATA_OFFSET */
#define VTD_DATA_OFFSET 0x100  /* free-form device memory from here to the end of BAR0 */

#define VTD_ID_VALUE 0x7e570001u
#define VTD_DMA_CMD_TO_MEMORY 1u   /* copy BAR0[src, src+len) to IOVA (device writes guest memory) */
#define VTD_DMA_CMD_FROM_MEMORY 2u /* copy IOVA to BAR0[src, src+len) (device reads guest memory) */

/*
 * Saved-state stream, little-endian:
 *   header (32 bytes): magic u64 @0, major u16 @8, minor u16 @10, bar_size u32 @12,
 *                      type u32 @16 (1 or 2), header_len u32 @20 (= 32), reserved u64 @24 (= 0)
 *   records: tag u32 @0, offset u32 @4, length u32 @8, reserved u32 @12, then length bytes
 *     BAR  : bytes of BAR0 at offset
 *     REGS : offset 0, length 16: PCI command u32, BAR0 address register u32, reserved u64
 *     END  : offset 0, length 4: CRC-32 (IEEE, as the kernel's crc32_le seeded with ~0 and
 *            inverted) of every stream byte before this record's payload
 * A save stream is header, BAR records, REGS, END. RESUMING rejects a wrong magic, major
 * version, bar size or type as soon as the header is written (EINVAL), a malformed record
 * or a bad CRC when that record is written (EINVAL), and a stream without END at
 * RESUMING->STOP (EINVAL).
 */
#define VTD_STREAM_MAGIC 0x4554415453445456ull /* "VTDSTATE" read as a little-endian u64 */
#define VTD_STREAM_MAJOR 1
#define VTD_STREAM_MINOR 0
#define VTD_STREAM_HEADER_LEN 32
#define VTD_RECORD_HEADER_LEN 16
#define VTD_TAG_BAR 1
#define VTD_TAG_REGS 2
#define VTD_TAG_END 3
#define VTD_REGS_LEN 16

/*
 * sysfs test hooks under /sys/bus/mdev/devices/<uuid>/vfio_testdev/:
 *   bar_crc32        (read)  CRC-32 of BAR0 as 8 hex digits: compare devices from a shell
 *   fill             (write) a u32 seed fills BAR0 from VTD_DATA_OFFSET with xorshift32 words
 *   migration_state  (read)  current state number (enum vfio_device_mig_state)
 *   force_error      (write) 1 puts the device in ERROR; only VFIO_DEVICE_RESET leaves it
 *   fail_arc         (write) N: the N-th migration arc from now fails with EIO, leaving the
 *                    device in the last state it reached (cleared by reset)
 */

/* Pre-copy tracks BAR0 writes in blocks of this many bytes and re-sends dirty blocks. */
#define VTD_DIRTY_BLOCK 256

#endif
