#!/usr/bin/env bash
# Starts or stops a local S3 test server (moto's standalone server) for the
# S3 backend's tests.
#
#   scripts/s3-server.sh start
#       install moto[server]==5.2.5 into .venv-s3/ (once, with the exact
#       versions of scripts/requirements-s3.txt, --no-deps), start it on
#       127.0.0.1:${S3_PORT:-5000} and wait until it answers
#   scripts/s3-server.sh stop
#       stop the server this script started on that port
#
# Both are idempotent. moto is a test double of S3, not S3 (docs/s3.md).
# The venv's python also has boto3, which the tests use to write objects
# the way other tools do.
#
# `start` succeeds only when the process it started (or started earlier) is
# this clone's moto_server and itself holds the port: a port another
# process already listens on is refused, so test data never goes to a
# stranger. `stop` kills only a PID that is this clone's moto_server on that
# port (its command line, working directory and listening socket say so);
# a stale pid file naming any other process is dropped, and that process is
# left alone. The same approach as scripts/azurite.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# who holds the port, stopping our own server: shared with the other server script
. scripts/lib/server.sh

venv=.venv-s3
requirements=scripts/requirements-s3.txt
stamp=$venv/.requirements
port=${S3_PORT:-5000}
case $port in
  '' | *[!0-9]* | 0*) echo "error: S3_PORT must be a port number, not '$port'" >&2; exit 2 ;;
esac
[ "$port" -le 65535 ] || { echo "error: S3_PORT must be a port number, not '$port'" >&2; exit 2; }
pid_file=$venv/moto-$port.pid
log_file=$venv/moto-$port.log


# .venv-s3/ holds the pid file this script trusts and the code it runs: it
# must be a real directory of this user that nobody else can write to.
check_dir() {
  if [ -L "$venv" ]; then
    die "$PWD/$venv is a symlink; refusing to use it (remove it and run again)"
  fi
  [ -e "$venv" ] || return 0
  [ -d "$venv" ] || die "$PWD/$venv is not a directory"
  local owner mode
  read -r owner mode < <(stat -c '%u %a' "$venv")
  [ "$owner" -eq "$(id -u)" ] ||
    die "$PWD/$venv belongs to user $owner, not to $(id -un); refusing to use it"
  [ $((8#$mode & 8#022)) -eq 0 ] ||
    die "$PWD/$venv is writable by group or others (mode $mode); run: chmod go-w $venv"
}

answers() {
  # Any HTTP answer means something is up; who, owns_port says.
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null
}



# True if PID $1 is the server this script starts from this clone on $port:
# moto_server on its command line with this port, run from this .venv-s3/.
is_ours() {
  local pid=$1 cmdline cwd
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  cmdline=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || return 1
  case " $cmdline" in
    *moto_server*" -p $port "*) ;;
    *) return 1 ;;
  esac
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [ "$cwd" = "$(pwd -P)/$venv" ]
}



# --no-deps: the file pins every package, dependencies included.
install() {
  if [ -x "$venv/bin/moto_server" ] && cmp -s "$requirements" "$stamp"; then
    return
  fi
  local python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    (umask 022 && "$python" -m venv "$venv") || die "cannot create $PWD/$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps -r "$requirements" >&2 || die "pip install into $PWD/$venv failed"
  "$venv/bin/python" -c 'import moto, boto3' || die "moto is not importable from $PWD/$venv"
  cp "$requirements" "$stamp"
}


case "${1:-}" in
  start)
    check_dir
    pid=$(recorded_pid || true)
    if is_ours "$pid"; then
      # Ours, and up or still starting: wait for it below.
      :
    else
      if [ -n "$pid" ]; then
        echo "note: $pid_file named PID $pid, which is not this S3 server; ignoring it" >&2
      fi
      rm -f "$pid_file"
      if [ -n "$(listening_inodes)" ]; then
        die "127.0.0.1:$port is already in use by $(port_holder); not starting the S3 server there (stop that process, or choose another S3_PORT)"
      fi
      install
      # setsid: its own session, so it outlives this script and a Ctrl-C in
      # the terminal that started it; run from .venv-s3/, so whatever it
      # writes in its working directory stays there; `exec` keeps the PID
      # that $! names. The absolute path of the venv's python puts
      # moto_server on the command line is_ours checks.
      (cd "$venv" && exec setsid "$PWD/bin/python" "$PWD/bin/moto_server" -H 127.0.0.1 -p "$port" \
        >"moto-$port.log" 2>&1 </dev/null) &
      pid=$!
      echo "$pid" >"$pid_file"
    fi
    for _ in $(seq 1 300); do
      if is_ours "$pid" && owns_port "$pid" && answers; then
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pid_file"
        echo "error: the S3 server exited at start; see $PWD/$log_file" >&2
        cat "$log_file" >&2
        exit 1
      fi
      sleep 0.1
    done
    if is_ours "$pid"; then stop_pid "$pid"; fi
    rm -f "$pid_file"
    die "the S3 server did not answer on 127.0.0.1:$port within 30 s; see $PWD/$log_file"
    ;;
  stop)
    check_dir
    pid=$(recorded_pid || true)
    if is_ours "$pid"; then
      stop_pid "$pid"
    elif [ -n "$pid" ]; then
      echo "note: $pid_file named PID $pid, which is not this S3 server; not stopping it" >&2
    fi
    rm -f "$pid_file"
    ;;
  *)
    echo "usage: $0 start | stop" >&2
    exit 2
    ;;
esac
