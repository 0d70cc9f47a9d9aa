# Shared helpers for the guest harness scripts (sourced, not run).
# shellcheck shell=bash

GUEST_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$GUEST_DIR/../.." && pwd)"
# Everything downloaded or generated lives here; it is gitignored.
GUEST_CACHE="${GUEST_CACHE:-$REPO_ROOT/.guest-cache}"

log() { printf '[guest] %s\n' "$*" >&2; }
die() { printf '[guest] error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with sub-second precision, for the timing lines.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Map a series name (6.1, 6.12) to the Debian meta package that tracks it.
meta_image_package() {
    case "$1" in
        6.1) echo linux-image-amd64 ;;
        6.12) echo linux-image-6.12-amd64 ;;
        *) die "unknown kernel series '$1' (expected 6.1 or 6.12)" ;;
    esac
}

# Directory holding the unpacked kernel of a series.
series_dir() { echo "$GUEST_CACHE/kernel-$1"; }

# apt-get update once per run of a top-level script (look-ups need fresh lists).
APT_UPDATED=${APT_UPDATED:-0}
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        APT_UPDATED=1
        export APT_UPDATED
    fi
}

# Install Debian packages for any of the given "command:package" pairs whose command is missing.
ensure_commands() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_update_once || return 1
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Install any of the given Debian packages that are not installed yet.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_update_once || return 1
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
