"""Several results files side by side: one row per measure, one column per run.

    python -m bench.compare bench/runs/run-1.json bench/runs/run-2.json ...

Each column shows Fleet's figure, with the ratio to its floor or peer where the row
has one, and whether the row met its aim; a run that lacks a row shows nothing there.
The header says how fast the engines were allowed to be in each run.
"""

import json
import re
import sys
from pathlib import Path

from bench.harness import verdict

CPU_DETAIL = re.compile(r" \((\d+ s wall)\): (.*)$")  # a CPU row's measure names its seconds


def key(row):
    """A row's benchmark and measure, without a CPU row's own figures."""
    return row["benchmark"], CPU_DETAIL.sub("", row["measure"])


def column(results):
    """{key: cell} of one results file."""
    cells = {}
    for benchmark in results["benchmarks"].values():
        for r in benchmark["rows"]:
            figure = r["fleet"] + (f" ({r['ratio']})" if r["ratio"] else "")
            if r["reference"] and not r["ratio"]:
                figure += f"; {r['reference']}"
            if r["met"] is not None:
                figure += f", {verdict(r['met'])}"
            if detail := CPU_DETAIL.search(r["measure"]):
                figure += f" ({detail[1]}: {detail[2]})"
            cells[key(r)] = figure
    return cells


def engines_of(results):
    found = {b.get("engines_cpu", "unlimited") for b in results["benchmarks"].values()}
    return ", ".join(sorted(found))


def main(paths):
    runs = [json.loads(Path(p).read_text()) for p in paths]
    columns = [column(r) for r in runs]
    order = list(dict.fromkeys(key for c in columns for key in c))
    aims, names = {}, {}
    for r in runs:
        for b in r["benchmarks"].values():
            for row in b["rows"]:
                aims.setdefault(key(row), row["aim"])
                names.setdefault(key(row), key(row)[1])
    heads = [f"{Path(p).stem} (engines: {engines_of(r)})" for p, r in zip(paths, runs, strict=True)]
    print("| benchmark | measure | aim | " + " | ".join(heads) + " |")
    print("|---|---|---|" + "---|" * len(heads))
    for each in order:
        cells = [c.get(each, "") for c in columns]
        print(f"| {each[0]} | {names[each]} | {aims[each]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
