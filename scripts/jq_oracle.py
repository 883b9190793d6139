"""Runs jq (libjq through the PyPI `jq` package) on rows of the compatibility
table: reads a JSON array of [filter, input] pairs on stdin, prints a JSON
array of {"ok": TEXT} (the single output as jq prints it) or {"err": MESSAGE}
(an error, or not exactly one output)."""
import json
import sys

import jq

results = []
for code, text in json.load(sys.stdin):
    try:
        outputs = jq.compile(code).input_text(text).all()
        if len(outputs) != 1:
            results.append({"err": f"{len(outputs)} outputs"})
        else:
            text_out = jq.compile(code).input_text(text).text()
            results.append({"ok": text_out})
    except Exception as e:  # jq's compile and run-time errors
        results.append({"err": str(e)})
json.dump(results, sys.stdout)
