"""``python -m tinysnn.ranges RUN_DIR``: add the range analysis to an FP32 run that lacks it.

FP32 runs record ``ranges`` in metrics.json themselves; this re-creates them for older runs
by repeating the run's labelling pass (same images, seed and batch) with its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from .checkpoint import load_checkpoint
from .config import ConfigError, TrainConfig, validate
from .data import DataFileError, load_dataset
from .data.datasets import default_data_root
from .network import NetworkConstants
from .protocol import collect_counts
from .quant.ranges import MembraneTracker, Ranges, measure_ranges
from .results import read_json, write_json
from .runtime import EVAL_SEED_OFFSET, make_generator
from .simulator import InferenceSimulator


def analyse(run_dir: Path) -> Ranges:
    """Ranges of the run in ``run_dir`` (its checkpoint over its labelling pass)."""
    metrics = read_json(run_dir / "metrics.json")
    config = validate(OmegaConf.merge(OmegaConf.structured(TrainConfig), metrics["config"]))
    if config.quant.active:
        raise ConfigError(f"{run_dir} is a quantized run; range analysis describes FP32 runs")
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    torch.set_num_threads(config.eval_threads or os.cpu_count() or 1)
    root = Path(config.dataset.root) if config.dataset.root else default_data_root()
    split = load_dataset(config.dataset.name.value, "train", root)
    labels = split if config.run.n_label is None else split.subset(config.run.n_label)
    images = labels.images.reshape(len(labels), -1)
    constants = NetworkConstants.build(config.model, config.sim)
    tracker = MembraneTracker()
    weights, theta = checkpoint["weights"], checkpoint["theta"]
    for r in range(weights.shape[0]):
        simulator = InferenceSimulator(weights[r], theta[r], constants, config.model, config.sim, tracker=tracker)
        collect_counts(simulator, images, config.sim, config.run.eval_batch,
                       make_generator(config.seed + EVAL_SEED_OFFSET, torch.device("cpu")))
    return measure_ranges(weights, theta, constants.exc.thresh, tracker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="FP32 run folders (metrics.json + checkpoint.pt)")
    parser.add_argument("--force", action="store_true", help="recompute ranges that are already recorded")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            metrics = read_json(run_dir / "metrics.json")
            if "ranges" in metrics and not args.force:
                print(f"{run_dir}: ranges already recorded (use --force to recompute)")
                continue
            metrics["ranges"] = analyse(run_dir).to_dict()
        except (ConfigError, DataFileError, FileNotFoundError, ValueError) as error:
            print(f"error: {run_dir}: {error}", file=sys.stderr)
            return 2
        write_json(run_dir / "metrics.json", metrics)
        print(f"{run_dir}: {metrics['ranges']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
