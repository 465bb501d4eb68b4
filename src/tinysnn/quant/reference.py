"""The FP32 run a quantized run refers to: its range analysis and, for PTQ, its checkpoint.

Every file is read and checked here, before any data is loaded, so that a missing or damaged
reference ends in one line naming the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from ..config import ConfigError, Scheme, TrainConfig
from ..record import read_record
from ..results import RecordError
from .observe import Ranges


@dataclass
class Reference:
    folder: Path
    metrics: dict[str, Any]
    ranges: Ranges
    #: the trained parameters (PTQ quantizes them); None for ITQ, which trains its own
    checkpoint: dict[str, Any] | None


def _invalid(message: str) -> ConfigError:
    return ConfigError(f"invalid config `quant.reference`: {message}")


def load_reference(folder: str | Path, config: TrainConfig) -> Reference:
    """Read ``folder``'s metrics.json (and checkpoint.pt for PTQ): an FP32 run that matches ``config``'s
    dataset and network."""
    folder = Path(folder)
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise _invalid(f"{metrics_path} does not exist; point it at the output folder of an FP32 run "
                       "(python -m tinysnn.train ... quant.scheme=none)")
    try:
        metrics = read_record(metrics_path)
        checkpoint = load_checkpoint(folder / "checkpoint.pt") if config.quant.scheme is Scheme.ptq else None
    except RecordError as error:
        raise _invalid(str(error)) from None
    if metrics.get("quant", {}).get("active"):
        raise _invalid(f"{folder} is a quantized run; use an FP32 run")
    if "ranges" not in metrics:
        raise _invalid(f"{metrics_path} has no range analysis; add it with `python -m tinysnn.ranges runs=[{folder}]`")
    expected = {"dataset": config.dataset.name.value, "topology": config.model.topology.value,
                "n_neurons": config.model.n_neurons}
    for key, value in expected.items():
        if metrics.get(key) != value:
            raise _invalid(f"{folder} has {key}={metrics.get(key)} but this run has {key}={value}; use a reference "
                           "trained with the same settings")
    try:
        ranges = Ranges.from_dict(metrics["ranges"])
    except ValueError as error:
        raise _invalid(f"{metrics_path}: {error}") from None
    return Reference(folder=folder, metrics=metrics, ranges=ranges, checkpoint=checkpoint)
