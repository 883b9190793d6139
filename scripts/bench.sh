#!/usr/bin/env bash
# Benchmarks etagstore against its floors and its peers, all in one run so
# the ratios are comparable, then writes the report (docs/benchmarks.md
# explains every row and target).
#
# Usage: scripts/bench.sh [--quick] [--update-docs] [--only GROUPS] [--results DIR]
#
#   --quick        a short smoke run (few runs, small sizes, no 100,000-key
#                  store, no 1 GiB document, no criterion) for CI: it
#                  asserts no times
#   --update-docs  write the results section of docs/benchmarks.md and the
#                  charts in docs/bench/ (a full run always does)
#   --only GROUPS  run only these groups, comma-separated: latency, sizes,
#                  races, criterion, memory, import (never writes the docs)
#   --results DIR  where raw results go (default target/bench/full or
#                  target/bench/quick)
#   --check-peer   say which Python peer a run would use, and why; run nothing
#
# Installs what it needs when missing (hyperfine, sqlite3, jq, GNU time via
# apt-get). The Python peer is $SEED_STORE, else ../shared/peers/seed_store.py
# beside this clone if that file and every directory above it belong to this
# user or root and nobody else can write them (a sticky directory such as
# /tmp excepted): this script runs as root in CI, and a clone in /tmp would
# otherwise run whatever another user put there. Its filelock comes from
# scripts/bench-requirements.txt (pinned, hashed wheels) into .venv-bench/;
# without the peer, its rows are left out.
#
# Exits 0 on a healthy build whatever the times; 1 if something is broken:
# a command failed, a safe race lost an update, a document came back wrong.

set -euo pipefail

usage() {
    sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

quick=0
update_docs=0
check_peer=0
only=
results=
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --update-docs) update_docs=1 ;;
        --results)
            [ $# -ge 2 ] || usage
            results=$2
            shift
            ;;
        --only)
            [ $# -ge 2 ] || usage
            only=$2
            shift
            ;;
        --check-peer) check_peer=1 ;;
        -h | --help) usage 0 ;;
        *) usage ;;
    esac
    shift
done

groups=(latency sizes races criterion memory import)
for group in ${only//,/ }; do
    case " ${groups[*]} " in
        *" $group "*) ;;
        *) echo "bench: --only: no group '$group' (groups: ${groups[*]})" >&2 && exit 2 ;;
    esac
done
if [ -n "$only" ] && [ $update_docs -eq 1 ]; then
    echo "bench: --only and --update-docs: a partial run cannot write the whole results section" >&2
    exit 2
fi
# want GROUP: whether this run times GROUP.
want() { [ -z "$only" ] || case ",$only," in *",$1,"*) true ;; *) false ;; esac }

root=$(cd "$(dirname "$0")/.." && pwd)
mode=$([ $quick -eq 1 ] && echo quick || echo full)
# A partial run keeps its results apart from a whole run's.
results=${results:-$root/target/bench/$mode${only:+-only-${only//,/-}}}
# Scratch space on the same file system as target/: stores, documents.
work=$root/target/bench/work-$mode
report=$root/scripts/bench_report.py
venv=$root/.venv-bench
requirements=$root/scripts/bench-requirements.txt

say() { echo "bench: $*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

# ---------------------------------------------------------------- the peer

# Why FILE may not be trusted to run, or nothing if it may: FILE and every
# directory above it (symlinks resolved) belong to this user or root, and
# none is writable by group or others, except a sticky directory (/tmp),
# where nobody can replace another user's entry.
distrust() {
    local path me owner mode kind
    path=$(realpath -e -- "$1" 2>/dev/null) || {
        echo "there is no $1"
        return
    }
    [ -f "$path" ] || {
        echo "$path is not a regular file"
        return
    }
    me=$(id -u)
    while :; do
        read -r owner mode kind < <(stat -c '%u %a %F' -- "$path")
        if [ "$owner" -ne "$me" ] && [ "$owner" -ne 0 ]; then
            echo "$path belongs to user $owner"
            return
        fi
        if [ $((8#$mode & 8#022)) -ne 0 ] &&
            { [ "$kind" != directory ] || [ $((8#$mode & 8#1000)) -eq 0 ]; }; then
            echo "$path is writable by group or others (mode $mode)"
            return
        fi
        [ "$path" != / ] || break
        path=$(dirname -- "$path")
    done
}

seed=
if [ -n "${SEED_STORE:-}" ]; then
    # Named by the user: theirs to vouch for.
    [ -f "$SEED_STORE" ] || die "SEED_STORE=$SEED_STORE is not a file"
    seed=$SEED_STORE
else
    default_seed=$root/../shared/peers/seed_store.py
    reason=$(distrust "$default_seed")
    if [ -z "$reason" ]; then
        seed=$(realpath -e -- "$default_seed")
    else
        say "no Python peer: $reason (set SEED_STORE to use one anyway): its rows are left out"
    fi
fi
if [ $check_peer -eq 1 ]; then
    [ -z "$seed" ] || say "peer: $seed"
    exit 0
fi

# The peer's Python packages, pinned and hashed, in a virtualenv of this
# script's own: never into the system's Python.
setup_venv() {
    local owner mode
    if [ -L "$venv" ]; then
        say "$venv is a symlink: not using it"
        return 1
    fi
    if [ -e "$venv" ]; then
        read -r owner mode < <(stat -c '%u %a' "$venv")
        if [ "$owner" -ne "$(id -u)" ] || [ $((8#$mode & 8#022)) -ne 0 ]; then
            say "$venv belongs to user $owner or is writable by others (mode $mode): not using it"
            return 1
        fi
    fi
    if cmp -s "$requirements" "$venv/requirements.txt" &&
        "$venv/bin/python" -c 'import filelock' 2>/dev/null; then
        return 0
    fi
    say "installing $(grep -o '^[a-z][^ ]*==[^ ]*' "$requirements" | tr '\n' ' ')into $venv"
    rm -f "$venv/requirements.txt"
    if [ ! -x "$venv/bin/python" ]; then
        (umask 022 && python3 -m venv "$venv") || return 1
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --require-hashes --only-binary=:all: --no-deps -r "$requirements" >&2 || return 1
    cp "$requirements" "$venv/requirements.txt"
}

# ---------------------------------------------------------------- tools

install_missing() {
    local missing=()
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    command -v jq >/dev/null || missing+=(jq)
    [ -x /usr/bin/time ] || missing+=(time)
    command -v flock >/dev/null || missing+=(util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    # The peer's virtualenv needs venv and ensurepip (python3-venv on Debian).
    if [ -n "$seed" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        say "installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_missing
have_seed=0
if [ -n "$seed" ]; then
    if setup_venv; then
        # The seed runs on the interpreter itself (the virtualenv's link to
        # it), not through a wrapper such as a pyenv shim (a shell script
        # that would add its own start-up to every call).
        python=$venv/bin/python
        have_seed=1
    else
        say "no Python peer: cannot set up $venv from $requirements: its rows are left out"
    fi
fi

say "building the release binary and the floors"
# The shipped binary, built as scripts/build-release.sh builds it (static on
# Linux with glibc); the floors beside it are built the same way.
bin=$("$root/scripts/build-release.sh" --quiet --bin etagstore --examples) ||
    die "cargo build"
case $bin in /*) ;; *) bin=$root/$bin ;; esac
release=$(dirname "$bin")
hello=$release/examples/hello
floor=$release/examples/durable_write
for exe in "$bin" "$hello" "$floor"; do
    [ -x "$exe" ] || die "missing $exe"
done

# Only an earlier run's results are replaced, never another directory.
if [ -d "$results" ] && [ -n "$(ls -A "$results")" ] && [ ! -f "$results/machine.txt" ]; then
    die "$results is not empty and holds no earlier results: choose another --results"
fi
rm -rf "$results" "$work"
mkdir -p "$results" "$work"
# Other work on a shared machine disturbs the timings less at a higher
# priority (root only; otherwise the run goes on as it is).
if renice -n -10 -p $$ >/dev/null 2>&1; then
    ionice -c 2 -n 0 -p $$ >/dev/null 2>&1 || true
    priority="nice -10"
else
    priority="normal"
fi
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- settings

if [ $quick -eq 1 ]; then
    rounds=2
    hf_small=(--warmup 1 --runs 3)
    hf_big=(--warmup 0 --runs 2)
    store_sizes=(1 1000)
    doc_sizes=(1024 1048576)
    writer_counts=(1 2 4 8 16)
    etag_writer_counts=(1 2 4 8)
    race_rounds=1
    increments=4
    seed_writer_counts=(1 2)
    seed_increments=2
else
    # Three rounds of every latency group, spread over the run, so a burst
    # of other work on the machine lands on all the commands alike.
    rounds=3
    hf_small=(--warmup 3 --min-runs 30 --max-runs 1000)
    hf_big=(--warmup 1 --runs 3)
    store_sizes=(1 1000 100000)
    doc_sizes=(1024 1048576 104857600 1073741824)
    # edit's races with up to 16 writers (does the rate hold up as writers
    # are added?), three rounds each; the sh loop's up to 8 (with 16 on one
    # key, each update costs several whole get + set rounds: minutes).
    writer_counts=(1 2 4 8 16)
    etag_writer_counts=(1 2 4 8)
    race_rounds=3
    # Enough updates that a race lasts seconds, not a hiccup's length.
    increments=100
    seed_writer_counts=(1 2 4 8)
    # The seed takes minutes for 8 x 25 on a busy machine (every lock
    # timeout costs it a second); its updates/s need fewer.
    seed_increments=10
fi

# ---------------------------------------------------------------- machine

{
    echo "mode=$mode"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "memory=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "fs=$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$work" 2>/dev/null || stat -f -c %T "$work")"
    echo "priority=$priority"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rustc=$(rustc --version)"
    echo "hyperfine=$(hyperfine --version)"
    echo "sqlite3=$(sqlite3 --version | cut -d' ' -f1)"
    echo "jq=$(jq --version)"
    echo "python=$(python3 --version 2>&1)"
    echo "size_etagstore=$(stat -c %s "$bin")"
    # A static binary has no program interpreter (no dynamic loader).
    if readelf -l "$bin" 2>/dev/null | grep -q INTERP; then
        echo "linking=dynamic (${bin#"$root"/})"
    else
        echo "linking=static (${bin#"$root"/})"
    fi
    echo "size_hello=$(stat -c %s "$hello")"
    cp "$bin" "$work/stripped" && strip "$work/stripped" 2>/dev/null &&
        echo "size_etagstore_stripped=$(stat -c %s "$work/stripped")"
    rm -f "$work/stripped"
} >"$results/machine.txt"

# ---------------------------------------------------------------- helpers

# hf NAME [hyperfine options] -n ID CMD -n ID CMD ...: one hyperfine group,
# without a shell (-N), its JSON into the results. NAME.R (round R) files
# of one group are merged by the report.
hf() {
    local name=$1
    shift
    say "timing: $name"
    hyperfine -N --style basic --export-json "$results/$name.json" "$@" \
        >"$results/$name.txt" 2>&1 || {
        cat "$results/$name.txt" >&2
        die "hyperfine group '$name' (a command failed)"
    }
}

# One word, quoted for hyperfine's shell-free splitting (shell rules).
q() { python3 -c 'import shlex, sys; print(shlex.quote(sys.argv[1]))' "$1"; }

md5_of() { md5sum "$1" | cut -d' ' -f1; }

# A document of exactly $1 bytes of mixed JSON into $2.
gen_doc() { python3 "$report" gen-doc "$1" "$2"; }

# ---------------------------------------------------------------- latency

store=$work/store
es() { "$bin" --store "$store" "$@"; }

if want latency; then
    small=$work/small.json
    gen_doc 256 "$small"
    # Passed as an argument too, so without the final newline.
    small_value=$(cat "$small")
    printf '%s' "$small_value" >"$small"
    small_etag=$(md5_of "$small")
    es set k -f "$small" --etag '' >/dev/null
    [ "$(es etag k)" = "$small_etag" ] || die "etag k differs from md5sum"
    cmp -s <(es get k) "$small" || die "get k differs from what was set"
    es set w -f "$small" --etag '' >/dev/null

    # The write group: every command rewrites the same bytes, so an --etag of
    # their MD5 matches on every run.
    mkdir -p "$work/floor"
    db=$work/peer.sqlite
    # SQLite skips an UPDATE that changes nothing (no write, no fsync), so each
    # run also counts itself in `writes`: the row really is rewritten.
    sqlite3 "$db" "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, etag TEXT NOT NULL,
                                    writes INTEGER NOT NULL DEFAULT 0);
                   INSERT INTO kv (k, v, etag) VALUES ('w', '$small_value', '$small_etag');"
    value=$(q "$small_value")
    update=$(q "UPDATE kv SET v = '$small_value', etag = '$small_etag', writes = writes + 1
                WHERE k = 'w' AND etag = '$small_etag'")
    write_cmds=(
        -n floor_nofsync "$floor --no-fsync $work/floor/doc.json $value"
        -n floor "$floor $work/floor/doc.json $value"
        -n set "$bin --store $store set w $value --etag $small_etag"
        -n set_if "$bin --store $store set w $value --if $(q '. != null')"
        -n set_unsafe "$bin --store $store set-unsafe w $value"
        -n sqlite3 "sqlite3 $db $update"
    )
    if [ $have_seed -eq 1 ]; then
        export SEED_DIR=$work/seed
        mkdir -p "$SEED_DIR"
        "$python" "$seed" set w --etag '' <"$small" >/dev/null
        seed_etag=$(cat "$SEED_DIR/_filestore/w_etag")
        write_cmds+=(-n seed_set "sh -c 'exec $python $seed set w --etag $seed_etag < $small'")
    fi

    # One edit against jq's start-up plus a non-durable rename.
    es set-unsafe e '{"n": 0}' >/dev/null
    # patch --merge against the same change by edit --jq: each run starts from
    # {"n": 0} (the --prepare, not timed), so both really write every time.
    patch_reset="$bin --store $store set-unsafe p $(q '{"n": 0}')"
    printf '{"n": 0}\n' >"$work/jq.json"

    # Stores of 1, 1,000 and 100,000 keys.
    scale_cmds=()
    for n in "${store_sizes[@]}"; do
        dir=$work/keys-$n
        "$bin" --store "$dir" set bench -f "$small" --etag '' >/dev/null
        python3 "$report" fill-store "$dir" $((n - 1))
        scale_cmds+=(-n "get_$n" "$bin --store $dir get bench")
    done
    for n in "${store_sizes[@]}"; do
        scale_cmds+=(-n "set_$n" "$bin --store $work/keys-$n set bench $value --etag $small_etag")
    done
    # Written back now, not while the timings run.
    sync

    for round in $(seq "$rounds"); do
        hf "read.$round" "${hf_small[@]}" \
            -n cat "cat $store/k.json" \
            -n get "$bin --store $store get k" \
            -n md5sum "md5sum $store/k.json" \
            -n etag "$bin --store $store etag k" \
            -n get_json "$bin --store $store get k --json" \
            -n get_o "$bin --store $store get k -o $work/out.json"
        hf "startup.$round" "${hf_small[@]}" \
            -n hello "$hello" \
            -n version "$bin --version"
        hf "write.$round" "${hf_small[@]}" "${write_cmds[@]}"
        hf "edit.$round" "${hf_small[@]}" \
            -n edit_jq "$bin --store $store edit e --jq '.n += 1'" \
            -n jq_mv "sh -c \"jq '.n += 1' $work/jq.json > $work/jq.tmp && mv $work/jq.tmp $work/jq.json\"" \
            -n jq "jq '.n += 1' $work/jq.json"
        hf "patch.$round" "${hf_small[@]}" --prepare "$patch_reset" \
            -n edit_jq "$bin --store $store edit p --jq $(q '.m = 1')" \
            -n patch_merge "$bin --store $store patch p --merge $(q '{"m": 1}')"
        hf "keys.$round" "${hf_small[@]}" "${scale_cmds[@]}"
    done

    [ "$(es etag w)" = "$small_etag" ] || die "set --etag did not keep the document"
    [ "$(es get p)" = "$(printf '{\n  "n": 0,\n  "m": 1\n}')" ] || die "patch --merge did not write"
    [ "$(sqlite3 "$db" "SELECT writes FROM kv")" -gt 0 ] || die "the sqlite3 UPDATE never matched"
    for n in "${store_sizes[@]}"; do
        got=$("$bin" --store "$work/keys-$n" list | wc -l)
        [ "$got" -eq "$n" ] || die "store of $n keys lists $got"
        rm -rf "$work/keys-$n"
    done
fi

# ---------------------------------------------------------------- scale: sizes

# Peak RSS of one run: GNU time's "Maximum resident set size" (KiB).
peak_rss() {
    local id=$1
    shift
    /usr/bin/time -v -o "$results/rss-$id.txt" "$@" >/dev/null ||
        die "$id: $* failed"
}

if want sizes; then
    for size in "${doc_sizes[@]}"; do
        doc=$work/doc-$size.json
        out=$work/out-$size.json
        gen_doc "$size" "$doc"
        etag=$(md5_of "$doc")
        es set-unsafe "b$size" -f "$doc" >/dev/null
        sync
        opts=("${hf_small[@]}")
        [ "$size" -le 1048576 ] || opts=("${hf_big[@]}")
        # The document was just written and read: already in the page cache.
        [ "$size" -lt 1073741824 ] || opts=(--warmup 0 --runs 3)
        # Each run writes a new OUT: freeing the last run's copy (which can wait
        # for its write-back) is not part of a copy.
        hf "size-$size" "${opts[@]}" --prepare "rm -f $out" \
            -n md5sum "md5sum $doc" \
            -n cp "cp $doc $out" \
            -n cp_fsync "dd if=$doc of=$out bs=1M conv=fsync status=none" \
            -n set "$bin --store $store set b$size -f $doc --etag $etag" \
            -n get_o "$bin --store $store get b$size -o $out"
        [ "$(es get "b$size" -o "$out")" = "$etag" ] || die "get -o of $size bytes: wrong ETag"
        cmp -s "$doc" "$out" || die "get -o of $size bytes: wrong bytes"
        peak_rss "set-$size" "$bin" --store "$store" set "b$size" -f "$doc" --etag "$etag"
        peak_rss "get-$size" "$bin" --store "$store" get "b$size" -o "$out"
        peak_rss "md5sum-$size" md5sum "$doc"
        es delete "b$size" --etag "$etag"
        rm -f "$doc" "$out"
    done
fi

# ---------------------------------------------------------------- races

# Writers start together: each holds a shared lock request on the barrier
# file, which this shell holds exclusively until every writer is ready.
barrier=$work/barrier

now_ns() { date +%s%N; }

# The counter from a {"n": N} document on stdin, in any layout.
count_of() { tr -d ' \t\r\n' | sed -n 's/^{"n":\([0-9][0-9]*\)}$/\1/p'; }

# writer METHOD W KEY INCREMENTS STORE: one racing writer. Writes
# "retries errors acknowledged" into $work/race/result.W.
writer() {
    local method=$1 w=$2 key=$3 count=$4 dir=$5
    local retries=0 errors=0 ok=0 attempts=0 status etag n out
    local tmp=$work/race/doc.$w err=$work/race/err.$w
    : >"$work/race/ready.$w"
    flock -s "$barrier" true
    while [ $ok -lt "$count" ]; do
        attempts=$((attempts + 1))
        # A writer that cannot make progress is broken, not slow.
        [ $attempts -le $((count * 1000)) ] || break
        case $method in
            edit)
                status=0
                "$bin" --store "$dir" edit "$key" --jq '.n += 1' --retries 1000000 \
                    >/dev/null 2>"$err" || status=$?
                case $status in
                    0) ok=$((ok + 1)) ;;
                    3) retries=$((retries + 1)) ;; # gave up: not acknowledged
                    *) errors=$((errors + 1)) && break ;;
                esac
                ;;
            etag)
                etag=$("$bin" --store "$dir" get "$key" -o "$tmp" 2>"$err") ||
                    { errors=$((errors + 1)) && break; }
                n=$(count_of <"$tmp")
                [ -n "$n" ] || { errors=$((errors + 1)) && break; }
                status=0
                "$bin" --store "$dir" set "$key" "{\"n\": $((n + 1))}" --etag "$etag" \
                    >/dev/null 2>"$err" || status=$?
                case $status in
                    0) ok=$((ok + 1)) ;;
                    3) retries=$((retries + 1)) ;;
                    *) errors=$((errors + 1)) && break ;;
                esac
                ;;
            seed)
                # The peer's get prints the document, then its ETag. It reads
                # the two from two files, so either may be torn: an error, retried.
                out=$(SEED_DIR=$dir "$python" "$seed" get "$key" 2>"$err") || {
                    errors=$((errors + 1))
                    continue
                }
                n=$(printf '%s\n' "$out" | sed -n 1p | count_of)
                etag=$(printf '%s\n' "$out" | sed -n 2p)
                [ -n "$n" ] || {
                    errors=$((errors + 1))
                    continue
                }
                status=0
                printf '{"n": %d}' $((n + 1)) |
                    SEED_DIR=$dir "$python" "$seed" set "$key" --etag "$etag" \
                        >/dev/null 2>"$err" || status=$?
                if [ $status -eq 0 ]; then
                    ok=$((ok + 1))
                elif [ $status -eq 3 ] || grep -q Timeout "$err"; then
                    # A mismatch, or its 1 s lock timeout: both mean retry.
                    retries=$((retries + 1))
                else
                    errors=$((errors + 1))
                fi
                ;;
        esac
    done
    echo "$retries $errors $ok" >"$work/race/result.$w"
}

# The counter keys of a race: one shared, or one per writer.
race_keys() {
    if [ "$2" = one ]; then
        echo counter
    else
        seq -f 'counter%g' "$1"
    fi
}

# race METHOD WRITERS INCREMENTS one|many: one race, one JSON line. A safe
# method must end with every acknowledged update counted, and no errors.
race() {
    local method=$1 writers=$2 count=$3 keys=$4
    local dir=$work/race/store w key start end final total=0 line
    rm -rf "$work/race"
    mkdir -p "$work/race"
    for key in $(race_keys "$writers" "$keys"); do
        if [ "$method" = seed ]; then
            printf '{"n": 0}' | SEED_DIR=$dir "$python" "$seed" set "$key" --etag '' >/dev/null
        else
            "$bin" --store "$dir" set "$key" '{"n": 0}' --etag '' >/dev/null
        fi
    done
    exec 9>"$barrier"
    flock -x 9
    for w in $(seq "$writers"); do
        key=counter
        [ "$keys" = one ] || key=counter$w
        writer "$method" "$w" "$key" "$count" "$dir" 9>&- &
    done
    while [ "$(find "$work/race" -name 'ready.*' | wc -l)" -lt "$writers" ]; do
        sleep 0.01
    done
    start=$(now_ns)
    flock -u 9
    exec 9>&-
    wait
    end=$(now_ns)
    for key in $(race_keys "$writers" "$keys"); do
        if [ "$method" = seed ]; then
            final=$(SEED_DIR=$dir "$python" "$seed" get "$key" | sed -n 1p | count_of)
        else
            final=$("$bin" --store "$dir" get "$key" | count_of)
        fi
        [ -n "$final" ] || die "race $method: cannot read $key"
        total=$((total + final))
    done
    line=$(cat "$work"/race/result.* | awk -v method="$method" -v keys="$keys" \
        -v writers="$writers" -v count="$count" -v ns=$((end - start)) -v final="$total" '
        { retries += $1; errors += $2; acknowledged += $3 }
        END {
            printf "{\"method\": \"%s\", \"keys\": \"%s\", \"writers\": %d, " \
                "\"increments\": %d, \"seconds\": %.6f, \"acknowledged\": %d, " \
                "\"final\": %d, \"lost\": %d, \"retries\": %d, \"errors\": %d}\n",
                method, keys, writers, count, ns / 1e9, acknowledged, final,
                acknowledged - final, retries, errors
        }')
    echo "$line" >>"$results/races.jsonl"
    say "race: $line"
    if [ "$method" != seed ]; then
        [ "$total" -eq $((writers * count)) ] ||
            die "race $method x $writers ($keys key): counted $total of $((writers * count)) updates"
        case $line in
            *'"lost": 0, "retries": '*'"errors": 0}') ;;
            *) die "race $method x $writers ($keys key): $line" ;;
        esac
    fi
}

if want races; then
    say "racing writers"
    : >"$results/races.jsonl"
    # edit's races, the short ones, run in rounds spread over this group
    # (the report takes each one's median); the sh loops once each.
    for round in $(seq "$race_rounds"); do
        for writers in "${writer_counts[@]}"; do
            race edit "$writers" "$increments" one
            race edit "$writers" "$increments" many
        done
    done
    for writers in "${etag_writer_counts[@]}"; do
        race etag "$writers" "$increments" one
        race etag "$writers" "$increments" many
    done
    if [ $have_seed -eq 1 ]; then
        for writers in "${seed_writer_counts[@]}"; do
            race seed "$writers" "$seed_increments" one
        done
    fi
fi

# ---------------------------------------------------------------- criterion

if [ $quick -eq 0 ] && want criterion; then
    say "criterion: benches/pipeline.rs"
    (cd "$root" && CRITERION_HOME=$results/criterion \
        cargo bench --locked --quiet --bench pipeline) >"$results/criterion.txt" 2>&1 || {
        cat "$results/criterion.txt" >&2
        die "cargo bench"
    }
fi

# ---------------------------------------------------------------- export/import memory

# export_import_rss SIZE: peak RSS (GNU time) of `export` and `import` of
# one document of about SIZE bytes, written compact (one line) and
# pretty-printed (which export carries as "value" plus "text"). export
# streams from its spool; import holds one line and decodes "text" as it
# writes, so neither should grow with a second copy of the document.
# Raw GNU time output: RESULTS/rss-export-SHAPE-SIZE.txt and
# rss-import-SHAPE-SIZE.txt; the numbers go to the log (the report does
# not read them).
export_import_rss() {
    local size=$1 dir=$work/export-import shape doc kib
    rm -rf "$dir"
    mkdir -p "$dir"
    for shape in compact pretty; do
        doc=$dir/$shape.json
        python3 - "$size" "$shape" "$doc" <<'PY'
import sys
size, shape, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
item = '"' + "x" * 1000 + '"'
sep, start, end = (",", "[", "]") if shape == "compact" else (",\n  ", "[\n  ", "\n]\n")
with open(path, "w") as out:
    out.write(start + sep.join([item] * max(1, size // (len(item) + len(sep)))) + end)
PY
        "$bin" --store "$dir/from-$shape" set-unsafe big -f "$doc" >/dev/null
        /usr/bin/time -v -o "$results/rss-export-$shape-$size.txt" \
            "$bin" --store "$dir/from-$shape" export >"$dir/$shape.jsonl" ||
            die "export of a $shape $size-byte document"
        /usr/bin/time -v -o "$results/rss-import-$shape-$size.txt" \
            "$bin" --store "$dir/to-$shape" import -f "$dir/$shape.jsonl" 2>/dev/null ||
            die "import of a $shape $size-byte document"
        cmp -s "$doc" "$dir/to-$shape/big.json" || die "import of a $shape document: wrong bytes"
        for op in export import; do
            kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' \
                "$results/rss-$op-$shape-$size.txt")
            say "peak RSS: $op of a $shape $(($(wc -c <"$doc") / 1048576)) MiB document: $((kib / 1024)) MiB"
        done
    done
    rm -rf "$dir"
}

if want memory; then
    export_import_rss "$([ $quick -eq 1 ] && echo 1048576 || echo 104857600)"
fi

# ---------------------------------------------------------------- import throughput

# import_rate N: `import` of the same N small documents (about 90 bytes
# each) into two new stores on the disk of the results: once as it runs
# (group commit: a batch's files fsynced in one pass, one directory fsync a
# batch) and once one document at a time (a file fsync and a directory
# fsync each, as before group commit). The second is the same code with
# its batch cut to one document: `import` sizes a batch to a third of the
# open files it may have beyond 64, so `ulimit -n 67` leaves room for one.
# Both stores stay until both imports are done: on ext4 a file created soon
# after many are deleted can cost more (docs/benchmarks.md, "import
# throughput"). One JSON line each into RESULTS/import.jsonl.
import_rate() {
    local n=$1 dir=$work/import mode start end
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -c 'import sys
for i in range(int(sys.argv[1])):
    print("{\"key\":\"doc/%06d\",\"value\":{\"id\":%d,\"name\":\"item %d\",\"ok\":true}}" % (i, i, i))' \
        "$n" >"$dir/docs.jsonl"
    : >"$results/import.jsonl"
    sync
    for mode in group one; do
        start=$(now_ns)
        if [ $mode = group ]; then
            "$bin" --store "$dir/$mode" import -f "$dir/docs.jsonl" 2>"$dir/err"
        else
            (ulimit -n 67 && exec "$bin" --store "$dir/$mode" import -f "$dir/docs.jsonl") 2>"$dir/err"
        fi || die "import of $n documents ($mode): $(cat "$dir/err")"
        end=$(now_ns)
        grep -qx "imported $n, skipped 0" "$dir/err" ||
            die "import of $n documents ($mode): $(cat "$dir/err")"
        printf '{"commit": "%s", "documents": %d, "seconds": %.6f}\n' \
            "$mode" "$n" "$(((end - start) / 1000))e-6" >>"$results/import.jsonl"
        say "import of $n documents, commit $mode: $(((end - start) / 1000000)) ms," \
            "$((n * 1000000000 / (end - start))) docs/s"
    done
    cmp -s <("$bin" --store "$dir/group" get doc/000000) <("$bin" --store "$dir/one" get doc/000000) ||
        die "the two imports differ"
    rm -rf "$dir"
}

if want import; then
    import_rate "$([ $quick -eq 1 ] && echo 1000 || echo 100000)"
fi

# ---------------------------------------------------------------- report

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
report_args=(report "$results")
if { [ $quick -eq 0 ] && [ -z "$only" ]; } || [ $update_docs -eq 1 ]; then
    report_args+=(--doc "$root/docs/benchmarks.md" --charts "$root/docs/bench")
fi
python3 "$report" "${report_args[@]}" || die "the report"

