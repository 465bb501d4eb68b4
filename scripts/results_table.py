#!/usr/bin/env python
"""Markdown table of finished runs: every metrics.json under the given folders.

    python scripts/results_table.py outputs/ multirun/2026-11-23_20-00-00 [--by learning.nu_post ...]

``--by`` adds columns for config keys (dotted paths into the run's resolved config).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--by", nargs="*", default=[], help="config keys to show as columns")
    args = parser.parse_args()
    files = sorted({p for folder in args.folders for p in folder.rglob("metrics.json")})
    if not files:
        raise SystemExit(f"no metrics.json under {', '.join(map(str, args.folders))}")
    header = ["dataset", "model", "learning", *args.by, "train imgs", "test imgs", "acc all-activity",
              "acc proportion", "train ms/img", "spikes/img", "run"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in files:
        m = json.loads(path.read_text())
        row = [m["dataset"], m["topology"], m["rule"], *(str(lookup(m["config"], key)) for key in args.by),
               str(m["train"]["images"]), str(m["test"]["images"]),
               f"{100 * m['accuracy']['all_activity']:.2f}%", f"{100 * m['accuracy']['proportion']:.2f}%",
               f"{m['train']['ms_per_image_per_replica']:.1f}", f"{m['train']['spikes_per_image']:.1f}",
               str(path.parent)]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
