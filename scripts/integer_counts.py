"""Spike counts of a qWN export through the integer-only evaluator, saved beside it.

    python scripts/integer_counts.py RUN_DIR...     writes RUN_DIR/integer_counts.pt

200 MNIST test images, Poisson-encoded with a fixed seed: a fixed input for comparing the
evaluator before and after a change (scripts/equivalence_runs.sh, scripts/compare_runs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tinysnn.data import load_dataset
from tinysnn.data.datasets import default_data_root
from tinysnn.encoding import poisson_events, spike_probability
from tinysnn.quant.export import load_export
from tinysnn.quant.integer import integer_counts


def main(run_dirs: list[str]) -> None:
    test = load_dataset("mnist", "test", default_data_root()).subset(200)
    images = test.images.reshape(len(test), -1)
    for run_dir in map(Path, run_dirs):
        export = load_export(run_dir / "export.pt")
        probability = spike_probability(images, 63.75, 1.0)
        events = poisson_events(probability, export["steps"], torch.Generator().manual_seed(1))
        counts = integer_counts(export, events, rounding_generator=torch.Generator().manual_seed(2))
        torch.save(counts, run_dir / "integer_counts.pt")
        print(f"{run_dir}: {int(counts.sum())} spikes")


if __name__ == "__main__":
    main(sys.argv[1:])
