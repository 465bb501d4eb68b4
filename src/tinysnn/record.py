"""The run record, ``metrics.json``: this module writes its schema and reads it back.

The pipeline builds a record from a run's results (``build_metrics``); selection and the report
read finished records as ``Candidate``s through ``candidate_of`` and ``load_candidates``.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import torch

from .config import ConfigError, TrainConfig, to_plain
from .evaluation import Scores
from .results import RecordError, read_json


def read_record(path: Path) -> dict[str, Any]:
    """A metrics.json as a dict; RecordError naming the file when it is missing or not JSON."""
    if not path.is_file():
        raise RecordError(f"{path} does not exist; point at the folder of a finished run")
    try:
        record = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} is not valid JSON ({error}); it was damaged: delete its run folder and re-run it"
                          ) from None
    if not isinstance(record, dict):
        raise RecordError(f"{path} does not hold a run record (a JSON object); delete its run folder and re-run it")
    return record


# --- writing ------------------------------------------------------------------------------


@dataclass
class ReplicaResult:
    """What evaluation found for one replica."""

    seed: int
    all_activity: Scores
    proportion: Scores
    test_spikes_per_image: float
    unassigned_neurons: int
    #: accuracy on the validation split by readout (None without one)
    val_accuracy: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        p, a = self.proportion, self.all_activity
        return {
            "seed": self.seed,
            "accuracy": {"all_activity": a.accuracy, "proportion": p.accuracy},
            "val_accuracy": self.val_accuracy,
            "per_class_accuracy": {"all_activity": a.per_class, "proportion": p.per_class},
            "confusion": {"all_activity": a.confusion, "proportion": p.confusion},
            "test_spikes_per_image": self.test_spikes_per_image,
            "unassigned_neurons": self.unassigned_neurons,
        }


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n − 1; None for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


READOUTS = ("all_activity", "proportion")


def _summary(per_readout: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float | None]]:
    stats = {readout: mean_std(values) for readout, values in per_readout.items()}
    return {k: m for k, (m, _) in stats.items()}, {k: s for k, (_, s) in stats.items()}


def build_metrics(config: TrainConfig, replicas: list[ReplicaResult], *, train: dict[str, Any],
                  label: dict[str, Any], val: dict[str, Any], test: dict[str, Any], quant: dict[str, Any],
                  ops: dict[str, Any], grid: dict[str, Any] | None, choices: dict[str, Any], overrides: list[str],
                  device: torch.device) -> dict[str, Any]:
    """The record of one run (cost and ranges are added by the pipeline).

    ``accuracy`` is the test accuracy, mean over replicas (seeds), with ``accuracy_std`` their sample
    standard deviation; ``val`` holds the same for the validation split, on which choices are made.
    """
    accuracy, accuracy_std = _summary({k: [getattr(r, k).accuracy for r in replicas] for k in READOUTS})
    if all(r.val_accuracy is not None for r in replicas):
        val_accuracy, val_std = _summary({k: [r.val_accuracy[k] for r in replicas] for k in READOUTS})  # type: ignore[index]
        val = {**val, "accuracy": val_accuracy, "accuracy_std": val_std}

    return {
        "dataset": config.dataset.name.value,
        "topology": config.model.topology.value,
        "rule": config.learning.rule.value,
        "n_neurons": config.model.n_neurons,
        "replicas": len(replicas),
        "accuracy": accuracy,
        "accuracy_std": accuracy_std,
        "per_replica": [r.to_dict() for r in replicas],
        "train": train,
        "label": label,
        "val": val,
        "test": test,
        "quant": quant,
        # what the simulations did, for the energy model: summed over the run's replicas (a grid
        # variant: over its own replicas; records before per-replica counts hold the whole grid's)
        "ops": ops,
        "grid": grid,
        "choices": choices,
        "overrides": overrides,
        "config": to_plain(config),
        "environment": {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "machine": platform.machine()},
    }


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One finished run, reduced to what selection and the report weigh."""

    path: str
    dataset: str
    topology: str
    scheme: str  # none, ptq, itq
    bits: int | None  # None = FP32
    target: str
    rounding: str
    train_images: int
    #: test accuracy, mean over the run's replicas (reported, never used to choose)
    accuracy: float
    memory_bytes: float
    memory_norm: float  # M_q / M_0
    inference_uj: float | None  # per image, operation-count model
    training_uj: float | None  # per training image; PTQ: its FP32 reference's
    #: validation accuracy, mean over replicas: what selection weighs (None: the run had no validation split)
    val_accuracy: float | None = None
    replicas: int = 1
    #: sample standard deviations over the replicas (None for one replica)
    accuracy_std: float | None = None
    val_accuracy_std: float | None = None
    #: widths that differ from ``bits`` (quant.bits_by_param), as (parameter, bits) pairs
    other_widths: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        trained = f" ({self.train_images / 1000:g}k)" if self.scheme == "itq" else ""
        if self.bits is None:
            return f"{self.topology} FP32{trained}"
        return (f"{self.topology} {self.scheme.upper()} {self.bits}-bit q{self.target.upper()}"
                f"{mixed_widths(self.other_widths)} "
                f"{self.rounding}{trained}")


def counted_images(metrics: dict[str, Any], split: str) -> int:
    """The images ``ops[split]`` (``train`` or ``test``) of a record counted, summed over replicas: the
    run's own replicas, except in a grid record written before counts were kept per replica (no
    ``energy_per``), whose training counts are its whole simulation's, every replica of the grid."""
    replicas = metrics.get("replicas", 1)
    if split == "train" and metrics.get("energy_per") != "image":
        replicas = (metrics.get("grid") or {}).get("replicas", replicas)
    return metrics[split]["images"] * replicas


def energy_uj(metrics: dict[str, Any], phase: str) -> float | None:
    """µJ per image of ``phase`` (``train`` or ``inference``), all of an image's presentations
    included; None when unrecorded.

    Records written before energy was priced per image (no ``energy_per``) priced one presentation;
    the model is linear in the counts, so their value times the presentations per image is the
    same price.
    """
    energy = metrics.get("energy_pj_per_image", {}).get(phase)
    if energy is None:
        return None
    uj = energy["total"] / 1e6
    if metrics.get("energy_per") == "image":
        return uj
    split = "train" if phase == "train" else "test"
    images = counted_images(metrics, split)
    return uj * metrics["ops"][split]["presentations"] / images if images else uj


def _training_uj(metrics: dict[str, Any]) -> float | None:
    """Training energy per image; a PTQ run's is its FP32 reference's (None when unrecorded)."""
    energy = energy_uj(metrics, "train")
    if energy is not None:
        return energy
    reference = metrics.get("quant", {}).get("reference")
    if metrics.get("quant", {}).get("scheme") == "ptq" and reference:
        return _reference_training_uj(reference)
    return None


@lru_cache(maxsize=None)
def _reference_training_uj(reference: str) -> float | None:
    """The training energy of an FP32 reference run folder (read once for all its PTQ runs)."""
    path = Path(reference) / "metrics.json"
    return _training_uj(read_record(path)) if path.is_file() else None


def other_widths(metrics: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The widths of a quantized run that differ from its ``bits`` (quant.bits_by_param)."""
    by_param = metrics.get("config", {}).get("quant", {}).get("bits_by_param") or {}
    return tuple((param, width) for param, width in by_param.items() if width != metrics["quant"]["bits"])


def mixed_widths(widths: tuple[tuple[str, int], ...]) -> str:
    """How a name shows the widths that differ from the run's bits, e.g. ", v_mem 12-bit"."""
    return "".join(f", {param} {width}-bit" for param, width in widths)


def candidate_of(path: Path, readout: str = "all_activity") -> Candidate | None:
    """The candidate recorded in a ``metrics.json`` (None for records without the cost records)."""
    metrics = read_record(path)
    if "memory" not in metrics or "energy_pj_per_image" not in metrics:
        return None
    quant = metrics["quant"]
    bits = quant["bits"] if quant["active"] else None
    val = metrics.get("val") or {}
    return Candidate(path=str(path.parent), dataset=metrics["dataset"], topology=metrics["topology"],
                     scheme=quant["scheme"], bits=bits, target=quant["target"], rounding=quant["rounding"],
                     train_images=metrics["train"]["images"], accuracy=metrics["accuracy"][readout],
                     memory_bytes=metrics["memory"]["total_bytes"], memory_norm=metrics["memory"]["normalized"],
                     inference_uj=energy_uj(metrics, "inference"),
                     training_uj=_training_uj(metrics),
                     val_accuracy=val["accuracy"][readout] if "accuracy" in val else None,
                     replicas=metrics.get("replicas", 1),
                     accuracy_std=(metrics.get("accuracy_std") or {}).get(readout),
                     val_accuracy_std=(val.get("accuracy_std") or {}).get(readout),
                     other_widths=other_widths(metrics) if bits is not None else ())


def load_candidates(folders: Iterable[Path], readout: str = "all_activity") -> list[Candidate]:
    candidates = []
    for folder in folders:
        if not folder.exists():
            raise ConfigError(f"{folder} does not exist; give a sweep folder (hydra.sweep.dir) or run folder")
        for path in sorted(folder.rglob("metrics.json")):
            candidate = candidate_of(path, readout)
            if candidate is not None:
                candidates.append(candidate)
    return candidates
