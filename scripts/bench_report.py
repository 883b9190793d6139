#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (Python 3 standard library only).

  bench_report.py gen-doc SIZE FILE      a JSON document of exactly SIZE bytes
  bench_report.py fill-store DIR COUNT   COUNT more keys, written as files
  bench_report.py report RESULTS [--doc FILE --charts DIR]

`report` reads the raw results bench.sh left in RESULTS (hyperfine JSON,
races.jsonl, GNU time output, criterion estimates), checks each target of
docs/benchmarks.md, and writes RESULTS/report.md and the SVG charts. With
--doc it also replaces the part of FILE between the results markers, and
with --charts it writes the charts there too.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

START = "<!-- results:start -->"
END = "<!-- results:end -->"
MIB = 1024 * 1024


# ------------------------------------------------------------------ inputs


def gen_doc(size, path):
    """Mixed JSON (numbers, strings with escapes and non-ASCII, booleans,
    null, nesting) of exactly `size` bytes: items, then whitespace padding."""
    item = (
        '{"id": %d, "name": "item %d", "ok": true, "tags": ["alpha", "beta\\n", "caf\u00e9"], '
        '"note": "a \\"quoted\\" word", "p": null, "dims": {"w": 12, "h": -7e-3}},\n'
    )
    items = [(item % (i, i)).encode() for i in range(1000000, 1010000)]
    close = b"0]\n"
    if size < 1 + len(close):
        sys.exit(f"gen-doc: {size} bytes is too small")
    chunk = b"".join(items)
    remaining = size - 1 - len(close)
    with open(path, "wb") as out:
        out.write(b"[")
        while remaining >= len(chunk):
            out.write(chunk)
            remaining -= len(chunk)
        for one in items:
            if remaining < len(one):
                break
            out.write(one)
            remaining -= len(one)
        out.write(b" " * remaining)
        out.write(close)


def fill_store(directory, count):
    """Keys k000001 ... as documents written straight into the store: one
    file per key is all a store is."""
    for i in range(1, count + 1):
        with open(os.path.join(directory, "k%06d.json" % i), "wb") as out:
            out.write(b'{"n": %d}' % i)


# ------------------------------------------------------------------ results


def load(results):
    r = {"machine": {}, "groups": {}, "races": [], "rss": {}, "criterion": {}, "import": {}}
    with open(os.path.join(results, "machine.txt")) as f:
        for line in f:
            name, _, value = line.rstrip("\n").partition("=")
            r["machine"][name] = value
    # hyperfine's JSON, one file a group or a round of a group (NAME.R.json):
    # the rounds' runs are pooled.
    times = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        group = re.sub(r"\.\d+$", "", os.path.basename(path)[: -len(".json")])
        for row in data["results"]:
            times.setdefault(group, {}).setdefault(row["command"], []).extend(row["times"])
    for group, commands in times.items():
        r["groups"][group] = {
            cmd: {"median": statistics.median(t), "min": min(t),
                  "stddev": statistics.pstdev(t), "times": t}
            for cmd, t in commands.items()
        }
    races = os.path.join(results, "races.jsonl")
    if os.path.exists(races):
        with open(races) as f:
            r["races"] = [json.loads(line) for line in f if line.strip()]
    imports = os.path.join(results, "import.jsonl")
    if os.path.exists(imports):
        with open(imports) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    r["import"][row["commit"]] = row
    for path in glob.glob(os.path.join(results, "rss-*.txt")):
        with open(path) as f:
            text = f.read()
        kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        r["rss"][os.path.basename(path)[4:-4]] = int(kib.group(1)) if kib else None
    for path in glob.glob(os.path.join(results, "criterion", "*", "*", "new", "estimates.json")):
        parts = path.split(os.sep)
        with open(path) as f:
            estimates = json.load(f)
        bench = os.path.join(os.path.dirname(path), "benchmark.json")
        throughput = None
        if os.path.exists(bench):
            with open(bench) as f:
                throughput = (json.load(f).get("throughput") or {}).get("Bytes")
        r["criterion"][parts[-4] + "/" + parts[-3]] = {
            "ns": estimates["median"]["point_estimate"],
            "bytes": throughput,
        }
    return r


def median(r, group, cmd):
    row = r["groups"].get(group, {}).get(cmd)
    return row["median"] if row else None


def minimum(r, group, cmd):
    row = r["groups"].get(group, {}).get(cmd)
    return row["min"] if row else None


def ratio(a, b):
    return a / b if a is not None and b else None


def ms(seconds):
    if seconds is None:
        return "n/a"
    if seconds >= 10:
        return "%.1f s" % seconds
    if seconds >= 1:
        return "%.2f s" % seconds
    return "%.2f ms" % (seconds * 1000) if seconds < 0.1 else "%.0f ms" % (seconds * 1000)


def fx(value, digits=2):
    return "n/a" if value is None else ("%.*f×" % (digits, value))


def human_size(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return "%g %s" % (n / size, unit)
    return "%d B" % n


def rates(r):
    """Updates per second of each race: {(method, keys, writers): race}.
    A race run in several rounds is its median round by updates/s, with
    the rounds' lost updates and errors added up (any lost update shows)
    and `rounds` set to how many there were."""
    runs = {}
    for race in r["races"]:
        race = dict(race)
        race["rate"] = race["acknowledged"] / race["seconds"] if race["seconds"] else 0.0
        runs.setdefault((race["method"], race["keys"], race["writers"]), []).append(race)
    out = {}
    for key, rounds in runs.items():
        rounds.sort(key=lambda race: race["rate"])
        race = dict(rounds[(len(rounds) - 1) // 2])
        race["rounds"] = len(rounds)
        race["all_rates"] = [x["rate"] for x in rounds]
        race["lost"] = sum(x["lost"] for x in rounds)
        race["errors"] = sum(x["errors"] for x in rounds)
        out[key] = race
    return out


def writer_counts(r):
    return sorted({race["writers"] for race in r["races"]})


def sizes(r):
    return sorted(int(g.split("-", 1)[1]) for g in r["groups"] if g.startswith("size-"))


# ------------------------------------------------------------------ targets


# Where a target is shown by the integration tests rather than timed here.
TESTED = "shown by tests/integration (requests counted), see docs/azure.md and docs/s3.md"


def targets(r):
    """One row per target: (name, measured, old target, new target, passed
    or None, ratio of minimums). A row is judged against its new target
    (issue 17); the old one (round 1) is shown beside it."""
    rows = []

    def add(name, value, old, new, passed, low=""):
        rows.append((name, value, old, new, passed, low))

    def upper(name, group, cmd, floor, old, new):
        value = ratio(median(r, group, cmd), median(r, group, floor))
        if value is None:
            return  # not run (`--only`)
        low = ratio(minimum(r, group, cmd), minimum(r, group, floor))
        add(name, fx(value), "≤ " + fx(old), "≤ " + fx(new),
            None if value is None else value <= new, fx(low))

    upper("`get` / `cat`, small file", "read", "get", "cat", 1.2, 1.0)
    upper("`set --etag` / durable-write floor", "write", "set", "floor", 1.3, 1.2)
    upper("`edit --jq '.n += 1'` / `jq … > t && mv t f`", "edit", "edit_jq", "jq_mv", 0.25, 0.06)

    all_sizes = sizes(r)
    if all_sizes:
        size = all_sizes[-1]
        group = "size-%d" % size
        md5 = median(r, group, "md5sum")
        for op, cmd, old, new in (("set -f", "set", 0.5, 0.6), ("get -o", "get_o", 0.5, 0.5)):
            t = median(r, group, cmd)
            value = ratio(md5, t)
            add("%s `%s`: throughput / `md5sum`" % (human_size(size), op),
                "%s (%.0f vs %.0f MB/s)" % (fx(value), size / t / 1e6, size / md5 / 1e6),
                "≥ " + fx(old), "≥ " + fx(new), None if value is None else value >= new)
        for op, cmd in (("set -f", "set"), ("get -o", "get")):
            kib = r["rss"].get("%s-%d" % (cmd, size))
            add("%s `%s`: peak RSS" % (human_size(size), op),
                "n/a" if kib is None else "%.1f MiB" % (kib / 1024),
                "< 16 MiB", "< 8 MiB", None if kib is None else kib < 8 * 1024)

    check = r["criterion"].get("pipeline/validate_only")
    if check and check["bytes"]:
        rate = check["bytes"] / check["ns"]
        cpu = r["criterion"].get("pipeline/validate_only_cpu")
        note = ""
        if cpu and cpu["bytes"]:
            note = "; in thread CPU time (`validate_only_cpu`) %.2f GB/s" % (cpu["bytes"] / cpu["ns"])
        add("JSON check alone (criterion `pipeline/validate_only`)",
            "%.2f GB/s%s" % (rate, note), "none", "≥ 1 GB/s", rate >= 1.0)

    race = rates(r)
    edit8 = race.get(("edit", "one", 8))
    seed8 = race.get(("seed", "one", 8))
    name = "8 writers, one key: `edit --jq` updates/s / the seed's safe set"
    if edit8 and seed8 and seed8["rate"]:
        value = edit8["rate"] / seed8["rate"]
        add(name, "%.0f× (%.1f vs %.2f /s), %d lost" % (value, edit8["rate"], seed8["rate"],
                                                       edit8["lost"]),
            "≥ 50×, 0 lost", "≥ 400× and ≥ 700 /s, 0 lost",
            value >= 400 and edit8["rate"] >= 700 and edit8["lost"] == 0)
    elif edit8:
        add(name, "%.1f /s, %d lost (no seed run)" % (edit8["rate"], edit8["lost"]),
            "≥ 50×, 0 lost", "≥ 400× and ≥ 700 /s, 0 lost",
            False if edit8["rate"] < 700 or edit8["lost"] else None)

    # Cost growth with writers: the most writers keep most of the best rate.
    counts = writer_counts(r)
    if len(counts) > 1:
        most = counts[-1]
        for keys, label in (("one", "one key"), ("many", "one key per writer")):
            last = race.get(("edit", keys, most))
            best = max((race[("edit", keys, w)]["rate"] for w in counts[:-1]
                        if ("edit", keys, w) in race), default=None)
            if last and best:
                value = last["rate"] / best
                add("%d writers, %s: `edit --jq` updates/s / the best with fewer writers"
                    % (most, label),
                    "%s (%.0f vs %.0f /s)" % (fx(value), last["rate"], best),
                    "none", "≥ 0.75×", value >= 0.75)

    imports = r["import"]
    if "group" in imports and "one" in imports:
        group, one = imports["group"], imports["one"]
        value = one["seconds"] / group["seconds"] if group["seconds"] else None
        add("`import` of %s small documents: group commit / one document at a time"
            % format(group["documents"], ","),
            "%s faster (%s vs %s docs/s)" % (
                fx(value, 1), format(round(group["documents"] / group["seconds"]), ","),
                format(round(one["documents"] / one["seconds"]), ",")),
            "none", "≥ 5× faster", None if value is None else value >= 5)

    add("`get` on Azure and S3: requests", TESTED, "1 GET", "1 GET", "tests")
    add("`set --etag` on Azure and S3: requests", TESTED, "HEAD + PUT (+ GET)",
        "≤ 2 when etagstore wrote the document last", "tests")

    keys = r["groups"].get("keys", {})
    big = max((int(k[4:]) for k in keys if k.startswith("get_")), default=None)
    if big and big > 1:
        for op in ("get", "set"):
            upper("`%s` with %s keys / with 1 key" % (op, format(big, ",")), "keys",
                  "%s_%d" % (op, big), op + "_1", 1.1, 1.1)

    m = r["machine"]
    start = ratio(median(r, "startup", "version"), median(r, "startup", "hello"))
    if start:
        add("start-up: `etagstore --version` / Rust hello-world",
            "%s (%s vs %s); binary %.1f MiB (%.1f MiB stripped), hello %.1f MiB" % (
                fx(start), ms(median(r, "startup", "version")),
                ms(median(r, "startup", "hello")),
                int(m.get("size_etagstore", 0)) / MIB,
                int(m.get("size_etagstore_stripped", 0)) / MIB,
                int(m.get("size_hello", 0)) / MIB),
            "noted", "noted", None)
    return rows


# ------------------------------------------------------------------ tables

# (group, command, what it runs, floor group, floor command)
LATENCY = [
    ("read", "cat", "`cat FILE` (256-byte document)", None, None),
    ("read", "get", "`etagstore get k`", "read", "cat"),
    ("read", "get_json", "`etagstore get k --json`", "read", "cat"),
    ("read", "get_o", "`etagstore get k -o FILE`", "read", "cat"),
    ("read", "md5sum", "`md5sum FILE`", None, None),
    ("read", "etag", "`etagstore etag k`", "read", "md5sum"),
    ("startup", "hello", "Rust hello-world (examples/hello)", None, None),
    ("startup", "version", "`etagstore --version`", "startup", "hello"),
    ("write", "floor_nofsync", "floor without fsync: temp + rename", "write", "floor"),
    ("write", "floor", "durable-write floor: temp + fsync + rename + dir fsync", None, None),
    ("write", "set", "`etagstore set w VALUE --etag E`", "write", "floor"),
    ("write", "set_if", "`etagstore set w VALUE --if '. != null'`", "write", "set"),
    ("write", "set_unsafe", "`etagstore set-unsafe w VALUE`", "write", "floor"),
    ("write", "sqlite3", "`sqlite3 DB \"UPDATE kv SET … WHERE k=? AND etag=?\"`", "write",
     "floor"),
    ("write", "seed_set", "`sh -c 'python3 seed_store.py set w --etag E < doc'`",
     "write", "floor"),
    ("edit", "jq", "`jq '.n += 1' f` alone", None, None),
    ("edit", "jq_mv", "`sh -c \"jq '.n += 1' f > t && mv t f\"` (no fsync)", None, None),
    ("edit", "edit_jq", "`etagstore edit e --jq '.n += 1'`", "edit", "jq_mv"),
    ("patch", "edit_jq", "`etagstore edit p --jq '.m = 1'`", None, None),
    ("patch", "patch_merge", "`etagstore patch p --merge '{\"m\": 1}'`", "patch", "edit_jq"),
]


def latency_table(r):
    lines = ["| command | median | σ | min | runs | ratio of medians | ratio of minimums "
             "| against |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for group, cmd, what, fgroup, fcmd in LATENCY:
        row = r["groups"].get(group, {}).get(cmd)
        if not row:
            continue
        against = ""
        value = low = None
        if fgroup:
            value = ratio(row["median"], median(r, fgroup, fcmd))
            low = ratio(row["min"], r["groups"][fgroup][fcmd]["min"])
            against = next(w for g, c, w, _, _ in LATENCY if (g, c) == (fgroup, fcmd))
            against = re.sub(r" \(.*\)$", "", against)
        lines.append("| %s | %s | %s | %s | %d | %s | %s | %s |" % (
            what, ms(row["median"]), ms(row["stddev"]), ms(row["min"]), len(row["times"]),
            fx(value) if value else "", fx(low) if low else "", against))
    return "\n".join(lines)


METHODS = [
    ("edit", "one", "`edit --jq '.n += 1'`, one key"),
    ("etag", "one", "`get -o` + `set --etag` loop in sh, one key"),
    ("edit", "many", "`edit --jq`, one key per writer"),
    ("etag", "many", "`get -o` + `set --etag` loop, one key per writer"),
    ("seed", "one", "seed: `get` + `set --etag` loop, one key"),
]


def race_table(r):
    lines = ["| method | writers | updates | seconds | updates/s | rounds | retries | lost "
             "| errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    race = rates(r)
    for method, keys, label in METHODS:
        for writers in writer_counts(r):
            x = race.get((method, keys, writers))
            if not x:
                continue
            lines.append("| %s | %d | %d | %.2f | %.1f | %s | %s | %d | %d |" % (
                label, writers, x["acknowledged"], x["seconds"], x["rate"],
                x["rounds"] if x["rounds"] == 1 else "%d (the median; %s)" % (
                    x["rounds"], ", ".join("%.0f" % v for v in x["all_rates"])),
                "n/a (inside)" if method == "edit" and x["retries"] == 0 else x["retries"],
                x["lost"], x["errors"]))
    return "\n".join(lines)


def growth_sizes_table(r):
    """Time against document size, and the cost of each MiB beyond the
    smallest document's (the fixed cost: start-up, the fsyncs): flat when
    the cost grows linearly in bytes."""
    all_sizes = sizes(r)
    if not all_sizes:
        return ""
    cmds = (("set", "`set -f --etag`"), ("get_o", "`get -o`"), ("md5sum", "`md5sum`"),
            ("cp_fsync", "`dd conv=fsync`"))
    lines = ["| document | " + " | ".join("%s | per MiB" % label for _, label in cmds) + " |",
             "| ---: | " + " | ".join("---: | ---:" for _ in cmds) + " |"]
    small = all_sizes[0]
    for size in all_sizes:
        cells = []
        for cmd, _ in cmds:
            t = median(r, "size-%d" % size, cmd)
            t0 = median(r, "size-%d" % small, cmd)
            cells.append(ms(t))
            if size == small:
                cells.append("(fixed cost)")
            elif t is None or t0 is None:
                cells.append("n/a")
            else:
                cells.append("%.2f ms" % ((t - t0) * 1000 / ((size - small) / MIB)))
        lines.append("| %s | %s |" % (human_size(size), " | ".join(cells)))
    return "\n".join(lines)


def growth_writers_table(r):
    """updates/s of edit's races against writers, each against 1 writer."""
    race = rates(r)
    counts = [w for w in writer_counts(r) if ("edit", "one", w) in race
              or ("edit", "many", w) in race]
    if not counts:
        return ""
    lines = ["| writers | `edit --jq`, one key: updates/s | against 1 writer "
             "| one key per writer: updates/s | against 1 writer | one key / key per writer |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    one1, many1 = race.get(("edit", "one", 1)), race.get(("edit", "many", 1))
    for w in counts:
        one, many = race.get(("edit", "one", w)), race.get(("edit", "many", w))
        lines.append("| %d | %s | %s | %s | %s | %s |" % (
            w, "%.0f" % one["rate"] if one else "n/a",
            fx(ratio(one and one["rate"], one1 and one1["rate"])),
            "%.0f" % many["rate"] if many else "n/a",
            fx(ratio(many and many["rate"], many1 and many1["rate"])),
            fx(ratio(one and one["rate"], many and many["rate"]))))
    return "\n".join(lines)


def keys_table(r):
    keys = r["groups"].get("keys", {})
    counts = sorted(int(k[4:]) for k in keys if k.startswith("get_"))
    lines = ["| keys in the store | `get` | ratio to 1 key | `set --etag` | ratio to 1 key |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for n in counts:
        g, s = median(r, "keys", "get_%d" % n), median(r, "keys", "set_%d" % n)
        lines.append("| %s | %s | %s | %s | %s |" % (
            format(n, ","), ms(g), fx(ratio(g, median(r, "keys", "get_1"))),
            ms(s), fx(ratio(s, median(r, "keys", "set_1")))))
    return "\n".join(lines)


def sizes_table(r):
    lines = ["| document | `md5sum` | `cp` | `dd conv=fsync` | `set -f --etag` | `get -o` "
             "| set / md5sum throughput | get / md5sum throughput | peak RSS set / get / md5sum |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def cell(t, size):
        if t is None:
            return "n/a"
        return "%s (%.0f MB/s)" % (ms(t), size / t / 1e6) if size >= MIB else ms(t)

    for size in sizes(r):
        group = "size-%d" % size
        t = {cmd: median(r, group, cmd) for cmd in ("md5sum", "cp", "cp_fsync", "set", "get_o")}
        rss = [r["rss"].get("%s-%d" % (op, size)) for op in ("set", "get", "md5sum")]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            human_size(size), cell(t["md5sum"], size), cell(t["cp"], size),
            cell(t["cp_fsync"], size), cell(t["set"], size), cell(t["get_o"], size),
            fx(ratio(t["md5sum"], t["set"])), fx(ratio(t["md5sum"], t["get_o"])),
            " / ".join("n/a" if k is None else "%.1f MiB" % (k / 1024) for k in rss)))
    return "\n".join(lines)


def criterion_table(r):
    if not r["criterion"]:
        return ""
    lines = ["| criterion benchmark | median | throughput |", "| --- | ---: | ---: |"]
    for name in sorted(r["criterion"]):
        c = r["criterion"][name]
        time = "%.0f ns" % c["ns"] if c["ns"] < 1e4 else "%.2f ms" % (c["ns"] / 1e6)
        rate = "%.0f MB/s" % (c["bytes"] / c["ns"] * 1e3) if c["bytes"] else ""
        lines.append("| `%s` | %s | %s |" % (name, time, rate))
    return "\n".join(lines)


# ------------------------------------------------------------------ charts

COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#d62728"]


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(width, height, body):
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">\n'
            '<rect width="100%%" height="100%%" fill="white"/>\n%s</svg>\n'
            % (width, height, width, height, "\n".join(body)))


def log_ticks(lo, hi):
    """1-2-5 ticks; only the powers of ten over a wide range."""
    ticks = []
    wide = math.log10(hi) - math.log10(lo) > 3
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1,) if wide else (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def tick_label(v):
    return ("%g" % v) if v < 1e4 else format(int(v), ",")


def race_chart(r):
    race = rates(r)
    series = []
    for (method, keys, label), color in zip(METHODS, COLORS):
        points = [(w, race[(method, keys, w)]["rate"]) for w in writer_counts(r)
                  if (method, keys, w) in race and race[(method, keys, w)]["rate"]]
        if points:
            series.append((re.sub(r"`", "", label), color, points))
    if not series:
        return None
    values = [v for _, _, pts in series for _, v in pts]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    W, left, right, top, bottom = 760, 70, 60, 40, 50
    H = 330 + 50 + 20 * len(series)
    pw, ph = W - left - right, 330 - top
    counts = writer_counts(r)
    xs = {w: i for i, w in enumerate(counts)}

    def X(w):
        return left + xs[w] / max(len(counts) - 1, 1) * pw

    def Y(v):
        return top + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph

    body = ['<text x="%d" y="22" font-size="15" font-weight="bold">Racing writers: '
            'updates per second (log scale)</text>' % left]
    for v in log_ticks(lo, hi):
        y = Y(v)
        body.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                    % (left, left + pw, y, y))
        body.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                    % (left - 6, y + 4, tick_label(v)))
    for w in counts:
        body.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>'
                    % (X(w), X(w), top, top + ph))
        body.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>'
                    % (X(w), top + ph + 18, w))
    body.append('<text x="%.1f" y="%d" text-anchor="middle">writers (processes)</text>'
                % (left + pw / 2, top + ph + 36))
    body.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>'
                % (left, top, pw, ph))
    for i, (label, color, pts) in enumerate(series):
        path = " ".join("%.1f,%.1f" % (X(w), Y(v)) for w, v in pts)
        body.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>'
                    % (path, color))
        for w, v in pts:
            body.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>' % (X(w), Y(v), color))
        ly = top + ph + 60 + i * 20
        body.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                    % (left, left + 20, ly, ly, color))
        body.append('<text x="%d" y="%d">%s</text>' % (left + 26, ly + 4, esc(label)))
    # The last value of each line, moved apart where they would overlap.
    ends = sorted(((Y(pts[-1][1]), pts[-1], color) for _, color, pts in series), reverse=True)
    placed = []
    for y, (w, v), color in ends:
        y = min(y, placed[-1] - 14) if placed else y
        placed.append(y)
        body.append('<text x="%.1f" y="%.1f" fill="%s">%s</text>'
                    % (X(w) + 7, y + 4, color, "%.1f" % v if v < 100 else "%.0f" % v))
    return svg(W, H, body)


def ratio_rows(r):
    """(label, ratio, target or None, target is an upper bound)."""
    rows = []

    def add(label, a, b, target=None):
        value = ratio(a, b)
        if value:
            rows.append((label, value, target))

    add("get / cat", median(r, "read", "get"), median(r, "read", "cat"), 1.0)
    add("get --json / cat", median(r, "read", "get_json"), median(r, "read", "cat"))
    add("get -o / cat", median(r, "read", "get_o"), median(r, "read", "cat"))
    add("etag / md5sum", median(r, "read", "etag"), median(r, "read", "md5sum"))
    add("--version / hello", median(r, "startup", "version"), median(r, "startup", "hello"))
    for cmd, label, target in (("set", "set --etag", 1.2), ("set_unsafe", "set-unsafe", None),
                               ("floor_nofsync", "floor without fsync", None),
                               ("sqlite3", "sqlite3 UPDATE", None),
                               ("seed_set", "seed set", None)):
        add(label + " / durable floor", median(r, "write", cmd), median(r, "write", "floor"),
            target)
    add("edit --jq / jq+mv", median(r, "edit", "edit_jq"), median(r, "edit", "jq_mv"), 0.06)
    add("set --if / set --etag", median(r, "write", "set_if"), median(r, "write", "set"))
    add("patch --merge / edit --jq", median(r, "patch", "patch_merge"),
        median(r, "patch", "edit_jq"))
    keys = r["groups"].get("keys", {})
    big = max((int(k[4:]) for k in keys if k.startswith("get_")), default=1)
    if big > 1:
        for op in ("get", "set"):
            add("%s, %s keys / 1 key" % (op, format(big, ",")),
                median(r, "keys", "%s_%d" % (op, big)), median(r, "keys", op + "_1"), 1.1)
    all_sizes = sizes(r)
    if all_sizes:
        group = "size-%d" % all_sizes[-1]
        name = human_size(all_sizes[-1])
        # Time ratios: throughput ≥ 0.6 × (set) and ≥ 0.5 × (get) md5sum's.
        for cmd, label, target in (("set", "set -f", 1 / 0.6), ("get_o", "get -o", 2.0)):
            add("%s %s / md5sum (time)" % (name, label), median(r, group, cmd),
                median(r, group, "md5sum"), target)
    return rows


def ratio_chart(r):
    rows = ratio_rows(r)
    if not rows:
        return None
    values = [v for _, v, _ in rows] + [t for _, _, t in rows if t]
    lo = 10 ** math.floor(math.log10(min(values + [1])))
    hi = 10 ** math.ceil(math.log10(max(values)))
    W, left, right, top, bar = 760, 230, 90, 60, 22
    H = top + len(rows) * (bar + 6) + 40
    pw = W - left - right

    def X(v):
        return left + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pw

    body = ['<text x="10" y="22" font-size="15" font-weight="bold">Latency against its floor '
            '(ratio of medians, log scale)</text>',
            '<text x="10" y="42" fill="#555">green: meets its target (black tick); '
            'red: misses it; grey: no target</text>']
    bottom = top + len(rows) * (bar + 6)
    for v in log_ticks(lo, hi):
        body.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>'
                    % (X(v), X(v), top - 4, bottom, "#666" if v == 1 else "#e4e4e4"))
        body.append('<text x="%.1f" y="%d" text-anchor="middle">%s×</text>'
                    % (X(v), bottom + 16, tick_label(v)))
    for i, (label, value, target) in enumerate(rows):
        y = top + i * (bar + 6)
        color = "#999" if target is None else ("#2ca02c" if value <= target else "#d62728")
        x0, x1 = X(lo), X(value)
        body.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                    % (x0, y, max(x1 - x0, 1), bar, color))
        body.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                    % (left - 8, y + bar - 6, esc(label)))
        tx = max(x1, X(target) if target else x1) + 5
        body.append('<text x="%.1f" y="%d">%.2f×</text>' % (tx, y + bar - 6, value))
        if target:
            body.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" '
                        'stroke-width="2.5"/>' % (X(target), X(target), y - 2, y + bar + 2))
    return svg(W, H, body)


# ------------------------------------------------------------------ report


def section(r, chart_dir):
    m = r["machine"]
    out = []
    out.append("Numbers from one `scripts/bench.sh` run (%s mode), %s. Medians of whole-process "
               "runs measured by hyperfine, the latency groups' rounds pooled; every ratio "
               "compares two numbers of the same run." % (m.get("mode", "?"), m.get("date", "?")))
    out.append("")
    out.append("| machine | |\n| --- | --- |")
    for name, label in (("nproc", "cores (nproc)"), ("cpu", "CPU"), ("memory", "memory"),
                        ("kernel", "kernel"), ("fs", "file system of the bench dir"),
                        ("priority", "priority of the run"),
                        ("load_start", "load average at start"),
                        ("load_end", "load average at end"), ("rustc", "rustc"),
                        ("hyperfine", "hyperfine"), ("sqlite3", "sqlite3"), ("jq", "jq"),
                        ("python", "Python (the seed)"),
                        ("linking", "etagstore binary (scripts/build-release.sh)")):
        if m.get(name):
            out.append("| %s | %s |" % (label, re.sub(r"\s+", " ", m[name])))
    out += ["", "### Targets", "",
            "Each row is judged against its new target (issue 17, round 2); the old one "
            "(round 1) is shown beside it. The result is judged on the ratio of medians. The "
            "ratio of the fastest runs (minimums) shows the same comparison with the least "
            "interference from other work on the machine.", "",
            "| target | measured (ratio of medians) | old target | new target (judged) "
            "| result | ratio of minimums |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, value, old, new, passed, low in targets(r):
        out.append("| %s | %s | %s | %s | %s | %s |" % (name, value, old, new,
                                                       RESULT[passed], low))
    # A table with no rows (a group that did not run, `--only`) is left out.
    def table(title, text, chart=None):
        if text.count("\n") < 2:
            return []
        return ["", "### " + title, ""] + ([chart, ""] if chart else []) + [text]

    if r["groups"].get("read") or r["groups"].get("write"):
        out += ["", "![Latency ratios against their floors](%s/ratios.svg)" % chart_dir]
    out += table("Whole-process latency", latency_table(r))
    out += table("Racing writers", race_table(r),
                 "![Updates per second against writers](%s/races.svg)" % chart_dir)
    out += table("Number of keys", keys_table(r))
    out += table("Document size", sizes_table(r))
    by_size, by_writers = growth_sizes_table(r), growth_writers_table(r)
    if by_size or by_writers:
        out += ["", "### Cost growth"]
    if by_size:
        out += ["", "Against document size: each command's median, and what each MiB beyond "
                "the smallest document costs (its time less the smallest document's, over the "
                "extra MiB). A flat per-MiB column is a cost linear in bytes.", "", by_size]
    if by_writers:
        out += ["", "Against writers: `edit --jq '.n += 1'` updates/s (the median round), on "
                "one shared key and on one key per writer. The rate should hold up as writers "
                "are added; the last column is what contention on one key costs.", "",
                by_writers]
    imports = r["import"]
    if imports:
        out += ["", "### `import` throughput", "",
                "| commit | documents | seconds | documents/s |",
                "| --- | ---: | ---: | ---: |"]
        for mode, label in (("group", "group commit (as `import` runs)"),
                            ("one", "one document at a time (`ulimit -n 67`: a batch of 1)")):
            if mode in imports:
                x = imports[mode]
                out.append("| %s | %s | %.2f | %s |" % (
                    label, format(x["documents"], ","), x["seconds"],
                    format(round(x["documents"] / x["seconds"]), ",")))
    crit = criterion_table(r)
    if crit:
        out += ["", "### In-process pipeline (criterion)", "", crit]
    return "\n".join(out) + "\n"


RESULT = {True: "**pass**", False: "**MISS**", None: "—", "tests": "tests"}


def report(args):
    r = load(args.results)
    charts = {"races.svg": race_chart(r), "ratios.svg": ratio_chart(r)}
    dirs = [args.results] + ([args.charts] if args.charts else [])
    for directory in dirs:
        os.makedirs(directory, exist_ok=True)
        for name, text in charts.items():
            if text:
                with open(os.path.join(directory, name), "w") as f:
                    f.write(text)
    with open(os.path.join(args.results, "report.md"), "w") as f:
        f.write(section(r, "."))
    if args.doc:
        rel = os.path.relpath(args.charts, os.path.dirname(os.path.abspath(args.doc)))
        with open(args.doc) as f:
            doc = f.read()
        if START not in doc or END not in doc:
            sys.exit("report: %s has no %s ... %s markers" % (args.doc, START, END))
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        with open(args.doc, "w") as f:
            f.write(head + START + "\n" + section(r, rel) + END + tail)
    # A summary for the terminal.
    print("bench: results in %s" % args.results)
    for name, value, _, new, passed, _ in targets(r):
        result = {True: "pass", False: "MISS", None: "-", "tests": "test"}[passed]
        print("  %-4s %s: %s (%s)" % (result, name.replace("`", ""), value, new))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("gen-doc")
    p.add_argument("size", type=int)
    p.add_argument("file")
    p = sub.add_parser("fill-store")
    p.add_argument("dir")
    p.add_argument("count", type=int)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("--doc")
    p.add_argument("--charts")
    args = parser.parse_args()
    if args.command == "gen-doc":
        gen_doc(args.size, args.file)
    elif args.command == "fill-store":
        fill_store(args.dir, args.count)
    else:
        if args.doc and not args.charts:
            parser.error("--doc needs --charts")
        report(args)


if __name__ == "__main__":
    main()
