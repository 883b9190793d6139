#!/usr/bin/env bash
# Starts or stops a local Azurite blob service for the Azure backend's tests.
#
#   scripts/azurite.sh start   install azurite@3.35.0 into .azurite/ (once), start it
#                              in memory on 127.0.0.1:${AZURITE_PORT:-10000}, wait until it answers
#   scripts/azurite.sh stop    stop the Azurite this script started (by its PID)
#
# Both are idempotent. Azurite 3.35.0 is pinned: later versions need Node 21+.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.35.0
dir=.azurite
port=${AZURITE_PORT:-10000}
pid_file=$dir/azurite-$port.pid
log_file=$dir/azurite-$port.log

answers() {
  # Any HTTP answer (even 400) means it is up.
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/devstoreaccount1?comp=list" 2>/dev/null
}

running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

case "${1:-}" in
  start)
    if running && answers; then
      exit 0
    fi
    if [ ! -x "$dir/node_modules/.bin/azurite-blob" ] \
      || [ "$(node -p "require('./$dir/node_modules/azurite/package.json').version" 2>/dev/null)" != "$version" ]; then
      command -v npm >/dev/null || { echo "error: npm is needed to install Azurite (Node 20)" >&2; exit 1; }
      mkdir -p "$dir"
      npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$version" >&2
    fi
    # setsid: Azurite gets its own session, so it outlives this script and
    # a Ctrl-C in the terminal that started it.
    # Run from .azurite/, so whatever Azurite writes in its working directory stays there.
    (cd "$dir" && exec setsid node_modules/.bin/azurite-blob --inMemoryPersistence \
      --blobHost 127.0.0.1 --blobPort "$port" --skipApiVersionCheck --loose \
      >"azurite-$port.log" 2>&1 </dev/null) &
    echo $! >"$pid_file"
    for _ in $(seq 1 300); do
      if answers; then
        exit 0
      fi
      if ! running; then
        echo "error: Azurite exited at start; see $log_file" >&2
        cat "$log_file" >&2
        exit 1
      fi
      sleep 0.1
    done
    echo "error: Azurite did not answer on 127.0.0.1:$port within 30 s; see $log_file" >&2
    exit 1
    ;;
  stop)
    if running; then
      pid=$(cat "$pid_file")
      kill "$pid"
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
