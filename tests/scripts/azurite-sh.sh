#!/usr/bin/env bash
# Tests scripts/azurite.sh as CI runs it: it must start only an Azurite that
# really holds its port, refuse a port someone else already listens on, and
# stop only its own Azurite, never whatever PID a stale pid file names.
#
# Usage: tests/scripts/azurite-sh.sh    (needs Node 20 and npm, like the script)
#
# Uses two free ports from 10011 up (AZURITE_TEST_PORT to choose the first);
# never touches an Azurite on another port. Prints one line per test and
# "azurite-sh: N passed, M failed"; exits 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
script=$root/scripts/azurite.sh

passed=0
failed=0
pids=()
ports=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/azurite-sh.XXXXXX") || exit 1
cleanup() {
    local pid port
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for port in "${ports[@]}"; do AZURITE_PORT=$port bash "$script" stop >/dev/null 2>&1; done
    rm -rf "$scratch"
}
trap cleanup EXIT

ok() {
    echo "ok: $1"
    passed=$((passed + 1))
}
not_ok() {
    echo "FAILED: $1" >&2
    [ -s "$scratch/out" ] && sed 's/^/    /' "$scratch/out" >&2
    failed=$((failed + 1))
}

# True if something listens on TCP port $1 (any address), from /proc alone.
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v hex="$hex" 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == hex) found = 1 }
                       END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A port from $1 up that nobody listens on and that no earlier test took.
free_port() {
    local port=$1 taken
    while :; do
        taken=0
        for p in "${ports[@]}"; do [ "$p" -eq "$port" ] && taken=1; done
        if [ $taken -eq 0 ] && ! listening "$port"; then
            echo "$port"
            return
        fi
        port=$((port + 1))
    done
}

alive() { kill -0 "$1" 2>/dev/null; }

base=${AZURITE_TEST_PORT:-10011}
port=$(free_port "$base")
ports+=("$port")
squat_port=$(free_port "$((port + 1))")
ports+=("$squat_port")

# 1. start, start again (creating a container, twice), stop: the PID in the
# pid file is Azurite's and holds the port. start fails unless Azurite
# answers 201 (created) or 409 (exists) to the container's creation.
pid_file=$root/.azurite/azurite-$port.pid
if AZURITE_PORT=$port bash "$script" start >"$scratch/out" 2>&1 &&
    AZURITE_PORT=$port bash "$script" start azsh-test azsh-test >>"$scratch/out" 2>&1; then
    pid=$(cat "$pid_file" 2>/dev/null)
    if [ -n "$pid" ] && alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q azurite &&
        listening "$port"; then
        if AZURITE_PORT=$port bash "$script" stop >>"$scratch/out" 2>&1 && ! alive "$pid" &&
            [ ! -e "$pid_file" ] && ! listening "$port"; then
            ok "start, start again and stop on port $port"
        else
            not_ok "stop did not stop Azurite $pid on port $port"
        fi
    else
        not_ok "after start on port $port, the pid file does not name a live Azurite holding the port"
    fi
else
    not_ok "start on a free port $port failed"
fi

# 2. A squatter on the port: start fails, names the port, leaves the squatter alone.
python3 -m http.server "$squat_port" --bind 127.0.0.1 >/dev/null 2>&1 &
squatter=$!
pids+=("$squatter")
for _ in $(seq 1 100); do
    listening "$squat_port" && break
    sleep 0.1
done
status=0
AZURITE_PORT=$squat_port bash "$script" start >"$scratch/out" 2>&1 || status=$?
if [ $status -ne 0 ] && grep -q "$squat_port" "$scratch/out" && alive "$squatter"; then
    ok "start refuses port $squat_port that another process listens on (exit $status)"
else
    not_ok "start with a squatter on port $squat_port exited $status"
fi
kill "$squatter" 2>/dev/null
wait "$squatter" 2>/dev/null

# 3. A stale pid file naming an unrelated process: stop leaves it alive.
sleep 300 &
sleeper=$!
pids+=("$sleeper")
stale_port=$(free_port "$((squat_port + 1))")
ports+=("$stale_port")
mkdir -p "$root/.azurite"
echo "$sleeper" >"$root/.azurite/azurite-$stale_port.pid"
status=0
AZURITE_PORT=$stale_port bash "$script" stop >"$scratch/out" 2>&1 || status=$?
if [ $status -eq 0 ] && alive "$sleeper" && [ ! -e "$root/.azurite/azurite-$stale_port.pid" ]; then
    ok "stop leaves PID $sleeper (not Azurite) alive and drops the stale pid file"
else
    not_ok "stop with a stale pid file (PID $sleeper, a sleep) exited $status, sleep alive: $(alive "$sleeper" && echo yes || echo no)"
fi

# 4. .azurite/ as a symlink (in a copy of the scripts): start and stop refuse it.
mkdir -p "$scratch/clone/scripts" "$scratch/elsewhere"
cp "$root/scripts/azurite.sh" "$scratch/clone/scripts/"
cp -r "$root/scripts/lib" "$scratch/clone/scripts/"
[ ! -d "$root/scripts/azurite" ] || cp -r "$root/scripts/azurite" "$scratch/clone/scripts/"
ln -s "$scratch/elsewhere" "$scratch/clone/.azurite"
echo "$sleeper" >"$scratch/elsewhere/azurite-$stale_port.pid"
start_status=0
stop_status=0
AZURITE_PORT=$stale_port bash "$scratch/clone/scripts/azurite.sh" start >"$scratch/out" 2>&1 ||
    start_status=$?
AZURITE_PORT=$stale_port bash "$scratch/clone/scripts/azurite.sh" stop >>"$scratch/out" 2>&1 ||
    stop_status=$?
if [ $start_status -ne 0 ] && [ $stop_status -ne 0 ] && grep -q symlink "$scratch/out" &&
    [ "$(find "$scratch/elsewhere" -mindepth 1 | wc -l)" -eq 1 ] && alive "$sleeper"; then
    ok "start and stop refuse a .azurite that is a symlink"
else
    not_ok "with .azurite a symlink: start exited $start_status, stop $stop_status"
fi

echo "azurite-sh: $passed passed, $failed failed"
[ $failed -eq 0 ]
