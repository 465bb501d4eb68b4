"""The trained state of a run, kept between training and evaluation, and during training.

A full epoch trains for hours and evaluating it (labels from 50,000 images, validation and test,
per replica) takes as long as a good part of its training, and a run writes its results only at
the end. Its training state is therefore saved to ``training.pt``: every ``run.checkpoint_minutes``
during training and once training is complete, so that a run killed while it trains resumes at
its last saved image and one killed while it evaluates resumes at its evaluation, with results
identical to an uninterrupted run; the file is removed once every run folder is written. It is
reused only by the same configuration (less the settings that change no result).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .network import NetworkParams
from .ops import OpCounts, ReplicaOps
from .results import atomic_write
from .sim import TrainingLog

FILE_NAME = "training.pt"
FORMAT_VERSION = 2
#: run settings that change no result: a saved state is reused whatever they are
NOT_IN_KEY = ("progress", "checkpoint_minutes")


@dataclass
class TrainedState:
    """The parameters and everything else a run's training leaves: after ``log.images`` images."""

    params: NetworkParams
    log: TrainingLog
    #: op counts per replica (each variant of a grid records its own)
    ops: ReplicaOps
    #: the training generators' states (after training they go into checkpoint.pt)
    generator_states: list[torch.Tensor]
    #: the energy meter's "train" phase (seconds, joules)
    train_phase: dict[str, Any] | None
    #: stochastic rounding's generator states (ITQ; none in FP32)
    rounding_states: list[torch.Tensor]
    #: the running-accuracy monitor's state while training is under way; None once it is complete
    monitor: dict[str, Any] | None

    @property
    def complete(self) -> bool:
        return self.monitor is None


def config_key(config: dict[str, Any]) -> str:
    """What a saved state must match: the run's configuration (less ``NOT_IN_KEY``), as canonical JSON."""
    run = {k: v for k, v in config["run"].items() if k not in NOT_IN_KEY}
    return json.dumps({**config, "run": run}, sort_keys=True, default=str)


def save_trained(path: Path, key: str, state: TrainedState) -> Path:
    # tensors are saved as they are (CPU or CUDA) and loaded onto the CPU (map_location)
    payload = {"format_version": FORMAT_VERSION, "key": key, **dataclasses.asdict(state.params),
               "log": dataclasses.asdict(state.log), "ops": state.ops.state(),
               "generator_states": state.generator_states, "train_phase": state.train_phase,
               "rounding_states": state.rounding_states, "monitor": state.monitor}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def saved_images(path: Path) -> tuple[int, bool] | None:
    """How far the state saved at ``path`` got: (images trained, whether training is complete); None
    when it cannot be read. Memory-mapped: a grid's state is ~100 MB and only its log is read."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(payload["log"]["images"]), payload["monitor"] is None
    except Exception:  # damaged or foreign: the run will say so, and train again, when it starts
        return None


def load_trained(path: Path, key: str, device: torch.device, grid: bool = False) -> TrainedState | None:
    """The state saved at ``path`` by this same configuration, else None (with a warning when a
    file is there but damaged or from another configuration: the run then trains again).

    A state saved with op counts of the whole simulation only (before they were kept per replica)
    still resumes a run, whose record is their sum; not a ``grid``, whose variants each need their own.
    """
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {payload.get('format_version')}, expected {FORMAT_VERSION}")
        if payload["key"] != key:
            print(f"warning: {path} was saved by another configuration; training again", file=sys.stderr)
            return None
        replicas = payload["weights"].shape[0]
        per_replica = not all(isinstance(value, int) for value in payload["ops"].values())
        if grid and not per_replica:
            print(f"warning: {path} holds the op counts of the whole grid, not of each variant (saved by an "
                  "older version); training again", file=sys.stderr)
            return None
        log = TrainingLog(**payload["log"])
        log.spikes = log.spikes.to(device)
        if log.k_counts is not None:
            log.k_counts = log.k_counts.to(device)
        ops = (ReplicaOps.from_state(payload["ops"]) if per_replica
               else ReplicaOps.from_totals(OpCounts(**payload["ops"]), replicas))
        if ops.table.shape[0] != replicas:
            raise ValueError(f"op counts of {ops.table.shape[0]} replicas for {replicas}")
        return TrainedState(NetworkParams(payload["weights"].to(device), payload["theta"].to(device)), log, ops,
                            payload["generator_states"], payload["train_phase"],
                            payload["rounding_states"], payload["monitor"])
    except Exception as error:  # torch.load raises RuntimeError, OSError, pickle errors … on damaged files
        print(f"warning: {path} cannot be read ({type(error).__name__}: {error}); training again", file=sys.stderr)
        return None
