#!/usr/bin/env bash
# Installs what ferrocast needs to build, run and test on Debian 12 (bookworm):
# the system packages below (apt) and, if no `cargo` is found, a Rust toolchain via
# rustup. Idempotent: packages already installed are not fetched again, an existing
# toolchain is kept. Uses sudo when not run as root.
#
# Used by the README's two commands and by CI (.ci/run).
set -euo pipefail

PACKAGES=(
    # build
    build-essential pkg-config ca-certificates curl
    # publishers and checkers used by the tests and samples
    ffmpeg x265
    gstreamer1.0-tools
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav
    # headers for the GStreamer bindings (transcode)
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    # reference server for bench/rtmp_ingest.sh
    nginx libnginx-mod-rtmp
    # the LL-HLS player test drives Debian's headless Chromium
    chromium
    # SRT publishers for the SRT ingest tests (srt-live-transmit) and the lossy-path
    # test (network namespaces, tc netem)
    srt-tools iproute2
    # a real RTSP server (GStreamer's, driven from Python) for the RTSP pull tests
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
)
# The player page embeds hls.js from npm at build time (build.rs runs `npm ci`). Checked
# by command, not package: a NodeSource `nodejs` ships its own npm and conflicts with
# Debian's `npm` package.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

log() { printf 'setup: %s\n' "$*" >&2; }

# Runs a command with its output kept in a log that is shown only if it fails.
quietly() {
    local out rc=0
    out=$(mktemp)
    "$@" >"$out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" >&2
        log "failed ($rc): $*"
    fi
    rm -f "$out"
    return "$rc"
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        log "not root and sudo is not installed: run this as root"
        exit 1
    fi
    SUDO=(sudo)
fi

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s\n' "$p"
        fi
    done
}

if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: this script targets Debian 12; install the equivalents of: ${PACKAGES[*]}"
    exit 1
fi

mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -gt 0 ] || [ "${CI:-}" = "true" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Installing nginx would start its service on port 80 (and fail the install if that
    # port is taken). On a throwaway CI machine, tell invoke-rc.d not to start services.
    POLICY=/usr/sbin/policy-rc.d
    ADDED_POLICY=0
    if [ "${CI:-}" = "true" ] && [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY"
        ADDED_POLICY=1
    fi
    log "apt-get update"
    quietly "${SUDO[@]}" apt-get update -q
    log "apt-get install ${#MISSING[@]} missing package(s): ${MISSING[*]:-none}"
    quietly "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
    if [ "$ADDED_POLICY" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
else
    log "system packages already installed"
fi

# Rust: keep whatever toolchain is there; install one via rustup only if none is. The
# version is pinned to the one the project is developed with, so that a fresh machine
# (CI) gets the same clippy lints; RUST_TOOLCHAIN=stable (or another) overrides it.
RUST_TOOLCHAIN=${RUST_TOOLCHAIN:-1.95.0}
if [ -x "$HOME/.cargo/bin/cargo" ] && ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "installing Rust $RUST_TOOLCHAIN (rustup, minimal profile + rustfmt + clippy)"
    # rustup-init straight from static.rust-lang.org (what https://sh.rustup.rs fetches).
    case "$(uname -m)" in
    x86_64 | aarch64) triple="$(uname -m)-unknown-linux-gnu" ;;
    *)
        log "no rustup-init for $(uname -m): install Rust from https://rustup.rs"
        exit 1
        ;;
    esac
    init_dir=$(mktemp -d)
    curl --proto '=https' --tlsv1.2 -sSfL -o "$init_dir/rustup-init" \
        "https://static.rust-lang.org/rustup/dist/$triple/rustup-init"
    chmod +x "$init_dir/rustup-init"
    quietly "$init_dir/rustup-init" -y --no-modify-path --profile minimal \
        --default-toolchain "$RUST_TOOLCHAIN" --component rustfmt,clippy
    rm -rf "$init_dir"
    export PATH="$HOME/.cargo/bin:$PATH"
elif command -v rustup >/dev/null 2>&1; then
    # A rustup toolchain without the components the tests use.
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        log "adding rustfmt and clippy"
        quietly rustup component add rustfmt clippy
    fi
fi
log "ready: $(cargo --version)"
