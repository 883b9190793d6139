#!/usr/bin/env bash
# Tests scripts/s3-server.sh as CI runs it: it must start only an S3 server that
# really holds its port, refuse a port someone else already listens on, and
# stop only its own S3 server, never whatever PID a stale pid file names.
#
# Usage: tests/scripts/s3-server-sh.sh    (needs python3 with venv, like the script)
#
# Uses two free ports from 10011 up (S3_TEST_PORT to choose the first);
# never touches a server on another port. Prints one line per test and
# "s3-server-sh: N passed, M failed"; exits 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
script=$root/scripts/s3-server.sh

passed=0
failed=0
pids=()
ports=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/s3-server-sh.XXXXXX") || exit 1
cleanup() {
    local pid port
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for port in "${ports[@]}"; do S3_PORT=$port bash "$script" stop >/dev/null 2>&1; done
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

base=${S3_TEST_PORT:-5011}
port=$(free_port "$base")
ports+=("$port")
squat_port=$(free_port "$((port + 1))")
ports+=("$squat_port")

# 1. start, start again, stop: the PID in the pid file is the S3 server's and holds the port.
pid_file=$root/.venv-s3/moto-$port.pid
if S3_PORT=$port bash "$script" start >"$scratch/out" 2>&1 &&
    S3_PORT=$port bash "$script" start >>"$scratch/out" 2>&1; then
    pid=$(cat "$pid_file" 2>/dev/null)
    if [ -n "$pid" ] && alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q moto_server &&
        listening "$port"; then
        if S3_PORT=$port bash "$script" stop >>"$scratch/out" 2>&1 && ! alive "$pid" &&
            [ ! -e "$pid_file" ] && ! listening "$port"; then
            ok "start, start again and stop on port $port"
        else
            not_ok "stop did not stop the S3 server $pid on port $port"
        fi
    else
        not_ok "after start on port $port, the pid file does not name a live S3 server holding the port"
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
S3_PORT=$squat_port bash "$script" start >"$scratch/out" 2>&1 || status=$?
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
mkdir -p "$root/.venv-s3"
echo "$sleeper" >"$root/.venv-s3/moto-$stale_port.pid"
status=0
S3_PORT=$stale_port bash "$script" stop >"$scratch/out" 2>&1 || status=$?
if [ $status -eq 0 ] && alive "$sleeper" && [ ! -e "$root/.venv-s3/moto-$stale_port.pid" ]; then
    ok "stop leaves PID $sleeper (not the S3 server) alive and drops the stale pid file"
else
    not_ok "stop with a stale pid file (PID $sleeper, a sleep) exited $status, sleep alive: $(alive "$sleeper" && echo yes || echo no)"
fi

# 4. .venv-s3/ as a symlink (in a copy of the scripts): start and stop refuse it.
mkdir -p "$scratch/clone/scripts" "$scratch/elsewhere"
cp "$root/scripts/s3-server.sh" "$scratch/clone/scripts/"
cp -r "$root/scripts/lib" "$scratch/clone/scripts/"
ln -s "$scratch/elsewhere" "$scratch/clone/.venv-s3"
echo "$sleeper" >"$scratch/elsewhere/moto-$stale_port.pid"
start_status=0
stop_status=0
S3_PORT=$stale_port bash "$scratch/clone/scripts/s3-server.sh" start >"$scratch/out" 2>&1 ||
    start_status=$?
S3_PORT=$stale_port bash "$scratch/clone/scripts/s3-server.sh" stop >>"$scratch/out" 2>&1 ||
    stop_status=$?
if [ $start_status -ne 0 ] && [ $stop_status -ne 0 ] && grep -q symlink "$scratch/out" &&
    [ "$(find "$scratch/elsewhere" -mindepth 1 | wc -l)" -eq 1 ] && alive "$sleeper"; then
    ok "start and stop refuse a .venv-s3 that is a symlink"
else
    not_ok "with .venv-s3 a symlink: start exited $start_status, stop $stop_status"
fi

echo "s3-server-sh: $passed passed, $failed failed"
[ $failed -eq 0 ]
