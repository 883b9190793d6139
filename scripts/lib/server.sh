# Shared by scripts/azurite.sh and scripts/s3-server.sh: who holds a port,
# and stopping only the server process a script started. Each script sets
# $port and $pid_file and defines is_ours PID before calling these.

die() {
  echo "error: $*" >&2
  exit 1
}

# The inodes of the sockets listening on TCP $port, any address.
listening_inodes() {
  local hex
  hex=$(printf '%04X' "$port")
  awk -v hex="$hex" 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == hex) print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# True if process $1 has one of the sockets listening on $port open.
owns_port() {
  local inodes fd link
  inodes=$(listening_inodes)
  [ -n "$inodes" ] || return 1
  for fd in /proc/"$1"/fd/*; do
    link=$(readlink "$fd" 2>/dev/null) || continue
    case $link in
      socket:\[*\])
        link=${link#socket:[}
        grep -qx -- "${link%]}" <<<"$inodes" && return 0
        ;;
    esac
  done
  return 1
}

recorded_pid() {
  [ -f "$pid_file" ] && head -n 1 "$pid_file"
}

# Who listens on $port, for the error message: "PID (command)" or just the port.
port_holder() {
  local proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    if owns_port "$pid" 2>/dev/null; then
      echo "PID $pid ($(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | cut -c1-80))"
      return
    fi
  done
  echo "another process"
}

# Stops PID $1 if, and for as long as, it is this clone's Azurite.
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  if is_ours "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
}
