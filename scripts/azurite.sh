#!/usr/bin/env bash
# Starts or stops a local Azurite blob service for the Azure backend's tests.
#
#   scripts/azurite.sh start [CONTAINER…]
#       install azurite@3.35.0 into .azurite/ (once), start it in memory on
#       127.0.0.1:${AZURITE_PORT:-10000}, wait until it answers, and create the
#       containers named (etagstore never creates one itself)
#   scripts/azurite.sh stop
#       stop the Azurite this script started (by its PID)
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

# Creates a container with the emulator's well-known Shared Key (node is
# there anyway: Azurite runs on it). An existing container is fine.
create_container() {
  node -e '
    const http = require("http"), crypto = require("crypto");
    const [port, name] = process.argv.slice(1);
    const account = "devstoreaccount1";
    const key = Buffer.from("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", "base64");
    const date = new Date().toUTCString(), version = "2021-08-06";
    const toSign = `PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${version}\n/${account}/${account}/${name}\nrestype:container`;
    const signature = crypto.createHmac("sha256", key).update(toSign).digest("base64");
    const request = http.request({
      host: "127.0.0.1", port, method: "PUT", path: `/${account}/${name}?restype=container`,
      headers: { "x-ms-date": date, "x-ms-version": version, "Content-Length": 0,
                 Authorization: `SharedKey ${account}:${signature}` },
    }, (response) => {
      if (response.statusCode === 201 || response.statusCode === 409) process.exit(0);
      console.error(`error: cannot create the container ${name}: HTTP ${response.statusCode}`);
      process.exit(1);
    });
    request.on("error", (e) => { console.error(`error: ${e.message}`); process.exit(1); });
    request.end();
  ' "$port" "$1"
}

case "${1:-}" in
  start)
    shift
    if running && answers; then
      for container in "$@"; do create_container "$container"; done
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
      --blobHost 127.0.0.1 --blobPort "$port" --skipApiVersionCheck --loose --disableTelemetry \
      >"azurite-$port.log" 2>&1 </dev/null) &
    echo $! >"$pid_file"
    for _ in $(seq 1 300); do
      if answers; then
        for container in "$@"; do create_container "$container"; done
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
    echo "usage: $0 start [CONTAINER…] | stop" >&2
    exit 2
    ;;
esac
