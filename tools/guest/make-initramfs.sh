#!/usr/bin/env bash
# Assemble the guest's initramfs (an uncompressed newc cpio: the kernel unpacks it fastest):
# static busybox, our /init, the VFIO modules of the unpacked kernel plus vfio_testdev.ko,
# and a payload directory (test binaries + tests.sh) with the shared-library closure of
# every ELF file in it, copied to the same absolute paths.
#
# usage: make-initramfs.sh 6.1|6.12 MODULE.ko PAYLOAD_DIR OUT.cpio
set -euo pipefail
. "$(dirname "$0")/lib.sh"

series=${1:?usage: make-initramfs.sh SERIES MODULE.ko PAYLOAD_DIR OUT.cpio}
testdev_ko=${2:?missing MODULE.ko}
payload=${3:?missing PAYLOAD_DIR}
out=${4:?missing OUT.cpio}
dir=$(series_dir "$series")
[ -f "$dir/ready" ] || die "kernel $series is not unpacked"
[ -f "$payload/tests.sh" ] || die "payload $payload has no tests.sh"
ensure_commands cpio:cpio xz:xz-utils ldd:libc-bin
BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >&2
fi
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is dynamically linked: install busybox-static"

kver=$(cat "$dir/kver")
moddir="$dir/root/lib/modules/$kver/kernel"
root="$dir/initramfs-root"
rm -rf "$root"
mkdir -p "$root"/{bin,lib/modules,proc,sys,dev,tmp,payload}

cp "$BUSYBOX" "$root/bin/busybox"
install -m 0755 "$GUEST_DIR/init.sh" "$root/init"

# Load order matters (each module needs the ones before it); vfio_virqfd is a separate
# module only before 6.2-ish kernels, so a missing one is skipped.
order=()
for m in irqbypass vfio vfio_virqfd vfio_iommu_type1 vfio-pci-core vfio-pci mdev; do
    f=$(find "$moddir" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) | head -n 1)
    if [ -z "$f" ]; then
        [ "$m" = vfio_virqfd ] && continue
        die "module $m not found under $moddir"
    fi
    case "$f" in
        *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
        *.zst) zstd -dcq "$f" >"$root/lib/modules/$m.ko" ;;
        *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    order+=("$m")
done
cp "$testdev_ko" "$root/lib/modules/vfio_testdev.ko"
order+=(vfio_testdev)
printf '%s\n' "${order[@]}" >"$root/lib/modules/load-order"

cp -a "$payload"/. "$root/payload/"

# Shared-library closure of every ELF file in the payload, at the same absolute paths.
libs=$(find "$root/payload" -type f | while read -r f; do
    if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        { ldd "$f" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
    fi
done | sort -u)
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# The dynamic loader is found through /lib64 on x86-64.
if [ -n "$libs" ] && [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ]; then
    mkdir -p "$root/lib64"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
fi

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out"
log "initramfs for $kver: $(du -h "$out" | cut -f1) ($(echo "$libs" | grep -c . || true) shared libraries)"
