"""What is deployed: one replica of a quantized tinySNN run, read from its folder and checked.

``DeployModel.load(run_dir)`` reads ``metrics.json`` (the run's config), ``export.pt`` (integer
codes, formats, neuron constants, label assignments) and ``checkpoint.pt`` (the parameters the
simulator evaluated). ``prune=True`` drops the neurons that hold no class (they never fired while
labels were assigned, so the readout ignores them); the code generation drops zero-weight synapses.
An FP32 run deploys its checkpoint (float32 weights). Anything the C runtime cannot reproduce is
refused with one line: a missing folder or file, the baseline's inhibitory population, stochastic rounding (the
simulator draws it from torch's generator; deploy truncate or nearest).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from ..checkpoint import load_checkpoint
from ..config import Rounding, Topology, TrainConfig, validate
from ..network import NetworkConstants
from ..quant.export import load_export
from ..quant.formats import FixedPoint
from ..quant.spec import QuantSpec
from ..record import read_record
from ..results import RecordError
from ..runtime import EVAL_SEED_OFFSET


def export_is_fp32(export: dict[str, Any]) -> bool:
    return export["rounding"] is None


@dataclass(frozen=True)
class DeployModel:
    run_dir: Path
    config: TrainConfig
    export: dict[str, Any]
    replica: int
    #: the simulator's parameters of the kept neurons: weights [I, N] (values on the weight grid), θ [N]
    weights: torch.Tensor
    theta: torch.Tensor
    #: bool [N_run]: the neurons deployed (all, or those holding a class)
    keep: torch.Tensor

    @classmethod
    def load(cls, run_dir: str | Path, replica: int = 0, prune: bool = False) -> "DeployModel":
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RecordError(f"run folder {run_dir} does not exist; give run_dir=<a run folder>")
        metrics = read_record(run_dir / "metrics.json")
        config = validate(OmegaConf.merge(OmegaConf.structured(TrainConfig), metrics["config"]))
        if config.model.topology is not Topology.tinysnn:
            raise RecordError(f"{run_dir} is a {config.model.topology.value} network; the C runtime implements "
                              "tinySNN's direct lateral inhibition (model=tinysnn)")
        checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
        try:  # an FP32 run deploys its checkpoint (float weights and state)
            export = load_export(run_dir / "export.pt") if config.quant.active else {
                "weights": checkpoint["weights"], "assignments": checkpoint["assignments"], "rounding": None}
        except (FileNotFoundError, ValueError) as error:
            raise RecordError(str(error)) from None
        if export["rounding"] is not None and Rounding(export["rounding"]) is Rounding.stochastic:
            raise RecordError(f"{run_dir} rounds stochastically, which the simulator draws from torch's generator; "
                              "deploy a run with rounding=truncate or rounding=nearest")
        replicas = export["weights"].shape[0]
        if not 0 <= replica < replicas:
            raise RecordError(f"replica={replica} but {run_dir} holds {replicas} replica(s)")
        assignments = export["assignments"][replica]
        keep = assignments >= 0 if prune else torch.ones_like(assignments, dtype=torch.bool)
        if not bool(keep.any()):
            raise RecordError(f"{run_dir}: no neuron holds a class; there is nothing to deploy")
        return cls(run_dir, config, export, replica, checkpoint["weights"][replica][:, keep].float(),
                   checkpoint["theta"][replica][keep].float(), keep)

    @property
    def fp32(self) -> bool:
        """An FP32 run: float32 weights and state (the summation order decides bit-exactness)."""
        return export_is_fp32(self.export)

    @property
    def integer(self) -> bool:
        """qWN: integer-only neuron state; qW: float32 state."""
        return "membrane_format" in self.export

    @property
    def network(self) -> NetworkConstants:
        """The constants of the deployed layer (its neuron count after pruning)."""
        model = dataclasses.replace(self.config.model, n_neurons=int(self.keep.sum()))
        return NetworkConstants.build(model, self.config.sim)

    @property
    def weight_format(self) -> FixedPoint:
        return FixedPoint(**self.export["weight_format"])

    @property
    def codes(self) -> torch.Tensor:
        """int64 [I, N] weight codes."""
        return self.export["weights"][self.replica][:, self.keep].to(torch.int64)

    @property
    def assignments(self) -> torch.Tensor:
        """int64 [N], −1 for neurons without a class."""
        return self.export["assignments"][self.replica][self.keep].to(torch.int64)

    @property
    def v_th_codes(self) -> torch.Tensor:
        """qWN: int64 [N] threshold codes."""
        return self.export["v_th"][self.replica][self.keep].to(torch.int64)

    @property
    def spec(self) -> QuantSpec:
        membrane = FixedPoint(**self.export["membrane_format"]) if self.integer else None
        threshold = FixedPoint(**self.export["threshold_format"]) if self.integer else None
        return QuantSpec(self.weight_format, membrane, threshold, Rounding(self.export["rounding"]),
                         int(self.export.get("decay_frac_bits", self.config.quant.decay_frac_bits)))

    @property
    def seed_base(self) -> int:
        """Test image n is encoded with seed seed_base + n, as the simulator's test pass does."""
        return self.config.seed + self.replica + EVAL_SEED_OFFSET

    @property
    def label(self) -> str:
        if self.fp32:
            return "FP32" + (f" ({int(self.keep.sum())} of {self.keep.numel()} neurons)" if not bool(self.keep.all())
                             else "")
        target = "qWN" if self.integer else "qW"
        pruned = f", {int(self.keep.sum())} of {self.keep.numel()} neurons" if not bool(self.keep.all()) else ""
        return f"{self.weight_format.total_bits}-bit {target} ({self.export['rounding']}{pruned})"
