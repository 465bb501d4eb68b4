"""The FP32 run a quantized run refers to: its checkpoint (PTQ) and its range analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from ..config import ConfigError, TrainConfig
from ..results import read_json
from .ranges import Ranges


@dataclass
class Reference:
    folder: Path
    metrics: dict[str, Any]
    ranges: Ranges

    def checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.folder / "checkpoint.pt")


def load_reference(folder: str | Path, config: TrainConfig) -> Reference:
    """Read ``folder``/metrics.json of an FP32 run that matches ``config``'s dataset and network."""
    folder = Path(folder)
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise ConfigError(f"invalid config `quant.reference`: {metrics_path} does not exist; point it at the "
                          "output folder of an FP32 run (python -m tinysnn.train ... quant.scheme=none)")
    metrics = read_json(metrics_path)
    if metrics.get("quant", {}).get("active"):
        raise ConfigError(f"invalid config `quant.reference`: {folder} is a quantized run; use an FP32 run")
    if "ranges" not in metrics:
        raise ConfigError(f"invalid config `quant.reference`: {metrics_path} has no range analysis; "
                          f"add it with `python -m tinysnn.ranges {folder}`")
    expected = {"dataset": config.dataset.name.value, "topology": config.model.topology.value,
                "n_neurons": config.model.n_neurons}
    for key, value in expected.items():
        if metrics.get(key) != value:
            raise ConfigError(f"invalid config `quant.reference`: {folder} has {key}={metrics.get(key)} but this "
                              f"run has {key}={value}; use a reference trained with the same settings")
    return Reference(folder=folder, metrics=metrics, ranges=Ranges.from_dict(metrics["ranges"]))
