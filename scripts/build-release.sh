#!/usr/bin/env bash
# Builds the shipped etagstore: the release profile, and on Linux with glibc
# a static binary (docs/benchmarks.md, "Static or dynamic": it starts
# faster, and its DNS look-ups still work). Prints the binary's path.
#
#   scripts/build-release.sh [CARGO BUILD ARGS...]
#
# e.g. `scripts/build-release.sh --no-default-features` (a directory-only
# binary) or `--bin etagstore --examples` (what scripts/bench.sh builds).
# Everywhere else (macOS, musl, Windows) it is a plain release build.
# A developer's `cargo build` stays plain: nothing here is in .cargo/.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${CARGO_TARGET_DIR:-target}
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$host" ] || { echo "build-release: rustc -vV names no host" >&2; exit 1; }
case $host in
    *-linux-gnu*)
        flags="-C target-feature=+crt-static"
        # Packed relative relocations: the static PIE's ~10,000 start-up
        # relocations as a bitmap, 230 KB smaller and a few page faults
        # fewer a run (docs/benchmarks.md, "Static or dynamic"). A static
        # binary relocates itself with the build host's libc.a, which reads
        # them from glibc 2.36 on; older ones keep the plain table.
        glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc //p')
        if [ -n "$glibc" ] && printf '2.36\n%s\n' "$glibc" | sort -V -C; then
            flags="$flags -C link-arg=-Wl,-z,pack-relative-relocs"
        fi
        # Naming the target, even the host's own, keeps RUSTFLAGS off build
        # scripts and proc-macros, which cannot be static.
        RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$flags" \
            cargo build --release --locked --target "$host" "$@" >&2
        echo "$out/$host/release/etagstore"
        ;;
    *)
        cargo build --release --locked "$@" >&2
        echo "$out/release/etagstore"
        ;;
esac
