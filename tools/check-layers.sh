#!/usr/bin/env bash
# Checks the house rules a compiler does not: each module imports only modules below it, and
# unsafe pointer code appears only where it is allowed (VFIOSyscalls, VFIOBuffers, VFIOStream).
set -euo pipefail
cd "$(dirname "$0")/.."

# module -> modules it may import (besides the standard library, Foundation where noted).
declare -A allowed=(
  [VFIOBuffers]=""
  [VFIOStream]="CCRC32C VFIOBuffers"
  [VFIOSyscalls]="CVFIO CNuma COpenSSL VFIOBuffers SystemPackage Glibc Musl"
  [VFIOCore]="VFIOStream VFIOBuffers SystemPackage"
  [VFIOKernel]="VFIOCore VFIOSyscalls VFIOBuffers VFIOStream SystemPackage Foundation"
  [VFIOMock]="VFIOCore VFIOSyscalls VFIOBuffers VFIOStream SystemPackage Foundation Synchronization Dispatch"
  [VFIOMigration]="VFIOCore VFIOKernel VFIOMock VFIOStream VFIOSyscalls VFIOBuffers SystemPackage Foundation"
)
status=0
for module in "${!allowed[@]}"; do
  dir="Sources/$module"
  [ -d "$dir" ] || continue
  while IFS=: read -r file _ line; do
    imported=$(sed -E 's/^[[:space:]]*(@[A-Za-z_]+(\([^)]*\))?[[:space:]]+)*import[[:space:]]+(struct |class |enum |protocol |func )?([A-Za-z_][A-Za-z0-9_]*).*/\4/' <<<"$line")
    case " ${allowed[$module]} " in
      *" $imported "*) ;;
      *) echo "layer violation: $file imports $imported (allowed for $module: ${allowed[$module]:-nothing})"; status=1 ;;
    esac
  done < <(grep -rnE '^[[:space:]]*(@[A-Za-z_]+(\([^)]*\))?[[:space:]]+)*import[[:space:]]' "$dir" --include='*.swift' || true)
done

# Unsafe pointer code only in the syscall layer, the buffer type and the codec.
while IFS= read -r hit; do
  echo "unsafe code outside its budget: $hit"
  status=1
done < <(grep -rnE '\bUnsafe(Mutable)?(Raw)?(Buffer)?Pointer\b|withUnsafe(Mutable)?Bytes|withUnsafe(Mutable)?BufferPointer|withUnsafe(Mutable)?Pointer|unsafeBitCast' \
           Sources tools --include='*.swift' --exclude-dir=fuzz \
         | grep -vE '^Sources/(VFIOSyscalls|VFIOBuffers|VFIOStream)/' \
         | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)

# Every unsafe use inside the budget carries a SAFETY reason within the three lines above it.
for dir in Sources/VFIOSyscalls Sources/VFIOBuffers Sources/VFIOStream; do
  [ -d "$dir" ] || continue
  while IFS= read -r f; do
    awk -v file="$f" '
      { line[NR] = $0 }
      /UnsafeMutableRawPointer\(|UnsafeRawPointer\(|UnsafeMutableRawBufferPointer\(|UnsafeRawBufferPointer\(|UnsafeMutablePointer\(bitPattern|\.allocate\(|bindMemory|assumingMemoryBound/ {
        if ($0 ~ /^[[:space:]]*\/\//) next
        ok = 0
        for (i = NR; i >= NR - 4 && i >= 1; i--) if (line[i] ~ /SAFETY:/) ok = 1
        if (!ok) { printf "unsafe use without a SAFETY reason: %s:%d: %s\n", file, NR, $0; bad = 1 }
      }
      END { exit bad }' "$f" || status=1
  done < <(find "$dir" -name '*.swift')
done

[ $status = 0 ] && echo "layers and unsafe budget: ok"
exit $status
