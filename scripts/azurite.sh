#!/usr/bin/env bash
# Starts or stops a local Azurite blob service for the Azure backend's tests.
#
#   scripts/azurite.sh start [CONTAINER…]
#       install azurite@3.35.0 into .azurite/ (once, from the committed
#       lockfile scripts/azurite/package-lock.json, with npm ci
#       --ignore-scripts), start it in memory on 127.0.0.1:${AZURITE_PORT:-10000},
#       wait until it answers, and create the containers named (etagstore
#       never creates one itself)
#   scripts/azurite.sh stop
#       stop the Azurite this script started on that port
#
# Both are idempotent. Azurite 3.35.0 is pinned: later versions need Node 21+.
#
# `start` succeeds only when the process it started (or started earlier) is
# Azurite and itself holds the port: a port another process already listens
# on is refused, so test data never goes to a stranger. `stop` kills only a
# PID that is this clone's Azurite on that port (its command line, working
# directory and listening socket say so); a stale pid file naming any other
# process is dropped, and that process is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# who holds the port, stopping our own server: shared with the other server script
. scripts/lib/server.sh

version=3.35.0
dir=.azurite
lock_dir=scripts/azurite
port=${AZURITE_PORT:-10000}
case $port in
  '' | *[!0-9]* | 0*) echo "error: AZURITE_PORT must be a port number, not '$port'" >&2; exit 2 ;;
esac
[ "$port" -le 65535 ] || { echo "error: AZURITE_PORT must be a port number, not '$port'" >&2; exit 2; }
pid_file=$dir/azurite-$port.pid
log_file=$dir/azurite-$port.log


# .azurite/ holds the pid file this script trusts and the code it runs: it
# must be a real directory of this user that nobody else can write to.
check_dir() {
  if [ -L "$dir" ]; then
    die "$PWD/$dir is a symlink; refusing to use it (remove it and run again)"
  fi
  if [ ! -e "$dir" ]; then
    (umask 022 && mkdir "$dir")
    return
  fi
  [ -d "$dir" ] || die "$PWD/$dir is not a directory"
  local owner mode
  read -r owner mode < <(stat -c '%u %a' "$dir")
  [ "$owner" -eq "$(id -u)" ] ||
    die "$PWD/$dir belongs to user $owner, not to $(id -un); refusing to use it"
  [ $((8#$mode & 8#022)) -eq 0 ] ||
    die "$PWD/$dir is writable by group or others (mode $mode); run: chmod go-w $dir"
}

answers() {
  # Any HTTP answer (even 400) means something is up; who, owns_port says.
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/devstoreaccount1?comp=list" 2>/dev/null
}



# True if PID $1 is the Azurite this script starts from this clone on $port:
# azurite-blob on its command line with this port, run from this .azurite/.
is_ours() {
  local pid=$1 cmdline cwd
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  cmdline=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || return 1
  case " $cmdline" in
    *azurite-blob*" --blobPort $port "*) ;;
    *) return 1 ;;
  esac
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [ "$cwd" = "$(pwd -P)/$dir" ]
}



create_containers() {
  local container
  for container in "$@"; do create_container "$container"; done
}

# An account SAS of the emulator's well-known account (blobs; services,
# containers and blobs; rwdlac; until 2099): its key is public, so the token
# is a constant and this script signs nothing. tests/integration/azurite.rs
# checks it against the SAS the tests compute.
sas='sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig=kV1%2FDJNn7340SUtIltqF6L9gEwifTOYTqBxfQeMSrhM%3D'

# Creates a container; an existing one is fine.
create_container() {
  local status
  case $1 in
    '' | *[!a-z0-9-]*) die "'$1' is not a container name (lower-case letters, digits and '-')" ;;
  esac
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT \
    -H 'x-ms-version: 2021-08-06' -H 'Content-Length: 0' \
    "http://127.0.0.1:$port/devstoreaccount1/$1?restype=container&$sas") || status=000
  case $status in
    201 | 409) ;;
    *) die "cannot create the container $1: HTTP $status" ;;
  esac
}

# npm ci installs exactly the committed lockfile; --ignore-scripts runs no
# package's install scripts (Azurite's tree has none it needs).
install() {
  if [ -x "$dir/node_modules/.bin/azurite-blob" ] &&
    cmp -s "$lock_dir/package-lock.json" "$dir/package-lock.json" &&
    cmp -s "$lock_dir/package.json" "$dir/package.json" &&
    [ "$(node -p "require('./$dir/node_modules/azurite/package.json').version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  command -v npm >/dev/null || die "npm is needed to install Azurite (Node 20)"
  cp "$lock_dir/package.json" "$lock_dir/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --silent --no-audit --no-fund >&2) ||
    die "npm ci in $PWD/$dir failed"
}


case "${1:-}" in
  start)
    shift
    check_dir
    pid=$(recorded_pid || true)
    if is_ours "$pid"; then
      # Ours, and up or still starting: wait for it below.
      :
    else
      if [ -n "$pid" ]; then
        echo "note: $pid_file named PID $pid, which is not this Azurite; ignoring it" >&2
      fi
      rm -f "$pid_file"
      if [ -n "$(listening_inodes)" ]; then
        die "127.0.0.1:$port is already in use by $(port_holder); not starting Azurite there (stop that process, or choose another AZURITE_PORT)"
      fi
      install
      # setsid: Azurite gets its own session, so it outlives this script and
      # a Ctrl-C in the terminal that started it. Run from .azurite/, so
      # whatever Azurite writes in its working directory stays there; `exec`
      # keeps the PID that $! names (setsid does not fork here: a
      # background job of a script leads no process group).
      (cd "$dir" && exec setsid node_modules/.bin/azurite-blob --inMemoryPersistence \
        --blobHost 127.0.0.1 --blobPort "$port" --skipApiVersionCheck --loose --disableTelemetry \
        >"azurite-$port.log" 2>&1 </dev/null) &
      pid=$!
      echo "$pid" >"$pid_file"
    fi
    for _ in $(seq 1 300); do
      # Up only when the answer comes from our process: something else
      # answering on the port is not Azurite.
      if is_ours "$pid" && owns_port "$pid" && answers; then
        create_containers "$@"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pid_file"
        echo "error: Azurite exited at start; see $PWD/$log_file" >&2
        cat "$log_file" >&2
        exit 1
      fi
      sleep 0.1
    done
    if is_ours "$pid"; then stop_pid "$pid"; fi
    rm -f "$pid_file"
    die "Azurite did not answer on 127.0.0.1:$port within 30 s; see $PWD/$log_file"
    ;;
  stop)
    check_dir
    pid=$(recorded_pid || true)
    if is_ours "$pid"; then
      stop_pid "$pid"
    elif [ -n "$pid" ]; then
      echo "note: $pid_file named PID $pid, which is not this Azurite; not stopping it" >&2
    fi
    rm -f "$pid_file"
    ;;
  *)
    echo "usage: $0 start [CONTAINER…] | stop" >&2
    exit 2
    ;;
esac
