// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_testdev: a migratable mediated device for testing VFIO userspace.
 *
 * Registers an mdev parent (/sys/devices/virtual/vfio_testdev/vfio_testdev) with two types
 * whose devices speak the vfio-pci device API: an emulated PCI config space and a BAR0 of
 * device memory reached through read/write on the device fd. A register block at the start
 * of BAR0 drives a DMA engine that moves bytes between BAR0 and IOVAs of the container
 * through vfio_dma_rw(), so type1 dirty tracking sees real device writes. The device
 * implements migration protocol v2 (STOP_COPY and P2P; PRE_COPY on kernels >= 6.2) with a
 * versioned, checksummed state stream, and device DMA logging.
 *
 * The register map and stream layout are in vfio_testdev_abi.h.
 *
 * Locking: one module-wide mutex serialises every entry point (region access, ioctls,
 * migration callbacks, data fds, sysfs). Tests are sequential, and a single lock makes the
 * lifetime rule simple: a data fd only touches its device while it is attached, and
 * detaching always happens under the lock.
 */
#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/crc32.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci_regs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vfio.h>
#include <linux/xarray.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#include "vfio_testdev_abi.h"

#define TD_NAME "vfio_testdev"
#define TD_MAX_INSTANCES 8
#define TD_CONFIG_SIZE 256
/* Region index lives in the top bits of the device-fd offset, as vfio-pci does it. */
#define TD_OFFSET_SHIFT 40
#define TD_OFFSET_MASK ((1ULL << TD_OFFSET_SHIFT) - 1)
#define TD_LOG_PAGE 4096UL

#define TD_HAVE_PRECOPY (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0))

struct td_type {
	struct mdev_type type;
	u32 index;
	u32 bar_size;
};

struct td_mig_file;

struct td_state {
	struct vfio_device vdev; /* must stay first: vfio_alloc_device requires it */
	u32 type_index;
	u32 bar_size;
	u8 *bar;
	u16 pci_command;
	u32 bar0_reg;

	enum vfio_device_mig_state mig_state;
	/* test hook: the fail_arc-th arc from now fails with EIO (0 = none) */
	u32 fail_arc;
	struct td_mig_file *saving;
	struct td_mig_file *resuming;
	/* BAR0 blocks written since pre-copy last sent them */
	unsigned long *dirty;
	bool track_dirty;

	/* device DMA logging */
	bool logging;
	u32 nr_log_ranges;
	struct { u64 start, last; } *log_ranges;
	struct xarray log; /* index = IOVA page number of a page the device wrote */
};

struct td_mig_file {
	struct file *filp;
	struct td_state *st; /* NULL once the session ended */
	bool save;
	/* save side: bytes [pos, len) of buf are produced but not yet read */
	u8 *buf;
	size_t cap, len, pos;
	u64 produced, consumed, initial_total;
	u32 crc;
	bool final_done;
	/* resume side */
	u8 *stage;
	u8 stage_regs[VTD_REGS_LEN];
	bool header_ok, regs_seen, end_seen, failed;
};

static DEFINE_MUTEX(td_lock);
static struct class *td_class;
static struct device td_parent_dev;
static struct mdev_parent td_parent;

static struct td_type td_types[] = {
	{ .type = { .sysfs_name = "1", .pretty_name = "vfio_testdev 16 KiB BAR" },
	  .index = 1, .bar_size = VTD_TYPE1_BAR_SIZE },
	{ .type = { .sysfs_name = "2", .pretty_name = "vfio_testdev 64 KiB BAR" },
	  .index = 2, .bar_size = VTD_TYPE2_BAR_SIZE },
};
static struct mdev_type *td_type_list[] = { &td_types[0].type, &td_types[1].type };

static inline struct td_state *to_td(struct vfio_device *vdev)
{
	return container_of(vdev, struct td_state, vdev);
}

static u32 bar_reg(struct td_state *st, u32 off)
{
	return get_unaligned_le32(st->bar + off);
}

static void bar_set_reg(struct td_state *st, u32 off, u32 val)
{
	put_unaligned_le32(val, st->bar + off);
}

static void mark_dirty(struct td_state *st, u32 off, u32 len)
{
	if (!st->track_dirty || !len)
		return;
	bitmap_set(st->dirty, off / VTD_DIRTY_BLOCK,
		   (off + len - 1) / VTD_DIRTY_BLOCK - off / VTD_DIRTY_BLOCK + 1);
}

/* Power-on / reset contents: zeroed memory, identity registers, bus mastering off. */
static void td_reset_contents(struct td_state *st)
{
	memset(st->bar, 0, st->bar_size);
	bar_set_reg(st, VTD_REG_ID, VTD_ID_VALUE);
	bar_set_reg(st, VTD_REG_BAR_SIZE, st->bar_size);
	st->pci_command = 0;
	st->bar0_reg = 0;
}

/* ---------------------------------------------------------------- data fds */

static void td_end_session(struct td_mig_file *mf)
{
	struct td_state *st;

	if (!mf)
		return;
	st = mf->st;
	if (st) {
		if (st->saving == mf) {
			st->saving = NULL;
			st->track_dirty = false;
		}
		if (st->resuming == mf)
			st->resuming = NULL;
	}
	mf->st = NULL;
	kvfree(mf->buf);
	mf->buf = NULL;
	kvfree(mf->stage);
	mf->stage = NULL;
}

static void td_end_all_sessions(struct td_state *st)
{
	td_end_session(st->saving);
	td_end_session(st->resuming);
}

static void save_append(struct td_mig_file *mf, const void *p, size_t n)
{
	if (WARN_ON(mf->len + n > mf->cap))
		return;
	memcpy(mf->buf + mf->len, p, n);
	mf->crc = crc32_le(mf->crc, p, n);
	mf->len += n;
	mf->produced += n;
}

static void save_record(struct td_mig_file *mf, u32 tag, u32 off, const void *p, u32 n)
{
	__le32 h[4] = { cpu_to_le32(tag), cpu_to_le32(off), cpu_to_le32(n), 0 };

	save_append(mf, h, sizeof(h));
	if (tag == VTD_TAG_END) {
		__le32 crc = cpu_to_le32(~mf->crc);

		save_append(mf, &crc, sizeof(crc));
	} else {
		save_append(mf, p, n);
	}
}

static void save_header(struct td_mig_file *mf, struct td_state *st)
{
	u8 h[VTD_STREAM_HEADER_LEN] = { 0 };

	put_unaligned_le64(VTD_STREAM_MAGIC, h);
	put_unaligned_le16(VTD_STREAM_MAJOR, h + 8);
	put_unaligned_le16(VTD_STREAM_MINOR, h + 10);
	put_unaligned_le32(st->bar_size, h + 12);
	put_unaligned_le32(st->type_index, h + 16);
	put_unaligned_le32(VTD_STREAM_HEADER_LEN, h + 20);
	save_append(mf, h, sizeof(h));
}

static void save_dirty_blocks(struct td_mig_file *mf, struct td_state *st)
{
	unsigned int nblocks = st->bar_size / VTD_DIRTY_BLOCK, b;

	for_each_set_bit(b, st->dirty, nblocks)
		save_record(mf, VTD_TAG_BAR, b * VTD_DIRTY_BLOCK,
			    st->bar + b * VTD_DIRTY_BLOCK, VTD_DIRTY_BLOCK);
	bitmap_zero(st->dirty, nblocks);
}

static size_t td_stream_size(struct td_state *st)
{
	return VTD_STREAM_HEADER_LEN + VTD_RECORD_HEADER_LEN + st->bar_size +
	       VTD_RECORD_HEADER_LEN + VTD_REGS_LEN + VTD_RECORD_HEADER_LEN + 4;
}

static bool td_in_precopy(struct td_state *st)
{
#if TD_HAVE_PRECOPY
	return st->mig_state == VFIO_DEVICE_STATE_PRE_COPY ||
	       st->mig_state == VFIO_DEVICE_STATE_PRE_COPY_P2P;
#else
	return false;
#endif
}

/* Produce more save data once the buffer is drained; -ENOMSG means "nothing right now". */
static int save_refill(struct td_mig_file *mf, struct td_state *st)
{
	mf->len = mf->pos = 0;
	if (td_in_precopy(st)) {
		if (bitmap_empty(st->dirty, st->bar_size / VTD_DIRTY_BLOCK))
			return -ENOMSG;
		save_dirty_blocks(mf, st);
		return 0;
	}
	if (st->mig_state != VFIO_DEVICE_STATE_STOP_COPY || mf->final_done)
		return 0;
	{
		__le32 regs[4] = { cpu_to_le32(st->pci_command), cpu_to_le32(st->bar0_reg), 0, 0 };

		save_dirty_blocks(mf, st);
		save_record(mf, VTD_TAG_REGS, 0, regs, sizeof(regs));
		save_record(mf, VTD_TAG_END, 0, NULL, 4);
		mf->final_done = true;
		st->track_dirty = false;
	}
	return 0;
}

static ssize_t td_save_read(struct file *filp, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct td_mig_file *mf = filp->private_data;
	struct td_state *st;
	size_t n;
	ssize_t ret;

	if (ppos)
		return -ESPIPE;
	mutex_lock(&td_lock);
	st = mf->st;
	if (!st) {
		ret = -ENODEV;
		goto out;
	}
	if (mf->pos == mf->len) {
		ret = save_refill(mf, st);
		if (ret)
			goto out;
	}
	n = min(count, mf->len - mf->pos);
	if (copy_to_user(ubuf, mf->buf + mf->pos, n)) {
		ret = -EFAULT;
		goto out;
	}
	mf->pos += n;
	mf->consumed += n;
	ret = n;
out:
	mutex_unlock(&td_lock);
	return ret;
}

#if TD_HAVE_PRECOPY
static long td_save_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct td_mig_file *mf = filp->private_data;
	struct vfio_precopy_info info;
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct td_state *st;
	u64 unread, initial;
	long ret = 0;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	mutex_lock(&td_lock);
	st = mf->st;
	if (!st) {
		ret = -ENODEV;
		goto out;
	}
	if (!td_in_precopy(st)) {
		ret = -EINVAL;
		goto out;
	}
	initial = mf->initial_total > mf->consumed ? mf->initial_total - mf->consumed : 0;
	unread = mf->len - mf->pos;
	info.flags = 0;
	info.initial_bytes = initial;
	info.dirty_bytes = unread - min(unread, initial) +
		(u64)bitmap_weight(st->dirty, st->bar_size / VTD_DIRTY_BLOCK) *
			(VTD_RECORD_HEADER_LEN + VTD_DIRTY_BLOCK);
out:
	mutex_unlock(&td_lock);
	if (!ret && copy_to_user((void __user *)arg, &info, minsz))
		ret = -EFAULT;
	return ret;
}
#endif

/* Validate and apply every complete item at the start of buf; returns bytes consumed. */
static ssize_t resume_parse(struct td_mig_file *mf, struct td_state *st, const u8 *p, size_t n)
{
	size_t used = 0;

	while (used < n) {
		const u8 *h = p + used;
		size_t avail = n - used;
		u32 tag, off, len;

		if (mf->end_seen)
			return -EINVAL; /* bytes after the end record */
		if (!mf->header_ok) {
			if (avail < VTD_STREAM_HEADER_LEN)
				break;
			if (get_unaligned_le64(h) != VTD_STREAM_MAGIC ||
			    get_unaligned_le16(h + 8) != VTD_STREAM_MAJOR ||
			    get_unaligned_le16(h + 10) > VTD_STREAM_MINOR ||
			    get_unaligned_le32(h + 12) != st->bar_size ||
			    get_unaligned_le32(h + 16) != st->type_index ||
			    get_unaligned_le32(h + 20) != VTD_STREAM_HEADER_LEN)
				return -EINVAL;
			mf->crc = crc32_le(mf->crc, h, VTD_STREAM_HEADER_LEN);
			mf->header_ok = true;
			used += VTD_STREAM_HEADER_LEN;
			continue;
		}
		if (avail < VTD_RECORD_HEADER_LEN)
			break;
		tag = get_unaligned_le32(h);
		off = get_unaligned_le32(h + 4);
		len = get_unaligned_le32(h + 8);
		switch (tag) {
		case VTD_TAG_BAR:
			if (!len || off >= st->bar_size || len > st->bar_size - off)
				return -EINVAL;
			break;
		case VTD_TAG_REGS:
			if (off || len != VTD_REGS_LEN)
				return -EINVAL;
			break;
		case VTD_TAG_END:
			if (off || len != 4)
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
		if (get_unaligned_le32(h + 12))
			return -EINVAL;
		if (avail < VTD_RECORD_HEADER_LEN + len)
			break;
		mf->crc = crc32_le(mf->crc, h, VTD_RECORD_HEADER_LEN);
		if (tag == VTD_TAG_END) {
			if (get_unaligned_le32(h + VTD_RECORD_HEADER_LEN) != ~mf->crc)
				return -EINVAL;
			mf->end_seen = true;
		} else {
			mf->crc = crc32_le(mf->crc, h + VTD_RECORD_HEADER_LEN, len);
			if (tag == VTD_TAG_BAR)
				memcpy(mf->stage + off, h + VTD_RECORD_HEADER_LEN, len);
			else {
				memcpy(mf->stage_regs, h + VTD_RECORD_HEADER_LEN, len);
				mf->regs_seen = true;
			}
		}
		used += VTD_RECORD_HEADER_LEN + len;
	}
	return used;
}

static ssize_t td_resume_write(struct file *filp, const char __user *ubuf, size_t count,
			       loff_t *ppos)
{
	struct td_mig_file *mf = filp->private_data;
	struct td_state *st;
	size_t done = 0;
	ssize_t ret = 0;

	if (ppos)
		return -ESPIPE;
	mutex_lock(&td_lock);
	st = mf->st;
	if (!st) {
		ret = -ENODEV;
		goto out;
	}
	if (mf->failed) {
		ret = -EINVAL;
		goto out;
	}
	while (done < count) {
		size_t n = min(count - done, mf->cap - mf->len);
		ssize_t used;

		if (copy_from_user(mf->buf + mf->len, ubuf + done, n)) {
			ret = -EFAULT;
			goto out;
		}
		mf->len += n;
		done += n;
		used = resume_parse(mf, st, mf->buf, mf->len);
		if (used < 0) {
			mf->failed = true;
			ret = used;
			goto out;
		}
		memmove(mf->buf, mf->buf + used, mf->len - used);
		mf->len -= used;
	}
	ret = done;
out:
	mutex_unlock(&td_lock);
	return ret;
}

static int td_mig_release(struct inode *inode, struct file *filp)
{
	struct td_mig_file *mf = filp->private_data;

	mutex_lock(&td_lock);
	td_end_session(mf);
	mutex_unlock(&td_lock);
	kfree(mf);
	return 0;
}

static const struct file_operations td_save_fops = {
	.owner = THIS_MODULE,
	.read = td_save_read,
#if TD_HAVE_PRECOPY
	.unlocked_ioctl = td_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
#endif
	.release = td_mig_release,
};

static const struct file_operations td_resume_fops = {
	.owner = THIS_MODULE,
	.write = td_resume_write,
	.release = td_mig_release,
};

static struct td_mig_file *td_new_session(struct td_state *st, bool save)
{
	struct td_mig_file *mf = kzalloc(sizeof(*mf), GFP_KERNEL);

	if (!mf)
		return ERR_PTR(-ENOMEM);
	mf->save = save;
	/* room for the whole stream, or for one partial record plus one record */
	mf->cap = save ? 2 * td_stream_size(st) : 2 * (VTD_RECORD_HEADER_LEN + st->bar_size);
	mf->buf = kvzalloc(mf->cap, GFP_KERNEL);
	if (!save)
		mf->stage = kvzalloc(st->bar_size, GFP_KERNEL);
	if (!mf->buf || (!save && !mf->stage))
		goto nomem;
	mf->crc = ~0U;
	mf->filp = anon_inode_getfile(TD_NAME "_mig", save ? &td_save_fops : &td_resume_fops,
				      mf, save ? O_RDONLY : O_WRONLY);
	if (IS_ERR(mf->filp)) {
		long err = PTR_ERR(mf->filp);

		kvfree(mf->buf);
		kvfree(mf->stage);
		kfree(mf);
		return ERR_PTR(err);
	}
	stream_open(mf->filp->f_inode, mf->filp);
	mf->st = st;
	return mf;
nomem:
	kvfree(mf->buf);
	kvfree(mf->stage);
	kfree(mf);
	return ERR_PTR(-ENOMEM);
}

/* Start a save session; with precopy the initial image is sent while the device runs. */
static struct file *td_start_save(struct td_state *st, bool precopy)
{
	struct td_mig_file *mf = td_new_session(st, true);

	if (IS_ERR(mf))
		return ERR_CAST(mf);
	bitmap_zero(st->dirty, st->bar_size / VTD_DIRTY_BLOCK);
	save_header(mf, st);
	save_record(mf, VTD_TAG_BAR, 0, st->bar, st->bar_size);
	mf->initial_total = precopy ? mf->produced : 0;
	/* until the final chunk, BAR writes after this snapshot are re-sent as dirty blocks */
	st->track_dirty = true;
	st->saving = mf;
	return mf->filp;
}

static int td_finish_resume(struct td_state *st)
{
	struct td_mig_file *mf = st->resuming;

	if (!mf || mf->failed || !mf->header_ok || !mf->end_seen || !mf->regs_seen)
		return -EINVAL;
	memcpy(st->bar, mf->stage, st->bar_size);
	/* identity registers are the device's own, whatever the stream said */
	bar_set_reg(st, VTD_REG_ID, VTD_ID_VALUE);
	bar_set_reg(st, VTD_REG_BAR_SIZE, st->bar_size);
	st->pci_command = get_unaligned_le32(mf->stage_regs) & 0x7;
	st->bar0_reg = get_unaligned_le32(mf->stage_regs + 4) & ~(st->bar_size - 1);
	td_end_session(mf);
	return 0;
}

/* ---------------------------------------------------------------- migration ops */

static struct file *td_step(struct td_state *st, enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = st->mig_state;
	struct file *res = NULL;

	if (st->fail_arc && --st->fail_arc == 0)
		return ERR_PTR(-EIO);
#define ARC(a, b) (cur == VFIO_DEVICE_STATE_##a && next == VFIO_DEVICE_STATE_##b)
	if (ARC(RUNNING, RUNNING_P2P) || ARC(RUNNING_P2P, RUNNING) ||
	    ARC(RUNNING_P2P, STOP) || ARC(STOP, RUNNING_P2P) ||
	    ARC(RUNNING, STOP) || ARC(STOP, RUNNING)) {
		/* nothing to quiesce: the engine only runs when a command is written */
	} else if (ARC(STOP, STOP_COPY)) {
		res = td_start_save(st, false);
	} else if (ARC(STOP_COPY, STOP)) {
		td_end_session(st->saving);
	} else if (ARC(STOP, RESUMING)) {
		struct td_mig_file *mf = td_new_session(st, false);

		if (IS_ERR(mf))
			return ERR_CAST(mf);
		st->resuming = mf;
		res = mf->filp;
	} else if (ARC(RESUMING, STOP)) {
		int ret = td_finish_resume(st);

		if (ret)
			return ERR_PTR(ret);
#if TD_HAVE_PRECOPY
	} else if (ARC(RUNNING, PRE_COPY) || ARC(RUNNING_P2P, PRE_COPY_P2P)) {
		res = td_start_save(st, true);
	} else if (ARC(PRE_COPY, RUNNING) || ARC(PRE_COPY_P2P, RUNNING_P2P)) {
		td_end_session(st->saving);
	} else if (ARC(PRE_COPY, PRE_COPY_P2P) || ARC(PRE_COPY_P2P, PRE_COPY)) {
		/* same session; the device keeps running */
	} else if (ARC(PRE_COPY_P2P, STOP_COPY) || ARC(PRE_COPY, STOP_COPY)) {
		/* same session: further reads send dirty blocks, registers, then the end */
#endif
	} else {
		return ERR_PTR(-EINVAL);
	}
#undef ARC
	if (IS_ERR(res))
		return res;
	st->mig_state = next;
	return res;
}

static struct file *td_set_state(struct vfio_device *vdev, enum vfio_device_mig_state target)
{
	struct td_state *st = to_td(vdev);
	struct file *res = NULL;
	enum vfio_device_mig_state next;
	int ret;

	mutex_lock(&td_lock);
	/*
	 * Only a reset leaves ERROR. Refuse here: the core's next-state helper would
	 * WARN about a current state that no flag set supports.
	 */
	if (st->mig_state == VFIO_DEVICE_STATE_ERROR) {
		mutex_unlock(&td_lock);
		return ERR_PTR(-EINVAL);
	}
	while (st->mig_state != target) {
		ret = vfio_mig_get_next_state(vdev, st->mig_state, target, &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = td_step(st, next);
		if (IS_ERR(res))
			break;
		/* only the final arc may open a session */
		if (WARN_ON(res && next != target)) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	mutex_unlock(&td_lock);
	return res;
}

static int td_get_state(struct vfio_device *vdev, enum vfio_device_mig_state *state)
{
	mutex_lock(&td_lock);
	*state = to_td(vdev)->mig_state;
	mutex_unlock(&td_lock);
	return 0;
}

#if TD_HAVE_PRECOPY
static int td_get_data_size(struct vfio_device *vdev, unsigned long *len)
{
	*len = td_stream_size(to_td(vdev));
	return 0;
}
#endif

static const struct vfio_migration_ops td_mig_ops = {
	.migration_set_state = td_set_state,
	.migration_get_state = td_get_state,
#if TD_HAVE_PRECOPY
	.migration_get_data_size = td_get_data_size,
#endif
};

/* ---------------------------------------------------------------- DMA logging */

static int td_log_start(struct vfio_device *vdev, struct rb_root_cached *ranges, u32 nnodes,
			u64 *page_size)
{
	struct td_state *st = to_td(vdev);
	struct interval_tree_node *node;
	u32 i = 0;
	int ret = 0;

	mutex_lock(&td_lock);
	if (st->logging) {
		ret = -EBUSY;
		goto out;
	}
	kfree(st->log_ranges);
	st->log_ranges = kcalloc(nnodes, sizeof(*st->log_ranges), GFP_KERNEL);
	if (!st->log_ranges) {
		ret = -ENOMEM;
		goto out;
	}
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node && i < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), i++) {
		st->log_ranges[i].start = node->start;
		st->log_ranges[i].last = node->last;
	}
	st->nr_log_ranges = i;
	xa_destroy(&st->log);
	st->logging = true;
	*page_size = TD_LOG_PAGE;
out:
	mutex_unlock(&td_lock);
	return ret;
}

static int td_log_stop(struct vfio_device *vdev)
{
	struct td_state *st = to_td(vdev);

	mutex_lock(&td_lock);
	st->logging = false;
	st->nr_log_ranges = 0;
	kfree(st->log_ranges);
	st->log_ranges = NULL;
	xa_destroy(&st->log);
	mutex_unlock(&td_lock);
	return 0;
}

static int td_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				 unsigned long length, struct iova_bitmap *dirty)
{
	struct td_state *st = to_td(vdev);
	unsigned long idx;
	void *entry;
	int ret = 0;

	if (!length)
		return 0;
	mutex_lock(&td_lock);
	if (!st->logging) {
		ret = -EINVAL;
		goto out;
	}
	xa_for_each_range(&st->log, idx, entry, iova / TD_LOG_PAGE,
			  (iova + length - 1) / TD_LOG_PAGE) {
		iova_bitmap_set(dirty, idx * TD_LOG_PAGE, TD_LOG_PAGE);
		xa_erase(&st->log, idx);
	}
out:
	mutex_unlock(&td_lock);
	return ret;
}

static const struct vfio_log_ops td_log_ops = {
	.log_start = td_log_start,
	.log_stop = td_log_stop,
	.log_read_and_clear = td_log_read_and_clear,
};

static void td_log_write(struct td_state *st, u64 iova, u32 len)
{
	u64 page, last = (iova + len - 1) / TD_LOG_PAGE;
	u32 i;

	if (!st->logging)
		return;
	for (page = iova / TD_LOG_PAGE; page <= last; page++)
		for (i = 0; i < st->nr_log_ranges; i++)
			if (page * TD_LOG_PAGE <= st->log_ranges[i].last &&
			    page * TD_LOG_PAGE + TD_LOG_PAGE - 1 >= st->log_ranges[i].start) {
				xa_store(&st->log, page, xa_mk_value(0), GFP_KERNEL);
				break;
			}
}

/* ---------------------------------------------------------------- DMA engine */

static bool td_dma_allowed(struct td_state *st)
{
	switch (st->mig_state) {
	case VFIO_DEVICE_STATE_RUNNING:
	case VFIO_DEVICE_STATE_RUNNING_P2P:
		return true;
	default:
		return td_in_precopy(st);
	}
}

static void td_dma_command(struct td_state *st, u32 cmd)
{
	u32 src = bar_reg(st, VTD_REG_DMA_SRC), len = bar_reg(st, VTD_REG_DMA_LEN);
	u64 iova = bar_reg(st, VTD_REG_DMA_IOVA_LO) |
		   (u64)bar_reg(st, VTD_REG_DMA_IOVA_HI) << 32;
	int err = 0;

	if (!td_dma_allowed(st))
		err = EBUSY; /* a stopped device starts no DMA */
	else if (cmd != VTD_DMA_CMD_TO_MEMORY && cmd != VTD_DMA_CMD_FROM_MEMORY)
		err = EINVAL;
	else if (!len || src >= st->bar_size || len > st->bar_size - src)
		err = EINVAL;
	else if (cmd == VTD_DMA_CMD_FROM_MEMORY && src < VTD_DATA_OFFSET)
		err = EINVAL; /* never DMA over the register block */
	else
		err = -vfio_dma_rw(&st->vdev, iova, st->bar + src, len,
				   cmd == VTD_DMA_CMD_TO_MEMORY);
	if (!err) {
		if (cmd == VTD_DMA_CMD_TO_MEMORY)
			td_log_write(st, iova, len);
		else
			mark_dirty(st, src, len);
		bar_set_reg(st, VTD_REG_DMA_COUNT, bar_reg(st, VTD_REG_DMA_COUNT) + 1);
	}
	bar_set_reg(st, VTD_REG_DMA_STATUS, err);
	mark_dirty(st, 0, VTD_DATA_OFFSET);
}

/* ---------------------------------------------------------------- regions */

static void td_config_image(struct td_state *st, u8 *cfg)
{
	memset(cfg, 0, TD_CONFIG_SIZE);
	put_unaligned_le16(VTD_PCI_VENDOR_ID, cfg + PCI_VENDOR_ID);
	put_unaligned_le16(VTD_PCI_DEVICE_ID, cfg + PCI_DEVICE_ID);
	put_unaligned_le16(st->pci_command, cfg + PCI_COMMAND);
	cfg[PCI_REVISION_ID] = 1;
	cfg[PCI_CLASS_PROG] = VTD_PCI_CLASS & 0xff;
	put_unaligned_le16(VTD_PCI_CLASS >> 8, cfg + PCI_CLASS_DEVICE);
	cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	/* 32-bit non-prefetchable memory BAR; the low bits read as zero */
	put_unaligned_le32(st->bar0_reg, cfg + PCI_BASE_ADDRESS_0);
	put_unaligned_le16(VTD_PCI_VENDOR_ID, cfg + PCI_SUBSYSTEM_VENDOR_ID);
	put_unaligned_le16(VTD_PCI_DEVICE_ID, cfg + PCI_SUBSYSTEM_ID);
}

static ssize_t td_rw_config(struct td_state *st, char __user *ubuf, size_t count, u64 pos,
			    bool write)
{
	u8 cfg[TD_CONFIG_SIZE];

	if (pos >= TD_CONFIG_SIZE)
		return -EINVAL;
	count = min_t(size_t, count, TD_CONFIG_SIZE - pos);
	td_config_image(st, cfg);
	if (!write)
		return copy_to_user(ubuf, cfg + pos, count) ? -EFAULT : count;
	if (copy_from_user(cfg + pos, ubuf, count))
		return -EFAULT;
	/* only the command register and BAR0 are writable */
	st->pci_command = get_unaligned_le16(cfg + PCI_COMMAND) &
			  (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	st->bar0_reg = get_unaligned_le32(cfg + PCI_BASE_ADDRESS_0) & ~(st->bar_size - 1);
	return count;
}

static ssize_t td_rw_bar(struct td_state *st, char __user *ubuf, size_t count, u64 pos,
			 bool write)
{
	u32 off;

	if (pos >= st->bar_size)
		return -EINVAL;
	count = min_t(size_t, count, st->bar_size - pos);
	if (!write)
		return copy_to_user(ubuf, st->bar + pos, count) ? -EFAULT : count;

	off = pos;
	/* registers take aligned whole-u32 writes */
	if (off < VTD_DATA_OFFSET && (off % 4 || count % 4))
		return -EINVAL;
	while (off < VTD_DATA_OFFSET && off < pos + count) {
		u32 val;

		if (get_user(val, (u32 __user *)(ubuf + (off - pos))))
			return -EFAULT;
		switch (off) {
		case VTD_REG_ID:
		case VTD_REG_BAR_SIZE:
		case VTD_REG_DMA_STATUS:
		case VTD_REG_DMA_COUNT:
			break;
		case VTD_REG_DMA_CMD:
			td_dma_command(st, le32_to_cpu(val));
			break;
		default:
			put_unaligned(val, (u32 *)(st->bar + off));
			mark_dirty(st, off, 4);
		}
		off += 4;
	}
	if (off < pos + count) {
		if (copy_from_user(st->bar + off, ubuf + (off - pos), pos + count - off))
			return -EFAULT;
		mark_dirty(st, off, pos + count - off);
	}
	return count;
}

static ssize_t td_rw(struct vfio_device *vdev, char __user *ubuf, size_t count, loff_t *ppos,
		     bool write)
{
	struct td_state *st = to_td(vdev);
	u64 index = (u64)*ppos >> TD_OFFSET_SHIFT, pos = *ppos & TD_OFFSET_MASK;
	ssize_t ret;

	mutex_lock(&td_lock);
	if (index == VFIO_PCI_CONFIG_REGION_INDEX)
		ret = td_rw_config(st, ubuf, count, pos, write);
	else if (index == VFIO_PCI_BAR0_REGION_INDEX)
		ret = td_rw_bar(st, ubuf, count, pos, write);
	else
		ret = -EINVAL;
	mutex_unlock(&td_lock);
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t td_read(struct vfio_device *vdev, char __user *ubuf, size_t count, loff_t *ppos)
{
	return td_rw(vdev, ubuf, count, ppos, false);
}

static ssize_t td_write(struct vfio_device *vdev, const char __user *ubuf, size_t count,
			loff_t *ppos)
{
	return td_rw(vdev, (char __user *)ubuf, count, ppos, true);
}

/* ---------------------------------------------------------------- device fd ioctls */

static long td_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct td_state *st = to_td(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;
		unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);

		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = VFIO_PCI_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		struct vfio_region_info info;
		unsigned long minsz = offsetofend(struct vfio_region_info, offset);

		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_REGIONS)
			return -EINVAL;
		info.offset = (u64)info.index << TD_OFFSET_SHIFT;
		info.flags = 0;
		info.size = 0;
		info.cap_offset = 0;
		if (info.index == VFIO_PCI_CONFIG_REGION_INDEX) {
			info.size = TD_CONFIG_SIZE;
			info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		} else if (info.index == VFIO_PCI_BAR0_REGION_INDEX) {
			info.size = st->bar_size;
			info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		}
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;
		unsigned long minsz = offsetofend(struct vfio_irq_info, count);

		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
			return -EINVAL;
		info.flags = 0;
		info.count = 0; /* the device raises no interrupts */
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return -EINVAL;
	case VFIO_DEVICE_RESET:
		mutex_lock(&td_lock);
		td_end_all_sessions(st);
		st->mig_state = VFIO_DEVICE_STATE_RUNNING;
		st->fail_arc = 0;
		td_reset_contents(st);
		mutex_unlock(&td_lock);
		return 0;
	}
	return -ENOTTY;
}

/* Feature indexes the core does not handle itself: none here, like vfio-pci. */
static int td_device_feature(struct vfio_device *vdev, u32 flags, void __user *arg,
			     size_t argsz)
{
	return -ENOTTY;
}

static int td_open(struct vfio_device *vdev)
{
	mutex_lock(&td_lock);
	to_td(vdev)->mig_state = VFIO_DEVICE_STATE_RUNNING;
	mutex_unlock(&td_lock);
	return 0;
}

static void td_close(struct vfio_device *vdev)
{
	struct td_state *st = to_td(vdev);

	mutex_lock(&td_lock);
	td_end_all_sessions(st);
	st->mig_state = VFIO_DEVICE_STATE_RUNNING;
	st->logging = false;
	st->nr_log_ranges = 0;
	kfree(st->log_ranges);
	st->log_ranges = NULL;
	xa_destroy(&st->log);
	mutex_unlock(&td_lock);
}

/* We keep no pinned pages or cached translations, so an unmap needs no work. */
static void td_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
}

static int td_init_dev(struct vfio_device *vdev)
{
	struct td_state *st = to_td(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	struct td_type *type = container_of(mdev->type, struct td_type, type);

	st->type_index = type->index;
	st->bar_size = type->bar_size;
	st->bar = kvzalloc(st->bar_size, GFP_KERNEL);
	st->dirty = bitmap_zalloc(st->bar_size / VTD_DIRTY_BLOCK, GFP_KERNEL);
	if (!st->bar || !st->dirty) {
		kvfree(st->bar);
		bitmap_free(st->dirty);
		return -ENOMEM;
	}
	xa_init(&st->log);
	td_reset_contents(st);
	st->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
#if TD_HAVE_PRECOPY
	vdev->migration_flags |= VFIO_MIGRATION_PRE_COPY;
#endif
	vdev->mig_ops = &td_mig_ops;
	vdev->log_ops = &td_log_ops;
	return 0;
}

static void td_release_dev(struct vfio_device *vdev)
{
	struct td_state *st = to_td(vdev);

	kvfree(st->bar);
	bitmap_free(st->dirty);
	kfree(st->log_ranges);
	xa_destroy(&st->log);
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	/* before 6.2 the driver's release frees the core's allocation */
	vfio_free_device(vdev);
#endif
}

static const struct vfio_device_ops td_dev_ops = {
	.name = TD_NAME,
	.init = td_init_dev,
	.release = td_release_dev,
	.open_device = td_open,
	.close_device = td_close,
	.read = td_read,
	.write = td_write,
	.ioctl = td_ioctl,
	.dma_unmap = td_dma_unmap,
	.device_feature = td_device_feature,
#if IS_ENABLED(CONFIG_IOMMUFD)
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
#endif
#endif
};

/* ---------------------------------------------------------------- sysfs test hooks */

static ssize_t bar_crc32_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct td_state *st = dev_get_drvdata(dev);
	u32 crc;

	mutex_lock(&td_lock);
	crc = ~crc32_le(~0U, st->bar, st->bar_size);
	mutex_unlock(&td_lock);
	return sysfs_emit(buf, "%08x\n", crc);
}
static DEVICE_ATTR_RO(bar_crc32);

/* Writing a seed fills the data area with a pseudo-random pattern (xorshift32). */
static ssize_t fill_store(struct device *dev, struct device_attribute *attr, const char *buf,
			  size_t count)
{
	struct td_state *st = dev_get_drvdata(dev);
	u32 x, off;
	int ret = kstrtou32(buf, 0, &x);

	if (ret)
		return ret;
	if (!x)
		x = 0x9e3779b9;
	mutex_lock(&td_lock);
	for (off = VTD_DATA_OFFSET; off < st->bar_size; off += 4) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		put_unaligned_le32(x, st->bar + off);
	}
	mark_dirty(st, VTD_DATA_OFFSET, st->bar_size - VTD_DATA_OFFSET);
	mutex_unlock(&td_lock);
	return count;
}
static DEVICE_ATTR_WO(fill);

static ssize_t migration_state_show(struct device *dev, struct device_attribute *attr,
				    char *buf)
{
	struct td_state *st = dev_get_drvdata(dev);
	u32 state;

	mutex_lock(&td_lock);
	state = st->mig_state;
	mutex_unlock(&td_lock);
	return sysfs_emit(buf, "%u\n", state);
}
static DEVICE_ATTR_RO(migration_state);

/* Test hook: writing 1 puts the device into ERROR, as a failed arc without recovery would. */
static ssize_t force_error_store(struct device *dev, struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct td_state *st = dev_get_drvdata(dev);
	bool on;
	int ret = kstrtobool(buf, &on);

	if (ret)
		return ret;
	if (on) {
		mutex_lock(&td_lock);
		td_end_all_sessions(st);
		st->mig_state = VFIO_DEVICE_STATE_ERROR;
		mutex_unlock(&td_lock);
	}
	return count;
}
static DEVICE_ATTR_WO(force_error);

/* Test hook: writing N makes the N-th migration arc from now fail with EIO. */
static ssize_t fail_arc_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	struct td_state *st = dev_get_drvdata(dev);
	u32 n;
	int ret = kstrtou32(buf, 0, &n);

	if (ret)
		return ret;
	mutex_lock(&td_lock);
	st->fail_arc = n;
	mutex_unlock(&td_lock);
	return count;
}
static DEVICE_ATTR_WO(fail_arc);

static struct attribute *td_attrs[] = {
	&dev_attr_force_error.attr,
	&dev_attr_fail_arc.attr,
	&dev_attr_bar_crc32.attr,
	&dev_attr_fill.attr,
	&dev_attr_migration_state.attr,
	NULL,
};

static const struct attribute_group td_attr_group = {
	.name = TD_NAME,
	.attrs = td_attrs,
};

static const struct attribute_group *td_attr_groups[] = { &td_attr_group, NULL };

/* ---------------------------------------------------------------- mdev driver */

static int td_probe(struct mdev_device *mdev)
{
	struct td_state *st = vfio_alloc_device(td_state, vdev, &mdev->dev, &td_dev_ops);
	int ret;

	if (IS_ERR(st))
		return PTR_ERR(st);
	dev_set_drvdata(&mdev->dev, st);
	ret = vfio_register_emulated_iommu_dev(&st->vdev);
	if (ret) {
		vfio_put_device(&st->vdev);
		return ret;
	}
	return 0;
}

static void td_remove(struct mdev_device *mdev)
{
	struct td_state *st = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&st->vdev);
	vfio_put_device(&st->vdev);
}

static struct mdev_driver td_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.max_instances = TD_MAX_INSTANCES,
	.driver = {
		.name = TD_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = td_attr_groups,
	},
	.probe = td_probe,
	.remove = td_remove,
};

static void td_parent_release(struct device *dev)
{
}

static int __init td_module_init(void)
{
	int ret;

	ret = mdev_register_driver(&td_driver);
	if (ret)
		return ret;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
	td_class = class_create(THIS_MODULE, TD_NAME);
#else
	td_class = class_create(TD_NAME);
#endif
	if (IS_ERR(td_class)) {
		ret = PTR_ERR(td_class);
		goto err_driver;
	}
	td_parent_dev.class = td_class;
	td_parent_dev.release = td_parent_release;
	dev_set_name(&td_parent_dev, TD_NAME);
	ret = device_register(&td_parent_dev);
	if (ret) {
		put_device(&td_parent_dev);
		goto err_class;
	}
	ret = mdev_register_parent(&td_parent, &td_parent_dev, &td_driver, td_type_list,
				   ARRAY_SIZE(td_type_list));
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_unregister(&td_parent_dev);
err_class:
	class_destroy(td_class);
err_driver:
	mdev_unregister_driver(&td_driver);
	return ret;
}

static void __exit td_module_exit(void)
{
	mdev_unregister_parent(&td_parent);
	device_unregister(&td_parent_dev);
	class_destroy(td_class);
	mdev_unregister_driver(&td_driver);
}

module_init(td_module_init);
module_exit(td_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Migratable mediated test device for VFIO userspace tests");
