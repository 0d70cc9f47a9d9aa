// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-smoke: exercises the real kernel VFIO interface inside the test guest, against
 * QEMU's edu device on vfio-pci and against vfio_testdev mdevs. It proves the guest harness
 * and the test module, and records the kernel's actual behaviour (errnos, flags, bitmaps)
 * as "note:" lines so the userspace engine's mock can be compared with it.
 *
 * Environment (set by the guest's /init): VFIO_TEST_EDU=<BDF>, VFIO_TEST_MDEV=<uuid>,<uuid>
 * (two vfio_testdev-1 devices), VFIO_TEST_MDEV_FOREIGN=<uuid> (a vfio_testdev-2 device).
 * Prints "ok"/"FAIL" per check and a final "N passed, M failed" line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "../../vfio-test-device/vfio_testdev_abi.h"

/* Definitions newer than the build machine's 6.1 uAPI header. */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif
#define ST_ERROR 0
#define ST_STOP 1
#define ST_RUNNING 2
#define ST_STOP_COPY 3
#define ST_RESUMING 4
#define ST_RUNNING_P2P 5
#define ST_PRE_COPY 6
#define ST_PRE_COPY_P2P 7
#define FEATURE_MIG_DATA_SIZE 9
#define MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
struct precopy_info {
	uint32_t argsz, flags;
	uint64_t initial_bytes, dirty_bytes;
};

static const char *state_names[] = { "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING",
				     "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P" };
static const char *sname(uint32_t s) { return s < 8 ? state_names[s] : "?"; }

static int passed, failed;
static bool precopy_kernel; /* kernel >= 6.2 */

static void check_result(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf(ok ? "ok   " : "FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* the condition is evaluated before the message arguments, which often print its results */
#define check(cond, ...)                             \
	do {                                         \
		bool check_ok_ = (cond);             \
		check_result(check_ok_, __VA_ARGS__); \
	} while (0)

static void note(const char *fmt, ...)
{
	va_list ap;

	printf("note: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static const char *ename(int err)
{
	static char buf[32];

	switch (err) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ESPIPE: return "ESPIPE";
	case EBADF: return "EBADF";
	case EPERM: return "EPERM";
	case ENOMSG: return "ENOMSG";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EFAULT: return "EFAULT";
	case E2BIG: return "E2BIG";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case ENXIO: return "ENXIO";
	case EIO: return "EIO";
	}
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

/* ioctl returning -errno on failure */
static long xioctl(int fd, unsigned long req, void *arg)
{
	long r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

/* ------------------------------------------------------------------ VFIO plumbing */

static int open_group(const char *sysdev)
{
	char link[PATH_MAX], target[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n;
	const char *base;
	int fd;

	snprintf(link, sizeof(link), "%s/iommu_group", sysdev);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	base = strrchr(target, '/');
	snprintf(path, sizeof(path), "/dev/vfio/%s", base ? base + 1 : target);
	fd = open(path, O_RDWR);
	return fd < 0 ? -errno : fd;
}

static int attach_group(int group, int container)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };

	if (xioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
		return -1;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -2;
	return (int)xioctl(group, VFIO_GROUP_SET_CONTAINER, &container);
}

static long map_dma(int container, void *vaddr, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr, .iova = iova, .size = size,
	};

	return xioctl(container, VFIO_IOMMU_MAP_DMA, &map);
}

static long unmap_dma(int container, uint64_t iova, uint64_t size, uint64_t *bitmap,
		      size_t bitmap_bytes)
{
	struct {
		struct vfio_iommu_type1_dma_unmap unmap;
		struct vfio_bitmap bitmap;
	} u = { 0 };
	long r;

	u.unmap.argsz = bitmap ? sizeof(u) : sizeof(u.unmap);
	u.unmap.flags = bitmap ? VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP : 0;
	u.unmap.iova = iova;
	u.unmap.size = size;
	if (bitmap) {
		u.bitmap.pgsize = 4096;
		u.bitmap.size = bitmap_bytes;
		u.bitmap.data = (__u64 *)bitmap;
	}
	r = xioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);
	return r < 0 ? r : (long)u.unmap.size;
}

static long dirty_ctl(int container, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d), .flags = flag };

	return xioctl(container, VFIO_IOMMU_DIRTY_PAGES, &d);
}

static long dirty_get(int container, uint64_t iova, uint64_t size, uint64_t *bitmap,
		      size_t bytes)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get g;
	} q = { 0 };

	memset(bitmap, 0, bytes);
	q.d.argsz = sizeof(q);
	q.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	q.g.iova = iova;
	q.g.size = size;
	q.g.bitmap.pgsize = 4096;
	q.g.bitmap.size = bytes;
	q.g.bitmap.data = (__u64 *)bitmap;
	return xioctl(container, VFIO_IOMMU_DIRTY_PAGES, &q);
}

static int popcount_bits(const uint64_t *bm, int nbits)
{
	int i, n = 0;

	for (i = 0; i < nbits; i++)
		n += (bm[i / 64] >> (i % 64)) & 1;
	return n;
}

static bool bit(const uint64_t *bm, int i) { return (bm[i / 64] >> (i % 64)) & 1; }

static long feature(int dev, uint32_t flags, void *payload, size_t len)
{
	uint64_t buf[8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;
	long r;

	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	r = xioctl(dev, VFIO_DEVICE_FEATURE, f);
	if (len)
		memcpy(payload, f->data, len);
	return r;
}

/* SET a migration state; on success *fd is the returned data_fd (-1 if none). */
static long mig_set(int dev, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state s = { .device_state = state, .data_fd = -2 };
	long r = feature(dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s,
			 sizeof(s));

	if (fd)
		*fd = s.data_fd;
	return r;
}

static long mig_get(int dev)
{
	struct vfio_device_feature_mig_state s = { .data_fd = -2 };
	long r = feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s,
			 sizeof(s));

	return r < 0 ? r : (long)s.device_state;
}

static long device_reset(int dev) { return xioctl(dev, VFIO_DEVICE_RESET, NULL); }

struct region {
	uint64_t offset, size;
	uint32_t flags;
};

static long region_info(int dev, uint32_t index, struct region *r)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };
	long ret = xioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &info);

	if (ret < 0)
		return ret;
	r->offset = info.offset;
	r->size = info.size;
	r->flags = info.flags;
	return 0;
}

/* ------------------------------------------------------------------ test device access */

struct tdev {
	const char *uuid;
	int group, fd;
	struct region bar, cfg;
};

static uint32_t treg(struct tdev *t, uint32_t off)
{
	uint32_t v = 0xdeadbeef;

	if (pread(t->fd, &v, 4, t->bar.offset + off) != 4)
		return 0xffffffff;
	return v;
}

static bool tset(struct tdev *t, uint32_t off, uint32_t v)
{
	return pwrite(t->fd, &v, 4, t->bar.offset + off) == 4;
}

static bool tbar_read(struct tdev *t, void *buf, size_t len)
{
	return pread(t->fd, buf, len, t->bar.offset) == (ssize_t)len;
}

/* Run one DMA command; returns the status register (0 = done, else an errno). */
static uint32_t tdma(struct tdev *t, uint32_t cmd, uint32_t bar_off, uint64_t iova, uint32_t len)
{
	tset(t, VTD_REG_DMA_SRC, bar_off);
	tset(t, VTD_REG_DMA_LEN, len);
	tset(t, VTD_REG_DMA_IOVA_LO, (uint32_t)iova);
	tset(t, VTD_REG_DMA_IOVA_HI, (uint32_t)(iova >> 32));
	tset(t, VTD_REG_DMA_CMD, cmd);
	return treg(t, VTD_REG_DMA_STATUS);
}

static void tfill(struct tdev *t, uint32_t seed)
{
	size_t n = t->bar.size - VTD_DATA_OFFSET, i;
	uint8_t *buf = malloc(n);

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = seed >> 16;
	}
	pwrite(t->fd, buf, n, t->bar.offset + VTD_DATA_OFFSET);
	free(buf);
}

static bool tsysfs_write(struct tdev *t, const char *attr, const char *val)
{
	char path[PATH_MAX];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/vfio_testdev/%s", t->uuid, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

static bool tsysfs_read(struct tdev *t, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/vfio_testdev/%s", t->uuid, attr);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	return true;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return ~c;
}

static size_t stream_size(size_t bar) { return 32 + 16 + bar + 16 + 16 + 16 + 4; }

/* Read a save fd until EOF (0). Returns bytes, or -errno of the failing read. */
static long read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n < 4096 ? cap - n : 4096);

		if (r < 0)
			return -errno;
		if (r == 0)
			return n;
		n += r;
		if (n == cap)
			return n;
	}
}

/* -> RESUMING, write in chunks, -> target. Returns 0, or -errno of the first failure. */
static long load_stream(struct tdev *t, const uint8_t *buf, size_t len, size_t chunk,
			uint32_t target, int *write_errno, int *set_errno)
{
	int fd;
	size_t off = 0;
	long r;

	*write_errno = *set_errno = 0;
	r = mig_set(t->fd, ST_RESUMING, &fd);
	if (r < 0) {
		*set_errno = -r;
		return r;
	}
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		ssize_t w = write(fd, buf + off, n);

		if (w < 0) {
			*write_errno = errno;
			break;
		}
		off += w;
	}
	r = mig_set(t->fd, target, NULL);
	if (r < 0)
		*set_errno = -r;
	close(fd);
	return *write_errno ? -*write_errno : r;
}

/* ------------------------------------------------------------------ edu */

static void test_edu(const char *bdf)
{
	char sys[PATH_MAX];
	int container, group, dev;
	long r;

	printf("== edu %s through vfio-pci\n", bdf);
	snprintf(sys, sizeof(sys), "/sys/bus/pci/devices/%s", bdf);
	container = open("/dev/vfio/vfio", O_RDWR);
	check(container >= 0, "open /dev/vfio/vfio");
	check(xioctl(container, VFIO_GET_API_VERSION, NULL) == VFIO_API_VERSION,
	      "VFIO_GET_API_VERSION == 0");
	check(ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0,
	      "CHECK_EXTENSION(TYPE1v2) supported");
	note("CHECK_EXTENSION: TYPE1=%d TYPE1v2=%d DMA_CC=%d NOIOMMU=%d UNMAP_ALL=%d UPDATE_VADDR=%d",
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU),
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU),
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU),
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU),
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL),
	     ioctl(container, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR));
	r = ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
	note("SET_IOMMU before any group: %s", r < 0 ? ename(errno) : "0");

	group = open_group(sys);
	check(group >= 0, "open the edu group (%s)", group < 0 ? ename(-group) : "ok");
	{
		struct vfio_group_status status = { .argsz = sizeof(status) };

		check(xioctl(group, VFIO_GROUP_GET_STATUS, &status) == 0 &&
			      (status.flags & VFIO_GROUP_FLAGS_VIABLE) &&
			      !(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
		      "group viable, no container yet (flags 0x%x)", status.flags);
		r = xioctl(group, VFIO_GROUP_GET_DEVICE_FD, (void *)bdf);
		note("GET_DEVICE_FD before SET_CONTAINER: %s", r < 0 ? ename(-r) : "fd");
		if (r >= 0)
			close(r);
		check(attach_group(group, container) == 0, "GROUP_SET_CONTAINER");
		status.argsz = sizeof(status);
		xioctl(group, VFIO_GROUP_GET_STATUS, &status);
		check(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET, "CONTAINER_SET flag after attach");
	}
	check(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "SET_IOMMU(TYPE1v2)");

	/* IOMMU_GET_INFO: a short buffer first, as an engine would */
	{
		struct vfio_iommu_type1_info small = { .argsz = sizeof(small) };
		uint8_t buf[4096] = { 0 };
		struct vfio_iommu_type1_info *info = (void *)buf;
		uint32_t off;
		bool mig = false, avail = false, ranges = false;

		check(xioctl(container, VFIO_IOMMU_GET_INFO, &small) == 0 &&
			      (small.flags & VFIO_IOMMU_INFO_CAPS) && small.argsz > sizeof(small) &&
			      small.cap_offset == 0,
		      "IOMMU_GET_INFO with a 24-byte buffer asks for %u bytes, cap_offset 0",
		      small.argsz);
		note("IOMMU_GET_INFO: flags 0x%x iova_pgsizes 0x%llx needed argsz %u", small.flags,
		     (unsigned long long)small.iova_pgsizes, small.argsz);
		info->argsz = sizeof(buf);
		check(xioctl(container, VFIO_IOMMU_GET_INFO, info) == 0 && info->cap_offset,
		      "IOMMU_GET_INFO with room for capabilities (cap_offset %u)", info->cap_offset);
		for (off = info->cap_offset; off && off < sizeof(buf);) {
			struct vfio_info_cap_header *h = (void *)(buf + off);

			if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
				struct vfio_iommu_type1_info_cap_migration *m = (void *)h;

				mig = m->pgsize_bitmap == 4096 &&
				      m->max_dirty_bitmap_size == 268435456;
				note("cap MIGRATION @%u v%u flags 0x%x pgsize_bitmap 0x%llx max_dirty_bitmap_size %llu",
				     off, h->version, m->flags, (unsigned long long)m->pgsize_bitmap,
				     (unsigned long long)m->max_dirty_bitmap_size);
			} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
				struct vfio_iommu_type1_info_dma_avail *a = (void *)h;

				avail = a->avail > 0;
				note("cap DMA_AVAIL @%u v%u avail %u", off, h->version, a->avail);
			} else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				struct vfio_iommu_type1_info_cap_iova_range *ir = (void *)h;
				uint32_t i;

				ranges = ir->nr_iovas > 0;
				for (i = 0; i < ir->nr_iovas; i++)
					note("cap IOVA_RANGE @%u v%u range %u: 0x%llx..0x%llx", off,
					     h->version, i, (unsigned long long)ir->iova_ranges[i].start,
					     (unsigned long long)ir->iova_ranges[i].end);
			} else {
				note("cap id %u @%u", h->id, off);
			}
			off = h->next;
		}
		check(mig, "MIGRATION capability: pgsize 4096, max bitmap 256 MiB");
		check(avail, "DMA_AVAIL capability present");
		check(ranges, "IOVA_RANGE capability present");
	}

	r = xioctl(group, VFIO_GROUP_GET_DEVICE_FD, (void *)"0000:ff:1f.7");
	check(r < 0, "GET_DEVICE_FD of a name not in the group fails (%s)", ename(-r));
	dev = (int)xioctl(group, VFIO_GROUP_GET_DEVICE_FD, (void *)bdf);
	check(dev >= 0, "GET_DEVICE_FD(%s)", bdf);
	{
		struct vfio_device_info info = { .argsz = sizeof(info) };
		struct region bar0 = { 0 }, cfg = { 0 };
		uint16_t ids[2] = { 0 };

		check(xioctl(dev, VFIO_DEVICE_GET_INFO, &info) == 0 &&
			      (info.flags & VFIO_DEVICE_FLAGS_PCI) && info.num_regions >= 9,
		      "DEVICE_GET_INFO: PCI, %u regions, %u irqs, flags 0x%x", info.num_regions,
		      info.num_irqs, info.flags);
		check(region_info(dev, VFIO_PCI_BAR0_REGION_INDEX, &bar0) == 0 &&
			      bar0.size == 1 << 20,
		      "BAR0 region: size 0x%llx flags 0x%x offset 0x%llx",
		      (unsigned long long)bar0.size, bar0.flags, (unsigned long long)bar0.offset);
		check(region_info(dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg) == 0 &&
			      pread(dev, ids, 4, cfg.offset) == 4 && ids[0] == 0x1234 &&
			      ids[1] == 0x11e8,
		      "config space reads vendor 0x%04x device 0x%04x", ids[0], ids[1]);
		r = region_info(dev, 1000, &cfg);
		note("GET_REGION_INFO index 1000: %s", ename(-r));

		/* migration and DMA logging are absent on edu */
		r = feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
			    (uint64_t[1]){ 0 }, 8);
		check(r == -ENOTTY, "edu MIGRATION feature GET: %s (expect ENOTTY)", ename(-r));
		r = feature(dev, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
				    VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0);
		check(r == -ENOTTY, "edu MIGRATION feature PROBE: %s (expect ENOTTY)", ename(-r));
		r = feature(dev, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
				    VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0);
		check(r == -ENOTTY, "edu DMA_LOGGING_START PROBE: %s (expect ENOTTY)", ename(-r));
		r = mig_get(dev);
		note("edu MIG_DEVICE_STATE GET: %s", r < 0 ? ename(-r) : sname(r));
		r = feature(dev, VFIO_DEVICE_FEATURE_GET | 200, (uint64_t[1]){ 0 }, 8);
		note("edu unknown feature index 200 GET: %s", ename(-r));
		r = feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET |
				    VFIO_DEVICE_FEATURE_MIGRATION, (uint64_t[1]){ 0 }, 8);
		note("edu feature GET|SET without PROBE: %s", ename(-r));

		/* DMA map/unmap and type1 dirty tracking with a real-IOMMU group */
		{
			const uint64_t iova = 0x100000, size = 16 * 4096;
			uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			uint64_t bm[4];
			uint32_t v;
			int i;

			memset(mem, 0, size);
			check(map_dma(container, mem, iova, size) == 0, "MAP_DMA 64 KiB at 0x%llx",
			      (unsigned long long)iova);
			r = map_dma(container, mem, iova + 4096, 4096);
			check(r == -EEXIST, "overlapping MAP_DMA: %s (expect EEXIST)", ename(-r));
			r = dirty_get(container, iova, size, bm, sizeof(bm));
			note("DIRTY_PAGES GET_BITMAP before START: %s", ename(-r));
			check(dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START) == 0,
			      "DIRTY_PAGES START");
			check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
				      popcount_bits(bm, 16) == 16,
			      "GET_BITMAP before any DMA: %d of 16 pages dirty (real IOMMU: all)",
			      popcount_bits(bm, 16));
			check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
				      popcount_bits(bm, 16) == 16,
			      "second GET_BITMAP: still all 16 dirty");
			r = dirty_get(container, iova + 4096, 4096, bm, sizeof(bm));
			note("GET_BITMAP that bisects a mapping: %s", ename(-r));
			check(dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START) == 0,
			      "a second DIRTY_PAGES START succeeds");
			r = dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
						 VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
			check(r == -EINVAL, "DIRTY_PAGES with two flags: %s", ename(-r));
			{
				struct {
					struct vfio_iommu_type1_dirty_bitmap d;
					struct vfio_iommu_type1_dirty_bitmap_get g;
				} q;
				struct { const char *what; uint64_t iova, size, pgsize, bytes; } bad[] = {
					{ "page size 8192", iova, size, 8192, 8 },
					{ "bitmap size 0", iova, size, 4096, 0 },
					{ "unaligned iova", iova + 1, size, 4096, 8 },
					{ "size not a page multiple", iova, size - 100, 4096, 8 },
				};
				size_t k;

				for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
					memset(&q, 0, sizeof(q));
					q.d.argsz = sizeof(q);
					q.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
					q.g.iova = bad[k].iova;
					q.g.size = bad[k].size;
					q.g.bitmap.pgsize = bad[k].pgsize;
					q.g.bitmap.size = bad[k].bytes;
					q.g.bitmap.data = (__u64 *)bm;
					r = xioctl(container, VFIO_IOMMU_DIRTY_PAGES, &q);
					check(r == -EINVAL, "GET_BITMAP with %s: %s", bad[k].what, ename(-r));
				}
				memset(&q, 0, sizeof(q));
				q.d.argsz = sizeof(q.d) + 8;
				q.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
				r = xioctl(container, VFIO_IOMMU_DIRTY_PAGES, &q);
				check(r == -EINVAL, "GET_BITMAP with a short argsz: %s", ename(-r));
			}
			r = map_dma(container, mem, iova + size, 100);
			check(r == -EINVAL, "MAP_DMA of 100 bytes: %s", ename(-r));
			r = map_dma(container, mem, 0xfee00000ull, 4096);
			note("MAP_DMA inside the reserved MSI window 0xfee00000: %s", ename(-r));
			if (r == 0)
				unmap_dma(container, 0xfee00000ull, 4096, NULL, 0);
			r = unmap_dma(container, iova, 4096, NULL, 0);
			check(r == -EINVAL, "UNMAP_DMA that bisects a mapping: %s", ename(-r));

			/* edu DMA through the IOMMU: RAM -> edu buffer -> RAM */
			uint16_t cmd;

			pread(dev, &cmd, 2, cfg.offset + 4);
			cmd |= 0x6; /* memory space + bus master */
			pwrite(dev, &cmd, 2, cfg.offset + 4);
			for (i = 0; i < 1024; i++)
				mem[i] = i * 7 + 3;
			v = (uint32_t)iova;
			pwrite(dev, &v, 4, bar0.offset + 0x80);
			v = 0x40000;
			pwrite(dev, &v, 4, bar0.offset + 0x88);
			v = 1024;
			pwrite(dev, &v, 4, bar0.offset + 0x90);
			v = 1; /* start, RAM -> edu */
			pwrite(dev, &v, 4, bar0.offset + 0x98);
			for (i = 0; i < 300; i++) {
				pread(dev, &v, 4, bar0.offset + 0x98);
				if (!(v & 1))
					break;
				usleep(10000);
			}
			v = 0x40000;
			pwrite(dev, &v, 4, bar0.offset + 0x80);
			v = (uint32_t)iova + 8192;
			pwrite(dev, &v, 4, bar0.offset + 0x88);
			v = 1024;
			pwrite(dev, &v, 4, bar0.offset + 0x90);
			v = 3; /* start, edu -> RAM */
			pwrite(dev, &v, 4, bar0.offset + 0x98);
			for (i = 0; i < 300; i++) {
				pread(dev, &v, 4, bar0.offset + 0x98);
				if (!(v & 1))
					break;
				usleep(10000);
			}
			check(memcmp(mem, mem + 8192, 1024) == 0,
			      "edu DMA through the emulated IOMMU copies 1 KiB RAM -> edu -> RAM");

			memset(bm, 0, sizeof(bm));
			r = unmap_dma(container, iova, size, bm, sizeof(bm));
			check(r == (long)size && popcount_bits(bm, 16) == 16,
			      "UNMAP_DMA with dirty bitmap: %ld bytes, %d of 16 dirty", r,
			      popcount_bits(bm, 16));
			check(dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) == 0,
			      "DIRTY_PAGES STOP");
			r = unmap_dma(container, iova, size, NULL, 0);
			check(r == 0, "UNMAP_DMA of an unmapped range succeeds with size 0 (%ld)", r);
			munmap(mem, size);
		}
	}
	close(dev);
	close(group);
	close(container);
}

/* ------------------------------------------------------------------ test device */

static int nstates;
static uint32_t states[7];

static bool is_saving(uint32_t s)
{
	return s == ST_STOP_COPY || s == ST_PRE_COPY || s == ST_PRE_COPY_P2P;
}

/* Does the last arc into `to` coming from `from` open a new session (return an fd)? */
static bool opens_session(uint32_t from, uint32_t to)
{
	if (to == ST_RESUMING)
		return true;
	if (!is_saving(to))
		return false;
	return !is_saving(from);
}

static bool tdev_attach(struct tdev *t, int container)
{
	char sys[PATH_MAX];
	int group;

	snprintf(sys, sizeof(sys), "/sys/bus/mdev/devices/%s", t->uuid);
	group = open_group(sys);
	t->group = group;
	return group >= 0 && attach_group(group, container) == 0;
}

/* The container needs its IOMMU type before a device fd can be had. */
static bool tdev_open(struct tdev *t)
{
	t->fd = (int)xioctl(t->group, VFIO_GROUP_GET_DEVICE_FD, (void *)t->uuid);
	if (t->fd < 0)
		return false;
	return region_info(t->fd, VFIO_PCI_BAR0_REGION_INDEX, &t->bar) == 0 &&
	       region_info(t->fd, VFIO_PCI_CONFIG_REGION_INDEX, &t->cfg) == 0;
}

static void test_state_pairs(struct tdev *t, const uint8_t *stream, size_t slen)
{
	int i, j, npairs = 0, ok = 0;

	for (i = 0; i < nstates; i++) {
		for (j = 0; j < nstates; j++) {
			uint32_t from = states[i], to = states[j];
			int fd1 = -1, fd2 = -1;
			long r;
			bool good = true;
			char why[160] = "";

			if (from == to)
				continue;
			if (from == ST_STOP_COPY && (to == ST_PRE_COPY || to == ST_PRE_COPY_P2P))
				continue; /* not allowed; may not even terminate in the kernel */
			npairs++;
			device_reset(t->fd);
			r = mig_set(t->fd, from, &fd1);
			if (r < 0 || mig_get(t->fd) != (long)from) {
				snprintf(why, sizeof(why), "reaching %s: %s", sname(from), ename(-r));
				good = false;
			}
			if (good && opens_session(ST_RUNNING, from) != (fd1 >= 0)) {
				snprintf(why, sizeof(why), "fd %d entering %s", fd1, sname(from));
				good = false;
			}
			if (good && from == ST_RESUMING) {
				/* leaving RESUMING validates the stream: give it a complete one */
				if (write(fd1, stream, slen) != (ssize_t)slen) {
					snprintf(why, sizeof(why), "writing the stream: %s", ename(errno));
					good = false;
				}
			}
			if (good) {
				r = mig_set(t->fd, to, &fd2);
				if (r < 0) {
					snprintf(why, sizeof(why), "SET: %s", ename(-r));
					good = false;
				} else if (mig_get(t->fd) != (long)to) {
					snprintf(why, sizeof(why), "GET says %s", sname(mig_get(t->fd)));
					good = false;
				} else if (opens_session(from, to) != (fd2 >= 0)) {
					snprintf(why, sizeof(why), "data_fd %d", fd2);
					good = false;
				}
			}
			/* a session that the move ended must be dead; one it kept must be alive */
			if (good && fd1 >= 0 && from != ST_RESUMING) {
				uint8_t b[16];
				ssize_t n = read(fd1, b, sizeof(b));
				bool alive = is_saving(to) && !opens_session(from, to);

				if (alive && n < 0 && errno == ENODEV) {
					snprintf(why, sizeof(why), "kept session is dead");
					good = false;
				} else if (!alive && !(n < 0 && errno == ENODEV)) {
					snprintf(why, sizeof(why), "ended session read: %zd %s", n,
						 n < 0 ? ename(errno) : "");
					good = false;
				}
			}
			if (good)
				ok++;
			else
				check(false, "transition %s -> %s: %s", sname(from), sname(to), why);
			if (fd1 >= 0)
				close(fd1);
			if (fd2 >= 0)
				close(fd2);
		}
	}
	check(ok == npairs, "%d of %d legal state pairs reach their target with the right data_fd",
	      ok, npairs);
	device_reset(t->fd);
}

static void test_mdev(struct tdev *t1, struct tdev *t2, struct tdev *t3)
{
	int container, fd;
	long r;
	uint64_t flags = 0;
	size_t ssize = stream_size(VTD_TYPE1_BAR_SIZE);
	uint8_t *stream = calloc(1, 4 * ssize), *s2 = calloc(1, 4 * ssize);
	uint8_t *bar1 = calloc(1, VTD_TYPE1_BAR_SIZE), *bar2 = calloc(1, VTD_TYPE1_BAR_SIZE);
	long slen;

	printf("== vfio_testdev mdevs %s %s (foreign %s)\n", t1->uuid, t2->uuid, t3->uuid);
	container = open("/dev/vfio/vfio", O_RDWR);
	check(tdev_attach(t1, container) && tdev_attach(t2, container) && tdev_attach(t3, container),
	      "attach the three mdev groups to one container");
	check(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0,
	      "SET_IOMMU(TYPE1v2) on a container of mdev groups");
	check(tdev_open(t1) && tdev_open(t2) && tdev_open(t3), "device fds and regions of the mdevs");
	if (t1->bar.size != VTD_TYPE1_BAR_SIZE || t3->bar.size != VTD_TYPE2_BAR_SIZE) {
		check(false, "mdev BAR sizes 0x%llx 0x%llx", (unsigned long long)t1->bar.size,
		      (unsigned long long)t3->bar.size);
		return;
	}

	{
		struct vfio_device_info info = { .argsz = sizeof(info) };
		uint16_t ids[2] = { 0 };

		check(xioctl(t1->fd, VFIO_DEVICE_GET_INFO, &info) == 0 &&
			      info.flags == (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET) &&
			      info.num_regions == 9,
		      "DEVICE_GET_INFO: flags 0x%x, %u regions, %u irqs", info.flags,
		      info.num_regions, info.num_irqs);
		check(t1->bar.size == VTD_TYPE1_BAR_SIZE && t3->bar.size == VTD_TYPE2_BAR_SIZE,
		      "BAR0 sizes 0x%llx and 0x%llx", (unsigned long long)t1->bar.size,
		      (unsigned long long)t3->bar.size);
		check(pread(t1->fd, ids, 4, t1->cfg.offset) == 4 && ids[0] == VTD_PCI_VENDOR_ID &&
			      ids[1] == VTD_PCI_DEVICE_ID,
		      "config space: %04x:%04x", ids[0], ids[1]);
		check(treg(t1, VTD_REG_ID) == VTD_ID_VALUE, "BAR0 ID register 0x%08x",
		      treg(t1, VTD_REG_ID));
	}

	/* migration feature */
	r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, &flags, 8);
	{
		uint64_t want = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				(precopy_kernel ? VFIO_MIGRATION_PRE_COPY : 0);

		check(r == 0 && flags == want, "MIGRATION flags 0x%llx (expect 0x%llx)",
		      (unsigned long long)flags, (unsigned long long)want);
	}
	nstates = 0;
	states[nstates++] = ST_STOP;
	states[nstates++] = ST_RUNNING;
	states[nstates++] = ST_STOP_COPY;
	states[nstates++] = ST_RESUMING;
	states[nstates++] = ST_RUNNING_P2P;
	if (flags & VFIO_MIGRATION_PRE_COPY) {
		states[nstates++] = ST_PRE_COPY;
		states[nstates++] = ST_PRE_COPY_P2P;
	}
	check(feature(t1->fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
				      VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      NULL, 0) == 0,
	      "PROBE GET|SET MIG_DEVICE_STATE");
	r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIGRATION, &flags, 8);
	note("SET of the GET-only MIGRATION feature: %s", ename(-r));
	r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		    (uint8_t[4]){ 0 }, 4);
	note("MIG_DEVICE_STATE GET with a 4-byte payload: %s", ename(-r));
	{
		uint64_t size = 0;

		r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | FEATURE_MIG_DATA_SIZE, &size, 8);
		if (precopy_kernel)
			check(r == 0 && size == ssize, "MIG_DATA_SIZE %llu (expect %zu)",
			      (unsigned long long)size, ssize);
		else
			note("MIG_DATA_SIZE on 6.1: %s", ename(-r));
	}
	check(mig_get(t1->fd) == ST_RUNNING, "initial state RUNNING");
	{
		struct vfio_device_feature_mig_state s = { .data_fd = 77 };

		r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			    &s, sizeof(s));
		check(r == 0 && s.data_fd == -1, "GET sets data_fd to -1 (%d)", s.data_fd);
		s.device_state = ST_ERROR;
		r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			    &s, sizeof(s));
		check(r == -EINVAL, "SET ERROR: %s (expect EINVAL); struct says state %u fd %d",
		      ename(-r), s.device_state, s.data_fd);
		r = mig_set(t1->fd, 8, NULL);
		check(r == -EINVAL, "SET state 8: %s (expect EINVAL)", ename(-r));
		if (!precopy_kernel) {
			r = mig_set(t1->fd, ST_PRE_COPY, NULL);
			check(r == -EINVAL, "SET PRE_COPY without the PRE_COPY flag: %s", ename(-r));
		}
		check(mig_get(t1->fd) == ST_RUNNING, "still RUNNING after refused SETs");
	}

	/* save -> reset -> resume on the same device */
	tfill(t1, 1234);
	tset(t1, VTD_REG_SCRATCH, 0xa5a5f00d);
	{
		uint16_t cmd = 0x6;

		pwrite(t1->fd, &cmd, 2, t1->cfg.offset + 4);
	}
	tbar_read(t1, bar1, VTD_TYPE1_BAR_SIZE);
	r = mig_set(t1->fd, ST_STOP, &fd);
	check(r == 0 && fd == -1, "RUNNING -> STOP, no data_fd");
	r = mig_set(t1->fd, ST_STOP_COPY, &fd);
	check(r == 0 && fd >= 0, "STOP -> STOP_COPY returns a data_fd (%d)", fd);
	{
		int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
		uint8_t b[8];
		struct epoll_event ev = { .events = EPOLLIN };
		int ep = epoll_create1(0);

		check((fl & O_ACCMODE) == O_RDONLY && (fdfl & FD_CLOEXEC),
		      "save fd is O_RDONLY and close-on-exec");
		r = lseek(fd, 0, SEEK_CUR);
		check(r < 0 && errno == ESPIPE, "lseek on the save fd: %s", ename(errno));
		r = pread(fd, b, 8, 0);
		check(r < 0 && errno == ESPIPE, "pread on the save fd: %s", ename(errno));
		r = write(fd, b, 8);
		check(r < 0 && errno == EBADF, "write on the save fd: %s", ename(errno));
		r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		note("epoll_ctl ADD of the save fd: %s", r < 0 ? ename(errno) : "0");
		close(ep);
		r = xioctl(fd, MIG_GET_PRECOPY_INFO,
			   &(struct precopy_info){ .argsz = sizeof(struct precopy_info) });
		check(r == (precopy_kernel ? -EINVAL : -ENOTTY),
		      "PRECOPY_INFO on a STOP_COPY fd: %s (expect %s)", ename(-r),
		      precopy_kernel ? "EINVAL" : "ENOTTY");
	}
	slen = read_all(fd, stream, 4 * ssize);
	check(slen == (long)ssize, "STOP_COPY stream read to EOF: %ld bytes (expect %zu)", slen,
	      ssize);
	{
		uint8_t b[8];

		r = read(fd, b, 8);
		check(r == 0, "read after EOF in STOP_COPY returns 0 again (%ld)", r);
	}
	{
		/* Whether splice(2) could move device state without a copy: at EOF a file that
		 * supports it returns 0; one that does not, EINVAL. */
		int p[2];

		if (pipe(p) == 0) {
			r = splice(fd, NULL, p[1], NULL, 4096, SPLICE_F_NONBLOCK);
			note("splice from the save fd at EOF: %s", r < 0 ? ename(errno) : "0 (splice supported)");
			close(p[0]);
			close(p[1]);
		}
	}
	check(mig_get(t1->fd) == ST_STOP_COPY, "still STOP_COPY after reading");
	r = mig_set(t1->fd, ST_STOP, NULL);
	check(r == 0, "STOP_COPY -> STOP");
	{
		uint8_t b[8];

		r = read(fd, b, 8);
		check(r < 0 && errno == ENODEV, "read on the ended save fd: %s (expect ENODEV)",
		      r < 0 ? ename(errno) : "data");
		r = xioctl(fd, MIG_GET_PRECOPY_INFO,
			   &(struct precopy_info){ .argsz = sizeof(struct precopy_info) });
		note("PRECOPY_INFO on an ended save fd: %s", ename(-r));
	}
	close(fd);
	check(device_reset(t1->fd) == 0 && mig_get(t1->fd) == ST_RUNNING,
	      "DEVICE_RESET from STOP -> RUNNING");
	tbar_read(t1, bar2, VTD_TYPE1_BAR_SIZE);
	check(memcmp(bar1, bar2, VTD_TYPE1_BAR_SIZE) != 0 &&
		      treg(t1, VTD_REG_SCRATCH) == 0,
	      "reset cleared the device memory");
	r = mig_set(t1->fd, ST_RESUMING, &fd);
	check(r == 0 && fd >= 0, "RUNNING -> RESUMING returns a data_fd");
	{
		int fl = fcntl(fd, F_GETFL);
		uint8_t b[8];
		size_t off = 0;

		check((fl & O_ACCMODE) == O_WRONLY, "resume fd is O_WRONLY");
		r = read(fd, b, 8);
		check(r < 0 && errno == EBADF, "read on the resume fd: %s", ename(errno));
		r = pwrite(fd, stream, 8, 0);
		check(r < 0 && errno == ESPIPE, "pwrite on the resume fd: %s", ename(errno));
		while (off < (size_t)slen) { /* odd chunk sizes: boundaries must not matter */
			size_t n = (size_t)slen - off < 999 ? (size_t)slen - off : 999;

			if (write(fd, stream + off, n) != (ssize_t)n)
				break;
			off += n;
		}
		check(off == (size_t)slen, "resume stream written in 999-byte chunks");
	}
	r = mig_set(t1->fd, ST_RUNNING, NULL);
	check(r == 0 && mig_get(t1->fd) == ST_RUNNING, "RESUMING -> RUNNING (validates, loads)");
	close(fd);
	tbar_read(t1, bar2, VTD_TYPE1_BAR_SIZE);
	check(memcmp(bar1, bar2, VTD_TYPE1_BAR_SIZE) == 0, "BAR0 restored after save/reset/load");
	{
		uint16_t cmd = 0;

		pread(t1->fd, &cmd, 2, t1->cfg.offset + 4);
		check(cmd == 0x6, "PCI command register restored (0x%x)", cmd);
	}

	/* load the same stream into a second device of the same type */
	{
		int we, se;

		r = load_stream(t2, stream, slen, 4096, ST_RUNNING, &we, &se);
		tbar_read(t2, bar2, VTD_TYPE1_BAR_SIZE);
		check(r == 0 && memcmp(bar1, bar2, VTD_TYPE1_BAR_SIZE) == 0,
		      "stream of device 1 loads into device 2 and BAR0 matches");
	}

	/* a BAR write after the STOP_COPY snapshot still reaches the stream */
	{
		int sfd, we, se;
		uint8_t *late = calloc(1, 4 * ssize);
		uint32_t v = 0xc0ffee00;
		long m;

		mig_set(t1->fd, ST_STOP_COPY, &sfd);
		pwrite(t1->fd, &v, 4, t1->bar.offset + 0x3000);
		m = read_all(sfd, late, 4 * ssize);
		tbar_read(t1, bar1, VTD_TYPE1_BAR_SIZE);
		mig_set(t1->fd, ST_STOP, NULL);
		close(sfd);
		r = load_stream(t2, late, m, 4096, ST_RUNNING, &we, &se);
		tbar_read(t2, bar2, VTD_TYPE1_BAR_SIZE);
		check(m == (long)(ssize + 16 + VTD_DIRTY_BLOCK) && r == 0 &&
			      memcmp(bar1, bar2, VTD_TYPE1_BAR_SIZE) == 0,
		      "a BAR write in STOP_COPY is sent as a dirty block (%ld bytes) and loads", m);
		mig_set(t1->fd, ST_RUNNING, NULL);
		free(late);
	}

	/* refusal of corrupted and foreign streams */
	{
		int we, se;
		struct { const char *what; size_t at; uint8_t xor; } bad[] = {
			{ "wrong magic", 0, 0x01 },
			{ "wrong major version", 8, 0x02 },
			{ "wrong BAR size", 13, 0x10 },
			{ "corrupted BAR byte (CRC)", 32 + 16 + 5000, 0x80 },
			{ "corrupted record tag", 32, 0x40 },
			{ "corrupted CRC", ssize - 1, 0x01 },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memcpy(s2, stream, slen);
			s2[bad[i].at] ^= bad[i].xor;
			device_reset(t2->fd);
			r = load_stream(t2, s2, slen, slen, ST_STOP, &we, &se);
			check(r < 0 && (we == EINVAL || se == EINVAL),
			      "%s refused: write %s, RESUMING->STOP %s", bad[i].what, ename(we),
			      ename(se));
			r = mig_get(t2->fd);
			note("state after refusing %s: %s", bad[i].what, sname(r));
		}
		device_reset(t2->fd);
		r = load_stream(t2, stream, slen - 24, 4096, ST_STOP, &we, &se);
		check(we == 0 && se == EINVAL, "truncated stream: writes ok, RESUMING->STOP %s",
		      ename(se));
		check(mig_get(t2->fd) == ST_RESUMING, "a failed RESUMING->STOP leaves RESUMING (%s)",
		      sname(mig_get(t2->fd)));
		r = mig_set(t2->fd, ST_RUNNING, NULL);
		note("RESUMING -> RUNNING after a failed validation: %s", ename(-r));
		check(device_reset(t2->fd) == 0 && mig_get(t2->fd) == ST_RUNNING,
		      "reset leaves the failed RESUMING");
		/* a write error poisons the session */
		{
			int rfd;

			mig_set(t2->fd, ST_RESUMING, &rfd);
			memcpy(s2, stream, slen);
			s2[0] ^= 1;
			r = write(rfd, s2, 64);
			r = write(rfd, stream, slen);
			check(r < 0 && errno == EINVAL, "writes after a refused write fail too (%s)",
			      r < 0 ? ename(errno) : "accepted");
			close(rfd);
			device_reset(t2->fd);
		}
		r = load_stream(t3, stream, slen, slen, ST_STOP, &we, &se);
		check(r < 0 && we == EINVAL, "foreign stream (16 KiB type into 64 KiB type) refused: %s",
		      ename(we));
		device_reset(t3->fd);
	}

	test_state_pairs(t1, stream, slen);

	/* test hooks: a failing arc, ERROR, and the sysfs view of BAR0 */
	{
		struct vfio_device_feature_mig_state s = { .device_state = ST_STOP_COPY, .data_fd = -2 };
		char buf[64];

		device_reset(t1->fd);
		check(tsysfs_write(t1, "fail_arc", "2"), "sysfs fail_arc=2");
		r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			    &s, sizeof(s));
		check(r == -EIO && mig_get(t1->fd) == ST_RUNNING_P2P,
		      "RUNNING -> STOP_COPY with the 2nd arc failing: %s, device left in %s", ename(-r),
		      sname(mig_get(t1->fd)));
		note("failed SET copies back device_state %s data_fd %d", sname(s.device_state),
		     s.data_fd);
		check(device_reset(t1->fd) == 0 && mig_get(t1->fd) == ST_RUNNING, "reset after the failure");
		check(tsysfs_write(t1, "force_error", "1") && mig_get(t1->fd) == ST_ERROR,
		      "sysfs force_error puts the device in ERROR");
		r = mig_set(t1->fd, ST_RUNNING, NULL);
		check(r == -EINVAL, "SET RUNNING from ERROR: %s", ename(-r));
		r = mig_set(t1->fd, ST_STOP, NULL);
		check(r == -EINVAL && mig_get(t1->fd) == ST_ERROR, "SET STOP from ERROR: %s", ename(-r));
		check(device_reset(t1->fd) == 0 && mig_get(t1->fd) == ST_RUNNING, "reset leaves ERROR");
		tsysfs_write(t1, "fill", "31337");
		tbar_read(t1, bar1, VTD_TYPE1_BAR_SIZE);
		check(tsysfs_read(t1, "bar_crc32", buf, sizeof(buf)) &&
			      strtoul(buf, NULL, 16) == crc32_ieee(bar1, VTD_TYPE1_BAR_SIZE),
		      "sysfs bar_crc32 matches BAR0 read through the device fd (%.8s)", buf);
		check(tsysfs_read(t1, "migration_state", buf, sizeof(buf)) && atoi(buf) == ST_RUNNING,
		      "sysfs migration_state %s", buf);
	}

	/* a data fd dies on reset; ERROR leaves only through reset */
	{
		uint8_t b[8];

		mig_set(t1->fd, ST_STOP_COPY, &fd);
		check(device_reset(t1->fd) == 0 && mig_get(t1->fd) == ST_RUNNING,
		      "DEVICE_RESET from STOP_COPY -> RUNNING");
		r = read(fd, b, 8);
		check(r < 0 && errno == ENODEV, "save fd after reset: %s", ename(errno));
		close(fd);
	}

	/* pre-copy */
	if (precopy_kernel) {
		struct precopy_info pi = { .argsz = sizeof(pi) };
		uint8_t *pre = calloc(1, 4 * ssize);
		size_t n = 0;
		uint8_t blk[VTD_DIRTY_BLOCK];

		device_reset(t1->fd);
		tfill(t1, 777);
		r = mig_set(t1->fd, ST_PRE_COPY, &fd);
		check(r == 0 && fd >= 0, "RUNNING -> PRE_COPY returns a data_fd");
		r = xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
		check(r == 0 && pi.initial_bytes == 32 + 16 + VTD_TYPE1_BAR_SIZE && pi.dirty_bytes == 0,
		      "PRECOPY_INFO: initial %llu dirty %llu", (unsigned long long)pi.initial_bytes,
		      (unsigned long long)pi.dirty_bytes);
		r = xioctl(fd, MIG_GET_PRECOPY_INFO, &(struct precopy_info){ .argsz = 16 });
		check(r == -EINVAL, "PRECOPY_INFO with argsz 16: %s", ename(-r));
		r = xioctl(fd, _IO(VFIO_TYPE, VFIO_BASE + 22), &pi);
		note("another ioctl number on the data fd: %s", ename(-r));
		r = read(fd, pre, 1000);
		n = r > 0 ? r : 0;
		xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
		check(r == 1000 && pi.initial_bytes == 32 + 16 + VTD_TYPE1_BAR_SIZE - 1000,
		      "initial_bytes falls as it is read (%llu)", (unsigned long long)pi.initial_bytes);
		for (;;) {
			r = read(fd, pre + n, 4096);
			if (r <= 0)
				break;
			n += r;
		}
		check(r < 0 && errno == ENOMSG && n == 32 + 16 + VTD_TYPE1_BAR_SIZE,
		      "pre-copy drained: read gives %s after %zu bytes", r < 0 ? ename(errno) : "0", n);
		xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
		check(pi.initial_bytes == 0 && pi.dirty_bytes == 0, "PRECOPY_INFO 0/0 when drained");
		memset(blk, 0x5a, sizeof(blk));
		pwrite(t1->fd, blk, sizeof(blk), t1->bar.offset + 0x1000);
		xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
		check(pi.dirty_bytes == 16 + VTD_DIRTY_BLOCK, "a BAR write while running: dirty_bytes %llu",
		      (unsigned long long)pi.dirty_bytes);
		r = read(fd, pre + n, 4096);
		check(r == 16 + VTD_DIRTY_BLOCK, "the dirty block is re-sent (%ld bytes)", r);
		n += r > 0 ? r : 0;
		{
			int none;

			r = mig_set(t1->fd, ST_PRE_COPY_P2P, &none);
			check(r == 0 && none == -1, "PRE_COPY -> PRE_COPY_P2P keeps the fd (data_fd %d)",
			      none);
			r = xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
			check(r == 0, "PRECOPY_INFO works in PRE_COPY_P2P");
		}
		close(fd);
		device_reset(t1->fd);
		free(pre);

		/* full pre-copy round trip into device 2 */
		{
			int sfd, we, se;
			uint8_t *all = calloc(1, 4 * ssize);
			size_t m = 0;

			tfill(t1, 4242);
			mig_set(t1->fd, ST_PRE_COPY, &sfd);
			for (;;) {
				r = read(sfd, all + m, 1024);
				if (r <= 0)
					break;
				m += r;
			}
			pwrite(t1->fd, blk, sizeof(blk), t1->bar.offset + 0x2000);
			tset(t1, VTD_REG_SCRATCH + 4, 0x12345678);
			r = mig_set(t1->fd, ST_PRE_COPY_P2P, NULL);
			xioctl(sfd, MIG_GET_PRECOPY_INFO, &pi);
			note("PRE_COPY_P2P info: initial %llu dirty %llu",
			     (unsigned long long)pi.initial_bytes, (unsigned long long)pi.dirty_bytes);
			r = mig_set(t1->fd, ST_STOP_COPY, &fd);
			check(r == 0 && fd == -1, "PRE_COPY_P2P -> STOP_COPY continues the same fd");
			r = xioctl(sfd, MIG_GET_PRECOPY_INFO, &pi);
			check(r == -EINVAL, "PRECOPY_INFO in STOP_COPY: %s", ename(-r));
			for (;;) {
				r = read(sfd, all + m, 1024);
				if (r <= 0)
					break;
				m += r;
			}
			check(r == 0, "STOP_COPY after pre-copy ends with EOF (%zu bytes total)", m);
			tbar_read(t1, bar1, VTD_TYPE1_BAR_SIZE);
			mig_set(t1->fd, ST_STOP, NULL);
			close(sfd);
			device_reset(t2->fd);
			r = load_stream(t2, all, m, 3000, ST_RUNNING, &we, &se);
			tbar_read(t2, bar2, VTD_TYPE1_BAR_SIZE);
			check(r == 0 && memcmp(bar1, bar2, VTD_TYPE1_BAR_SIZE) == 0,
			      "pre-copy stream (initial + dirty blocks + final) restores device 2");
			free(all);
			device_reset(t1->fd);
		}
		/* STOP_COPY -> PRE_COPY(_P2P) is not allowed: the core must refuse, not loop */
		{
			uint8_t b[8];

			device_reset(t1->fd);
			mig_set(t1->fd, ST_STOP_COPY, &fd);
			r = mig_set(t1->fd, ST_PRE_COPY, NULL);
			check(r == -EINVAL && mig_get(t1->fd) == ST_STOP_COPY,
			      "STOP_COPY -> PRE_COPY refused: %s, still %s", ename(-r),
			      sname(mig_get(t1->fd)));
			r = mig_set(t1->fd, ST_PRE_COPY_P2P, NULL);
			check(r == -EINVAL && mig_get(t1->fd) == ST_STOP_COPY,
			      "STOP_COPY -> PRE_COPY_P2P refused: %s", ename(-r));
			r = read(fd, b, 8);
			check(r == 8, "the STOP_COPY session survives the refused requests");
			close(fd);
			device_reset(t1->fd);
		}
		/* reset during pre-copy */
		{
			uint8_t b[8];

			mig_set(t1->fd, ST_PRE_COPY, &fd);
			device_reset(t1->fd);
			r = read(fd, b, 8);
			check(r < 0 && errno == ENODEV && mig_get(t1->fd) == ST_RUNNING,
			      "reset during PRE_COPY ends the session (%s)", ename(errno));
			r = xioctl(fd, MIG_GET_PRECOPY_INFO, &pi);
			note("PRECOPY_INFO after reset: %s", ename(-r));
			close(fd);
		}
	}

	/* device DMA, precise type1 dirty bitmaps, DMA logging */
	{
		const uint64_t iova = 0x200000, size = 16 * 4096;
		uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				    -1, 0);
		uint64_t bm[4];
		uint32_t st;

		device_reset(t1->fd);
		tfill(t1, 99);
		tbar_read(t1, bar1, VTD_TYPE1_BAR_SIZE);
		memset(mem, 0, size);
		check(map_dma(container, mem, iova, size) == 0, "MAP_DMA 64 KiB for the mdevs");
		check(dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START) == 0,
		      "DIRTY_PAGES START (pure mdev container)");
		check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
			      popcount_bits(bm, 16) == 0,
		      "no page dirty before device DMA (%d)", popcount_bits(bm, 16));
		st = tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 5 * 4096, 4096);
		check(st == 0 && memcmp(mem + 5 * 4096, bar1 + VTD_DATA_OFFSET, 4096) == 0,
		      "DMA engine wrote one page of guest memory (status %u)", st);
		check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
			      popcount_bits(bm, 16) == 1 && bit(bm, 5),
		      "type1 bitmap: exactly page 5 dirty (%d pages)", popcount_bits(bm, 16));
		check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
			      popcount_bits(bm, 16) == 0,
		      "GET_BITMAP cleared the bits (%d)", popcount_bits(bm, 16));
		st = tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 8 * 4096 - 50, 100);
		check(st == 0 && dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
			      popcount_bits(bm, 16) == 2 && bit(bm, 7) && bit(bm, 8),
		      "a 100-byte DMA across a page boundary dirties pages 7 and 8");
		memset(mem + 3 * 4096, 0x3c, 4096);
		st = tdma(t1, VTD_DMA_CMD_FROM_MEMORY, 0x1000, iova + 3 * 4096, 512);
		tbar_read(t1, bar2, VTD_TYPE1_BAR_SIZE);
		check(st == 0 && bar2[0x1000] == 0x3c && bar2[0x1000 + 511] == 0x3c,
		      "DMA engine read guest memory into BAR0");
		check(dirty_get(container, iova, size, bm, sizeof(bm)) == 0 &&
			      popcount_bits(bm, 16) == 0,
		      "reading guest memory dirties nothing (%d)", popcount_bits(bm, 16));
		st = tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, 0x7000000, 64);
		check(st != 0, "DMA to an unmapped IOVA fails (status %s)", ename(st));
		mig_set(t1->fd, ST_STOP, NULL);
		st = tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova, 64);
		check(st == EBUSY, "a stopped device refuses DMA (status %s)", ename(st));
		mig_set(t1->fd, ST_RUNNING, NULL);

		/* device DMA logging */
		{
			struct vfio_device_feature_dma_logging_range range = { .iova = iova,
									       .length = size };
			struct vfio_device_feature_dma_logging_control ctl = {
				.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)&range };
			struct vfio_device_feature_dma_logging_report rep = {
				.iova = iova, .length = size, .page_size = 4096,
				.bitmap = (uintptr_t)bm };

			r = feature(t1->fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
						    VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0);
			check(r == 0, "PROBE DMA_LOGGING_START: %s", ename(-r));
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
				    &rep, sizeof(rep));
			note("DMA_LOGGING_REPORT before START: %s", ename(-r));
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				    &(struct vfio_device_feature_dma_logging_control){ .page_size = 4096 },
				    sizeof(ctl));
			note("DMA_LOGGING_START with 0 ranges: %s", ename(-r));
			{
				struct vfio_device_feature_dma_logging_range two[2] = {
					{ .iova = iova, .length = 2 * 4096 },
					{ .iova = iova + 4096, .length = 2 * 4096 },
				};
				struct vfio_device_feature_dma_logging_range odd = { .iova = iova + 100,
										      .length = 4096 };
				struct vfio_device_feature_dma_logging_control c2 = ctl;
				static struct vfio_device_feature_dma_logging_range many[300];
				int k;

				c2.num_ranges = 2;
				c2.ranges = (uintptr_t)two;
				r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET |
							    VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
					    &c2, sizeof(c2));
				check(r == -EINVAL, "DMA_LOGGING_START with overlapping ranges: %s",
				      ename(-r));
				c2.num_ranges = 1;
				c2.ranges = (uintptr_t)&odd;
				r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET |
							    VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
					    &c2, sizeof(c2));
				check(r == -EINVAL, "DMA_LOGGING_START with an unaligned range: %s",
				      ename(-r));
				for (k = 0; k < 300; k++) {
					many[k].iova = iova + (uint64_t)k * 8192;
					many[k].length = 4096;
				}
				c2.num_ranges = 300;
				c2.ranges = (uintptr_t)many;
				r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET |
							    VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
					    &c2, sizeof(c2));
				check(r == -E2BIG, "DMA_LOGGING_START with 300 ranges: %s", ename(-r));
			}
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				    &ctl, sizeof(ctl));
			check(r == 0 && ctl.page_size == 4096, "DMA_LOGGING_START: %s, page size %llu",
			      ename(-r), (unsigned long long)ctl.page_size);
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				    &ctl, sizeof(ctl));
			note("second DMA_LOGGING_START: %s", ename(-r));
			tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 2 * 4096, 4096);
			tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 9 * 4096 + 4000, 200);
			memset(bm, 0, sizeof(bm));
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
				    &rep, sizeof(rep));
			if (r == -EOPNOTSUPP) {
				note("DMA_LOGGING_REPORT: EOPNOTSUPP (kernel built without IOMMUFD_DRIVER)");
				check(true, "DMA_LOGGING_REPORT unsupported by this kernel build (EOPNOTSUPP)");
			} else {
				check(r == 0 && popcount_bits(bm, 16) == 3 && bit(bm, 2) && bit(bm, 9) &&
					      bit(bm, 10),
				      "DMA_LOGGING_REPORT: pages 2, 9, 10 (%s, %d bits)", ename(-r),
				      popcount_bits(bm, 16));
				memset(bm, 0, sizeof(bm));
				r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET |
							    VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
					    &rep, sizeof(rep));
				check(r == 0 && popcount_bits(bm, 16) == 0, "the report cleared the log");
				rep.page_size = 8192;
				tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 3 * 4096, 16);
				memset(bm, 0, sizeof(bm));
				r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET |
							    VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
					    &rep, sizeof(rep));
				check(r == 0 && popcount_bits(bm, 8) == 1 && bit(bm, 1),
				      "report at 8 KiB granularity: page 3 -> bit 1");
				rep.page_size = 4096;
			}
			rep.page_size = 1000;
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
				    &rep, sizeof(rep));
			note("DMA_LOGGING_REPORT with page size 1000: %s", ename(-r));
			rep.page_size = 4096;
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
				    NULL, 0);
			check(r == 0, "DMA_LOGGING_STOP: %s", ename(-r));
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
				    &rep, sizeof(rep));
			note("DMA_LOGGING_REPORT after STOP: %s", ename(-r));
			r = feature(t1->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
				    NULL, 0);
			note("DMA_LOGGING_STOP when stopped: %s", ename(-r));
		}

		/* unmap with bitmap after a DMA */
		dirty_get(container, iova, size, bm, sizeof(bm));
		tdma(t1, VTD_DMA_CMD_TO_MEMORY, VTD_DATA_OFFSET, iova + 15 * 4096, 8);
		memset(bm, 0, sizeof(bm));
		r = unmap_dma(container, iova, size, bm, sizeof(bm));
		check(r == (long)size && popcount_bits(bm, 16) == 1 && bit(bm, 15),
		      "UNMAP_DMA with bitmap reports exactly page 15 (%d bits)", popcount_bits(bm, 16));
		check(dirty_ctl(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) == 0, "DIRTY_PAGES STOP");
		munmap(mem, size);
	}

	close(t1->fd);
	close(t2->fd);
	close(t3->fd);
	close(t1->group);
	close(t2->group);
	close(t3->group);
	close(container);
	free(stream);
	free(s2);
	free(bar1);
	free(bar2);
}

int main(void)
{
	const char *edu = getenv("VFIO_TEST_EDU"), *mdevs = getenv("VFIO_TEST_MDEV"),
		   *foreign = getenv("VFIO_TEST_MDEV_FOREIGN");
	struct utsname u;
	int major = 0, minor = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	precopy_kernel = major > 6 || (major == 6 && minor >= 2);
	printf("vfio-smoke on %s\n", u.release);

	if (edu && *edu)
		test_edu(edu);
	else
		check(false, "VFIO_TEST_EDU is set");

	if (mdevs && foreign && strchr(mdevs, ',')) {
		char *a = strdup(mdevs), *b = strchr(a, ',');
		struct tdev t1 = { 0 }, t2 = { 0 }, t3 = { 0 };

		*b++ = 0;
		t1.uuid = a;
		t2.uuid = b;
		t3.uuid = foreign;
		test_mdev(&t1, &t2, &t3);
	} else {
		check(false, "VFIO_TEST_MDEV (two uuids) and VFIO_TEST_MDEV_FOREIGN are set");
	}

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
