#!/usr/bin/env bash
# Download one of Debian's kernels (image + headers) without installing it, and unpack it
# into the guest cache: an ELF vmlinux for QEMU's PVH entry, /lib/modules, and a header
# tree that can build out-of-tree modules.
#
# usage: fetch-kernel.sh 6.1|6.12
# prints the cache directory of that kernel on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

series=${1:?usage: fetch-kernel.sh 6.1|6.12}
meta=$(meta_image_package "$series")
dir=$(series_dir "$series")

ensure_commands dpkg-deb:dpkg xz:xz-utils zstd:zstd apt-cache:apt

# The ABI name changes with every security update: resolve it now, from the meta package.
# Without package lists (offline), fall back to a kernel unpacked earlier.
image=
if apt_update_once; then
    image=$(apt-cache depends "$meta" | awk '/Depends: linux-image-/ { print $2; exit }')
fi
if [ -z "$image" ]; then
    if [ -f "$dir/ready" ]; then
        log "warning: cannot resolve $meta; using the kernel unpacked earlier ($(cat "$dir/kver"))"
        echo "$dir"
        exit 0
    fi
    die "cannot resolve the image package behind $meta"
fi
kver=${image#linux-image-}
headers="linux-headers-$kver"
deps=$(apt-cache depends "$headers")
common=$(awk '/Depends: linux-headers-.*-common/ { print $2; exit }' <<<"$deps")
kbuild=$(awk '/Depends: linux-kbuild-/ { print $2; exit }' <<<"$deps")
[ -n "$common" ] && [ -n "$kbuild" ] || die "cannot resolve the header packages of $headers"

if [ -f "$dir/ready" ] && [ "$(cat "$dir/kver")" = "$kver" ]; then
    log "kernel $kver already unpacked in $dir"
    echo "$dir"
    exit 0
fi

start=$(now)
debs="$GUEST_CACHE/debs"
mkdir -p "$debs"
for pkg in "$image" "$headers" "$common" "$kbuild"; do
    if ! ls "$debs/${pkg}_"*.deb >/dev/null 2>&1; then
        log "apt-get download $pkg"
        (cd "$debs" && apt-get download -qq "$pkg" >&2 2>/dev/null) || die "apt-get download $pkg failed"
    fi
done

rm -rf "$dir"
mkdir -p "$dir/root"
deb_of() { ls "$debs/${1}_"*.deb | head -n 1; }
# From the image only the kernel and the modules the guest loads (about 2% of it).
dpkg-deb --fsys-tarfile "$(deb_of "$image")" |
    tar -x -C "$dir/root" --wildcards './boot/vmlinuz-*' \
        './lib/modules/*/kernel/drivers/vfio/*' './lib/modules/*/kernel/virt/lib/*'
for pkg in "$headers" "$common" "$kbuild"; do
    dpkg-deb -x "$(deb_of "$pkg")" "$dir/root"
done
echo "$kver" >"$dir/kver"

# The headers' top Makefile includes the -common tree by its installed absolute path:
# point it at our unpacked copy instead.
hdr="$dir/root/usr/src/$headers"
[ -f "$hdr/Makefile" ] || die "no header Makefile in $hdr"
sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" "$hdr/Makefile"
# kbuild tools (fixdep, modpost, ...) are a symlink into /usr/lib/linux-kbuild-*; relink.
for link in "$hdr/scripts" "$hdr/tools" "$dir/root/usr/src/linux-headers-"*common*/scripts "$dir/root/usr/src/linux-headers-"*common*/tools; do
    if [ -L "$link" ]; then
        target=$(readlink "$link")
        case "$target" in
            /*) ln -sfn "$dir/root$target" "$link" ;;
        esac
    fi
done
ln -sfn "$hdr" "$dir/headers"

# Extract the ELF vmlinux from the bzImage: the setup header says where the compressed
# payload starts (payload_offset at 0x248, relative to the protected-mode code that
# begins after the setup sectors) and how long it is (payload_length at 0x24c).
vmlinuz="$dir/root/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no $vmlinuz"
setup_sects=$(od -An -tu1 -j 0x1f1 -N1 "$vmlinuz" | tr -d ' ')
[ "$setup_sects" -eq 0 ] && setup_sects=4
poff=$(od -An -tu4 -j 0x248 -N4 "$vmlinuz" | tr -d ' ')
plen=$(od -An -tu4 -j 0x24c -N4 "$vmlinuz" | tr -d ' ')
skip=$(( (setup_sects + 1) * 512 + poff ))
magic=$(od -An -tx1 -j "$skip" -N4 "$vmlinuz" | tr -d ' ')
case "$magic" in
    fd377a58) decomp="xz -dc" ;;
    28b52ffd) decomp="zstd -dcq" ;;
    *) die "unknown kernel payload compression (magic $magic)" ;;
esac
# The build appends the uncompressed size as 4 little-endian bytes to the payload; the
# decompressors reject them as trailing garbage, so cut them off and check the size.
{ tail -c +$((skip + 1)) "$vmlinuz" || true; } | head -c $((plen - 4)) | $decomp >"$dir/vmlinux" ||
    die "cannot decompress the kernel payload of $vmlinuz"
want=$(od -An -tu4 -j $((skip + plen - 4)) -N4 "$vmlinuz" | tr -d ' ')
[ "$(stat -c %s "$dir/vmlinux")" = "$want" ] || die "extracted vmlinux has the wrong size"
[ "$(od -An -tx1 -N4 "$dir/vmlinux" | tr -d ' ')" = 7f454c46 ] || die "extracted vmlinux is not an ELF file"

touch "$dir/ready"
log "kernel $kver unpacked in $(elapsed "$start") s"
echo "$dir"
