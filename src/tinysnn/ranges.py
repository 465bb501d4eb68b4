"""``python -m tinysnn.ranges runs=[<run dir>]``: add the range analysis to an FP32 run that lacks it.

FP32 runs record ``ranges`` in metrics.json themselves; this re-creates them for older runs
by repeating the run's labelling pass (same images, seed and batch) with its checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

from .app import command
from .checkpoint import load_checkpoint
from .config import ConfigError, RangesConfig, TrainConfig, validate
from .data import load_dataset
from .data.datasets import default_data_root
from .network import NetworkConstants
from .quant.observe import MembraneTracker, Ranges, measure_ranges
from .record import read_record
from .results import write_json
from .runtime import EVAL_SEED_OFFSET, make_generator
from .sim import InferenceSimulator, collect_counts


def analyse(run_dir: Path) -> Ranges:
    """Ranges of the run in ``run_dir`` (its checkpoint over its labelling pass)."""
    metrics = read_record(run_dir / "metrics.json")
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
        simulator = InferenceSimulator(weights[r], theta[r], constants, config.sim, observe=tracker.update)
        collect_counts(simulator, images, config.sim, config.run.eval_batch,
                       make_generator(config.seed + r + EVAL_SEED_OFFSET, torch.device("cpu")))
    return measure_ranges(weights, theta, constants.exc.thresh, tracker)


def _add_ranges(config: RangesConfig) -> None:
    for run_dir in map(Path, config.runs):
        metrics = read_record(run_dir / "metrics.json")
        if "ranges" in metrics and not config.force:
            print(f"{run_dir}: ranges already recorded (ranges=... force=true recomputes them)")
            continue
        metrics["ranges"] = analyse(run_dir).to_dict()
        write_json(run_dir / "metrics.json", metrics)
        print(f"{run_dir}: {metrics['ranges']}")


main = command("ranges", _add_ranges)

if __name__ == "__main__":
    main()
