#!/usr/bin/env python
"""Accuracy versus precision tables from quantized runs (every metrics.json under the folders).

    python scripts/quant_table.py multirun/ptq_mnist multirun/itq_mnist [--readout proportion]

One table per dataset and scheme: a row per (target, rounding), a column per precision, cells
test accuracy in % with the number of training images of ITQ runs in brackets. The FP32 line
gives, for PTQ, the reference model evaluated under the same protocol (a ``precision=fp32`` PTQ
run) and, for ITQ, FP32 training runs of the same lengths (``scheme=itq precision=fp32``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--readout", choices=["all_activity", "proportion"], default="all_activity")
    args = parser.parse_args()
    runs = [json.loads(p.read_text()) for folder in args.folders for p in sorted(folder.rglob("metrics.json"))]
    runs = [m for m in runs if "quant" in m and m["quant"]["scheme"] != "none"]
    if not runs:
        raise SystemExit("no PTQ/ITQ runs found")
    cells: dict[tuple[str, str], dict[tuple[str, str], dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    fp32: dict[tuple[str, str], list[str]] = defaultdict(list)
    precisions: set[int] = set()
    for m in runs:
        q, accuracy = m["quant"], 100 * m["accuracy"][args.readout]
        key = (m["dataset"], q["scheme"])
        if q["bits"] is None:
            trained = f" ({m['train']['images'] // 1000}k images)" if q["scheme"] == "itq" else ""
            fp32[key].append(f"{accuracy:.2f}{trained}")
            continue
        precisions.add(q["bits"])
        images = m["train"]["images"]
        note = f" ({images // 1000}k)" if q["scheme"] == "itq" else ""
        cells[key][(f"q{q['target'].upper()}", q["rounding"])][str(q["bits"])] = f"{accuracy:.2f}{note}"
    columns = [str(b) for b in sorted(precisions, reverse=True)]
    for key in sorted(cells):
        dataset, scheme = key
        print(f"\n**{dataset}, {scheme.upper()}** ({args.readout.replace('_', '-')} accuracy, %; "
              f"FP32: {', '.join(sorted(fp32[key])) or 'n/a'})\n")
        print("| target | rounding | " + " | ".join(f"{c} bit" for c in columns) + " |")
        print("|---|---|" + "---|" * len(columns))
        for (target, rounding), row in sorted(cells[key].items()):
            print(f"| {target} | {rounding} | " + " | ".join(row.get(c, "") for c in columns) + " |")


if __name__ == "__main__":
    main()
