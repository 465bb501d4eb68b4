"""Compare two trees of run folders for bit-identical results (a refactor's proof).

    python scripts/compare_runs.py BEFORE AFTER

For every run folder (metrics.json) under BEFORE, the folder at the same relative path under
AFTER must hold equal checkpoint tensors (weights, θ, assignments, proportions), equal
integer_counts.pt and export.pt where present, and an equal metrics.json once wall-clock
timings, measured energy, the environment and absolute paths are set aside. Exit 1 on any
difference, naming it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

#: metrics keys that describe the machine or the clock, not the result
VOLATILE = {"seconds", "ms_per_image", "ms_per_image_per_replica", "measured_energy", "environment"}


def _strip(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, root) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<root>")
    return value


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [f"{path}: tensors differ"]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def compare(before: Path, after: Path) -> list[str]:
    problems = []
    runs = sorted(p.parent for p in before.rglob("metrics.json"))
    if not runs:
        return [f"no runs under {before}"]
    for run in runs:
        other = after / run.relative_to(before)
        name = str(run.relative_to(before))
        a = _strip(json.loads((run / "metrics.json").read_text()), str(before))
        try:
            b = _strip(json.loads((other / "metrics.json").read_text()), str(after))
        except FileNotFoundError:
            problems.append(f"{name}: missing in {after}")
            continue
        a.get("config", {}).get("quant", {}).pop("reference", None)
        b.get("config", {}).get("quant", {}).pop("reference", None)
        problems += [f"{name}: metrics{d}" for d in _diff(a, b)]
        for file in ("checkpoint.pt", "export.pt", "integer_counts.pt"):
            if (run / file).exists():
                x = torch.load(run / file, weights_only=True)
                y = torch.load(other / file, weights_only=True)
                if file == "checkpoint.pt":
                    x.pop("config"), y.pop("config")
                problems += [f"{name}/{file}{d}" for d in _diff(x, y)]
        print(f"{name}: {'differs' if any(p.startswith(name) for p in problems) else 'identical'}")
    return problems


if __name__ == "__main__":
    found = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    for line in found:
        print(line)
    sys.exit(1 if found else 0)
