#!/usr/bin/env bash
# Tests which Python peer scripts/bench.sh would run (its --check-peer): the
# default ../shared/peers/seed_store.py only when it and every directory
# above it belong to this user or root and nobody else can write them (a
# sticky directory such as /tmp excepted); $SEED_STORE whenever it is set.
# CI runs bench.sh as root, so a planted peer would run as root.
#
# Usage: tests/scripts/bench-peer.sh   (a second or so; runs no benchmark)
# Prints one line per case and "bench-peer: N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

passed=0
failed=0
t=$(mktemp -d "${TMPDIR:-/tmp}/bench-peer.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/clone/scripts" "$t/shared/peers"
cp "$root/scripts/bench.sh" "$t/clone/scripts/"
chmod 0755 "$t" "$t/clone" "$t/shared" "$t/shared/peers"
seed=$t/shared/peers/seed_store.py

# check NAME WANT [ENV…]: runs --check-peer; WANT is "use" or "skip".
check() {
    local name=$1 want=$2 out status=0 got
    shift 2
    out=$(env "$@" bash "$t/clone/scripts/bench.sh" --check-peer 2>&1) || status=$?
    case $out in
        'bench: peer: '/*) got=use ;;
        'bench: no Python peer'*) got=skip ;;
        *) got="exit $status: $out" ;;
    esac
    if [ "$status" -eq 0 ] && [ "$got" = "$want" ]; then
        echo "ok: $name ($out)"
        passed=$((passed + 1))
    else
        echo "FAILED: $name: wanted $want, got $got" >&2
        failed=$((failed + 1))
    fi
}

check "no peer file" skip
printf 'print("peer ran")\n' >"$seed"
chmod 0555 "$seed"
check "a peer of ours, read-only, in directories of ours" use
chmod 0775 "$seed"
check "a group-writable peer" skip
chmod 0757 "$seed"
check "a world-writable peer" skip
check "SEED_STORE names it explicitly" use SEED_STORE="$seed"
chmod 0555 "$seed"
chmod 0777 "$t/shared/peers"
check "a peer in a world-writable directory (not sticky)" skip
chmod 1777 "$t/shared/peers"
check "a peer in a sticky world-writable directory" use
chmod 0775 "$t/shared"
check "a peer below a group-writable directory" skip
chmod 0755 "$t/shared" "$t/shared/peers"
if [ "$(id -u)" -eq 0 ]; then
    chown 65534 "$seed"
    check "a peer owned by another user" skip
    chown 0 "$seed"
    mkdir -p "$t/planted"
    printf 'print("planted")\n' >"$t/planted/seed_store.py"
    chown -R 65534 "$t/planted"
    rm "$seed"
    ln -s "$t/planted/seed_store.py" "$seed"
    check "a symlink to another user's file" skip
else
    echo "SKIPPED: peers owned by another user (needs root to chown)"
fi

echo "bench-peer: $passed passed, $failed failed"
[ $failed -eq 0 ]
