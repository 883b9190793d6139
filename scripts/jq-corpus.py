#!/usr/bin/env python3
"""Measures `edit --jq` against jq's own test corpus.

    scripts/jq-corpus.py CORPUS_DIR [--bin PATH] [--list CLASS] [--json FILE]

CORPUS_DIR holds jq's tests/jq.test, man.test, onig.test and manonig.test
(jq's files; they are not part of this repository). Every case with exactly
one expected output is run as

    etagstore edit cN --default INPUT --jq FILTER

on a fresh key of a temporary store, and the stored document is compared with
the expected value the way jq's own test runner compares (jv_equal: numbers
as numbers, object keys in any order). Each case ends up as one of:

    same     the stored value is jq's value
    error    edit failed and wrote nothing
    WRONG    edit wrote another value (or failed but wrote something)

Skipped, and counted by reason: filters that need what `edit` has no room for
(input/inputs, $ENV/env, modules, $__prog_args, input_filename/line), inputs
that are not JSON (NaN, Infinity: the store takes JSON only), and cases where
a real jq 1.8 (the PyPI `jq` package in .venv-jq, see scripts/jq-oracle.sh)
gives another value than the corpus says (the corpus is a development
snapshot, or a character was lost in copying it). Without .venv-jq that last
check is not made and says so.

With `same` the script also tells how many of those differ from jq's own
printed text (key order or number spelling) when the oracle is there.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["jq.test", "man.test", "onig.test", "manonig.test"]

SKIP_FILTER = [
    (re.compile(r"\binputs?\b"), "reads more inputs (input/inputs)"),
    (re.compile(r"\$ENV\b|\benv\b"), "reads the environment ($ENV/env)"),
    (re.compile(r"\b(import|include|modulemeta|get_search_list)\b"), "needs jq modules (-L)"),
    (re.compile(r"\$__prog_args|\$named\b|get_jq_origin|get_prog_origin"), "needs jq's command line"),
    (re.compile(r"\binput_filename\b|\binput_line_number\b"), "names jq's input file/line"),
]


def cases(path):
    """Yields (line, filter, input, [expected...]) as jq's test runner reads
    them: blank lines and comments between cases; %%FAIL cases skipped."""
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0

    def skip(line):
        return line.strip() == "" or line.startswith("#")

    while i < len(lines):
        if skip(lines[i]):
            i += 1
            continue
        if lines[i].startswith("%%FAIL"):
            i += 1
            while i < len(lines) and lines[i].strip() != "":
                i += 1
            continue
        start = i + 1
        program = lines[i]
        i += 1
        if i >= len(lines):
            break
        data = lines[i]
        i += 1
        expected = []
        while i < len(lines) and not skip(lines[i]):
            expected.append(lines[i])
            i += 1
        yield start, program, data, expected


BAD = object()


def parse_json(text):
    """JSON as jq reads it in tests; BAD if Python's json cannot."""
    try:
        return json.loads(text, parse_constant=lambda c: float(c.replace("Infinity", "inf")))
    except ValueError:
        return BAD


def same_value(a, b):
    """jq's jv_equal: numbers by value, objects by key set, arrays in order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def oracle(pairs):
    """jq 1.8's answers for [filter, input] pairs, or None without .venv-jq."""
    python = os.environ.get("ETAGSTORE_JQ_ORACLE") or ROOT / ".venv-jq/bin/python"
    if not Path(python).exists():
        return None
    out = subprocess.run(
        [str(python), str(ROOT / "scripts/jq_oracle.py")],
        input=json.dumps(pairs).encode(),
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--bin", default=str(ROOT / "target/x86_64-unknown-linux-gnu/debug/etagstore"))
    ap.add_argument("--list", action="append", default=[], help="print the cases of a class (same, error, WRONG, skipped, text)")
    ap.add_argument("--json", type=Path, help="write every case's outcome here")
    args = ap.parse_args()

    todo, skipped = [], {}
    for name in FILES:
        path = args.corpus / name
        if not path.exists():
            sys.exit(f"error: {path} is missing")
        for line, program, data, expected in cases(path):
            if len(expected) != 1:
                continue
            case = {"where": f"{name}:{line}", "filter": program, "input": data, "expected": expected[0]}
            reason = next((why for rx, why in SKIP_FILTER if rx.search(program)), None)
            if reason is None and (parse_json(data) is BAD or "NaN" in data or "Infinity" in data or "nan" == data.strip()):
                reason = "input is not JSON (NaN, Infinity)"
            if reason is None and parse_json(expected[0]) is BAD:
                reason = "expected value is not JSON"
            if reason:
                skipped.setdefault(reason, []).append(case)
            else:
                todo.append(case)

    answers = oracle([[c["filter"], c["input"]] for c in todo])
    if answers is None:
        print("note: no .venv-jq (scripts/jq-oracle.sh): the corpus is not checked against a real jq", file=sys.stderr)
    else:
        kept = []
        for case, answer in zip(todo, answers):
            by_jq = parse_json(answer["ok"]) if "ok" in answer else BAD
            if "ok" not in answer or not same_value(by_jq, parse_json(case["expected"])):
                case["jq"] = answer
                skipped.setdefault("jq 1.8.2 gives another value than the corpus", []).append(case)
            else:
                case["jq_text"] = compact(by_jq)
                kept.append(case)
        todo = kept

    env = dict(os.environ, ETAGSTORE_SKIP_FSYNC="1")
    env.pop("ETAGSTORE_DIR", None)
    results = {"same": [], "error": [], "WRONG": []}
    text_differs = []
    with tempfile.TemporaryDirectory() as store:
        for i, case in enumerate(todo):
            key = f"c{i}"
            base = [args.bin, "--store", store]
            try:
                run = subprocess.run(
                    base + ["edit", key, "--default=" + case["input"], "--jq=" + case["filter"]],
                    capture_output=True, env=env, timeout=20,
                )
            except subprocess.TimeoutExpired:
                run = subprocess.CompletedProcess([], -9, b"", b"timed out after 20 s (killed)")
            got = subprocess.run(base + ["get", key], capture_output=True, env=env)
            stored = got.stdout.decode() if got.returncode == 0 else None
            case["exit"] = run.returncode
            case["stderr"] = run.stderr.decode(errors="replace").strip()
            case["stored"] = stored
            if run.returncode != 0:
                results["error" if stored is None else "WRONG"].append(case)
            elif stored is not None and same_value(parse_json(stored), parse_json(case["expected"])):
                results["same"].append(case)
                if "jq_text" in case and compact(parse_json(stored)) != case["jq_text"]:
                    text_differs.append(case)
            else:
                results["WRONG"].append(case)

    counted = sum(len(v) for v in results.values())
    print(f"single-output cases: {counted + sum(len(v) for v in skipped.values())}")
    for reason, items in sorted(skipped.items()):
        print(f"  skipped {len(items):4}  {reason}")
    print(f"counted: {counted}")
    for name in ["same", "error", "WRONG"]:
        share = 100.0 * len(results[name]) / counted if counted else 0.0
        print(f"  {name:6} {len(results[name]):4}  {share:5.1f} %")
    if answers is not None:
        print(f"  (of 'same', {len(text_differs)} print other text than jq: key order or number spelling)")

    classes = dict(results, skipped=[c for v in skipped.values() for c in v], text=text_differs)
    for name in args.list:
        for c in classes.get(name, []):
            print(f"\n[{name}] {c['where']}: {c['filter']}\n  input:    {c['input']}\n  expected: {c['expected']}")
            if "stored" in c:
                print(f"  exit {c['exit']}, stored: {(c['stored'] or '').strip()[:300]}\n  stderr: {c['stderr'][:300]}")
            if "jq" in c:
                print(f"  jq 1.8.2: {c['jq']}")
    if args.json:
        args.json.write_text(json.dumps(classes, indent=1, ensure_ascii=False))
    return 1 if results["WRONG"] else 0


if __name__ == "__main__":
    sys.exit(main())
