#!/usr/bin/env python
"""Markdown table of finished runs: every metrics.json under the given folders.

    python scripts/results_table.py docs/runs/headline [--by learning.pre_trace learning.max_n ...]

Accuracy is all-activity: validation (what choices are made on) and test (reported), each the
mean ± sample standard deviation over the run's seeds (replicas). ``--by`` adds columns for
config keys (dotted paths into the run's resolved config).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysnn.record import read_record
from tinysnn.selection import percent


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _share_of_k1(distribution: list[dict[str, int]] | None) -> str:
    """Share of the adaptive rule's updates that used k = 1, over every replica."""
    if not distribution:
        return ""
    total = sum(sum(replica.values()) for replica in distribution)
    return f"{sum(replica.get('1', 0) for replica in distribution) / total:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--by", nargs="*", default=[], help="config keys to show as columns")
    args = parser.parse_args()
    files = sorted({p for folder in args.folders for p in folder.rglob("metrics.json")})
    if not files:
        raise SystemExit(f"no metrics.json under {', '.join(map(str, args.folders))}")
    header = ["dataset", "model", "learning", *args.by, "seeds", "train imgs", "val %", "test %",
              "train ms/img/replica", "k = 1", "run"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in files:
        m = read_record(path)
        val = m.get("val") or {}
        k1 = _share_of_k1(m["train"].get("k_distribution"))
        row = [m["dataset"], m["topology"], m["rule"], *(str(lookup(m["config"], key)) for key in args.by),
               str(m["replicas"]), str(m["train"]["images"]),
               percent(val["accuracy"]["all_activity"], (val.get("accuracy_std") or {}).get("all_activity"))
               if "accuracy" in val else "n/a",
               percent(m["accuracy"]["all_activity"], (m.get("accuracy_std") or {}).get("all_activity")),
               f"{m['train']['ms_per_image_per_replica']:.1f}", k1, str(path.parent)]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
