#!/bin/sh
# Racing writers on one counter, three ways, against a fresh temporary store:
#
#   set-unsafe       get, add one, set-unsafe   (last writer wins: loses updates)
#   get/set --etag   get -o, add one, set --etag; on exit 3 re-read and retry
#   edit --jq        edit --jq '.n += 1'        (etagstore retries on conflict)
#
# Usage: scripts/race-demo.sh [--markdown] [WRITERS] [INCREMENTS]    (default 8 x 25)
#
# --markdown prints the table as a Markdown table followed by one line that
# sums it up, both from this run's counts (for a CI job summary:
# examples/ci/race-demo.yml).
#
# Every writer waits for a 'go' file, so they all start together. Prints one
# table and exits 1 if a safe method (set --etag, edit) lost an update or a
# writer failed; 2 on a usage error. Needs only the etagstore binary and POSIX
# tools: $ETAGSTORE_BIN, else etagstore on PATH, else this clone's release
# build, else its debug build, else it builds one with cargo.

set -u

usage() {
    echo "usage: $0 [--markdown] [WRITERS] [INCREMENTS]   (positive integers; default 8 25)" >&2
    exit 2
}

is_count() {
    case $1 in
        '' | *[!0-9]* | 0 | 0*) return 1 ;;
    esac
}

markdown=
if [ "${1:-}" = --markdown ]; then
    markdown=1
    shift
fi
[ $# -le 2 ] || usage
writers=${1:-8}
increments=${2:-25}
is_count "$writers" && is_count "$increments" || usage
expected=$((writers * increments))

root=$(cd "$(dirname "$0")/.." && pwd)

# The newest etagstore that cargo built in this clone for profile $1, in
# target/$1 or, when a target triple is configured, target/<triple>/$1.
built() {
    found=
    for candidate in "$root/target/$1/etagstore" "$root"/target/*/"$1"/etagstore; do
        [ -x "$candidate" ] || continue
        if [ -z "$found" ] || [ "$candidate" -nt "$found" ]; then
            found=$candidate
        fi
    done
    [ -n "$found" ] && echo "$found"
}

if [ -n "${ETAGSTORE_BIN:-}" ]; then
    bin=$ETAGSTORE_BIN
elif command -v etagstore >/dev/null 2>&1; then
    bin=$(command -v etagstore)
elif bin=$(built release); then
    :
elif bin=$(built debug); then
    :
else
    echo "race-demo: no etagstore binary found; building one with cargo" >&2
    (cd "$root" && cargo build --release --locked >&2) || exit 1
    bin=$(built release) || { echo "race-demo: cargo built no binary" >&2; exit 1; }
fi
[ -x "$bin" ] || { echo "race-demo: '$bin' is not an executable" >&2; exit 1; }
echo "race-demo: $bin, $writers writers x $increments increments" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/race-demo.XXXXXX") || exit 1
pids=
# Background jobs of a script ignore Ctrl-C: stop the writers on the way out.
trap 'kill $pids 2>/dev/null; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
store=$work/store

es() {
    "$bin" --store "$store" "$@"
}

# The counter's value from a document {"n": N} on stdin, in any layout
# (set writes {"n": N}; edit --jq writes jq's indented form).
count_of() {
    tr -d ' \t\r\n' | sed -n 's/^{"n":\([0-9][0-9]*\)}$/\1/p'
}

# Milliseconds since the epoch (to the second where date has no %N).
now_ms() {
    t=$(date +%s%N 2>/dev/null)
    case $t in
        '' | *[!0-9]*) echo $(($(date +%s) * 1000)) ;;
        *) echo $((t / 1000000)) ;;
    esac
}

# Records an unexpected failure of writer $1; the script then exits 1.
failed() {
    echo "writer $1: $2" >>"$work/errors"
}

# One writer: $1 = method, $2 = writer number. Writes its count of conflicts
# (set --etag: exit 3 then retried; edit: edits that gave up with exit 3).
writer() {
    method=$1 w=$2 key=$1 conflicts=0 i=0
    : >"$work/ready.$w"
    while [ ! -e "$work/go" ]; do
        sleep 0.01 2>/dev/null || sleep 1
    done
    while [ $i -lt "$increments" ]; do
        i=$((i + 1))
        case $method in
            unsafe)
                n=$(es get "$key" | count_of)
                [ -n "$n" ] || { failed "$w" "cannot read the counter"; break; }
                es set-unsafe "$key" "{\"n\": $((n + 1))}" >/dev/null ||
                    { failed "$w" "set-unsafe failed"; break; }
                ;;
            etag)
                while :; do
                    etag=$(es get "$key" -o "$work/doc.$w") ||
                        { failed "$w" "get failed"; break 2; }
                    n=$(count_of <"$work/doc.$w")
                    [ -n "$n" ] || { failed "$w" "cannot read the counter"; break 2; }
                    es set "$key" "{\"n\": $((n + 1))}" --etag "$etag" \
                        >/dev/null 2>"$work/stderr.$w"
                    status=$?
                    [ $status -eq 0 ] && break
                    if [ $status -ne 3 ]; then
                        failed "$w" "set exited $status: $(cat "$work/stderr.$w")"
                        break 2
                    fi
                    conflicts=$((conflicts + 1))
                done
                ;;
            edit)
                es edit "$key" --jq '.n += 1' --retries 100000 >/dev/null 2>"$work/stderr.$w"
                status=$?
                if [ $status -eq 3 ]; then
                    conflicts=$((conflicts + 1))
                elif [ $status -ne 0 ]; then
                    failed "$w" "edit exited $status: $(cat "$work/stderr.$w")"
                    break
                fi
                ;;
        esac
    done
    echo "$conflicts" >"$work/conflicts.$w"
}

# Runs the race for one method and prints its row of the table.
race() {
    method=$1 label=$2
    [ -z "$markdown" ] || label="\`$label\`"
    rm -f "$work"/go "$work"/ready.* "$work"/conflicts.*
    es set-unsafe "$method" '{"n": 0}' >/dev/null || exit 1
    w=0 pids=
    while [ $w -lt "$writers" ]; do
        w=$((w + 1))
        writer "$method" "$w" &
        pids="$pids $!"
    done
    # Release them together once every writer is waiting.
    while [ "$(ls "$work" | grep -c '^ready\.')" -lt "$writers" ]; do
        sleep 0.01 2>/dev/null || sleep 1
    done
    start=$(now_ms)
    : >"$work/go"
    wait
    ms=$(($(now_ms) - start))
    pids=

    final=$(es get "$method" | count_of)
    [ -n "$final" ] || { echo "race-demo: cannot read the final $method counter" >&2; exit 1; }
    conflicts=$(cat "$work"/conflicts.* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    case $method in
        unsafe)
            acknowledged=$expected
            shown=n/a
            ;;
        etag)
            acknowledged=$expected
            shown=$conflicts
            ;;
        edit)
            # An edit that ran out of retries exited 3: not acknowledged, so
            # not lost; the column shows how many (etagstore retries inside).
            acknowledged=$((expected - conflicts))
            shown="$conflicts gave up"
            ;;
    esac
    lost=$((acknowledged - final))
    row "$label" "$writers" "$expected" "$final" "$lost" "$shown" "$ms"
    echo "$lost" >"$work/lost.$method"
    if [ "$method" != unsafe ] && [ "$lost" -ne 0 ]; then
        echo "$label: $lost acknowledged updates lost (final $final, acknowledged $acknowledged)" \
            >>"$work/errors"
    fi
}

# One line of the table: aligned columns, or a Markdown row.
row() {
    if [ -n "$markdown" ]; then
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"
    else
        printf '%-16s %7s %8s %11s %12s %17s %13s\n' "$@"
    fi
}

row method writers expected "final count" "lost updates" "conflicts/retries" "wall time ms"
[ -z "$markdown" ] || echo '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
race unsafe "set-unsafe"
race etag "get/set --etag"
race edit "edit --jq"
if [ -n "$markdown" ]; then
    echo
    echo "$writers writers x $increments increments on one counter:" \
        "\`set-unsafe\` lost $(cat "$work/lost.unsafe") of $expected updates;" \
        "\`set --etag\` lost $(cat "$work/lost.etag") and \`edit\` lost $(cat "$work/lost.edit")" \
        "of those they acknowledged."
fi

if [ -s "$work/errors" ]; then
    echo "race-demo: FAILED" >&2
    cat "$work/errors" >&2
    exit 1
fi
echo "race-demo: no acknowledged update lost by set --etag or edit" >&2
