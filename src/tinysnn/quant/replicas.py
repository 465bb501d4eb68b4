"""Replicas with different quantization plans in one training simulation (an ITQ grid).

Replica r of an R-replica simulation follows its own ``QuantPlan`` (precision × rounding), so a
whole ITQ grid trains as one simulation and pays the per-step overhead once. Every rounding mode
is floor(x/ε + o)·ε, saturated, with o = 0 (truncate), 1/2 (nearest) or U (stochastic): one
vectorised pass rounds all replicas with per-row ε, o and code bounds, and the rows of
stochastic replicas add U drawn from their replica's generator, in the shape and order a run of
their own would draw it. Each replica therefore equals its separate run (tests/test_grid.py).

All plans quantize the same things (qW or qWN): a replica's membrane arithmetic (float32 or
float64) must be the one its separate run uses. Constants that differ between replicas (u_th and
the inhibition strength on each neuron grid) become [R, 1] tensors, which broadcast wherever the
scalar did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ..config import ModelConfig, Topology
from ..network import NetworkConstants
from .formats import FixedPoint
from .plan import QuantPlan
from .rounding import Rounding

#: o in floor(x/ε + o) for the deterministic modes (stochastic rows add U instead)
_OFFSET = {Rounding.truncate: 0.0, Rounding.nearest: 0.5, Rounding.stochastic: 0.0}


@dataclass(frozen=True)
class _Grid:
    """Per-replica rounding parameters for one quantity, as [R] tensors."""

    inv_step: torch.Tensor
    step: torch.Tensor
    offset: torch.Tensor
    min_code: torch.Tensor
    max_code: torch.Tensor

    @classmethod
    def of(cls, formats: Sequence[FixedPoint], roundings: Sequence[Rounding], dtype: torch.dtype,
           device: torch.device) -> "_Grid":
        def tensor(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype, device=device)

        return cls(inv_step=tensor([1.0 / f.step for f in formats]), step=tensor([f.step for f in formats]),
                   offset=tensor([_OFFSET[r] for r in roundings]),
                   min_code=tensor([float(f.min_code) for f in formats]),
                   max_code=tensor([float(f.max_code) for f in formats]))

    def rows(self, replica_of_row: torch.Tensor | None, ndim: int) -> "_Grid":
        """The parameters of each row of an x with ``ndim`` dims (row r ↔ replica r for None),
        shaped to broadcast against it."""
        shape = (-1,) + (1,) * (ndim - 1)

        def pick(t: torch.Tensor) -> torch.Tensor:
            t = t.flatten()
            return (t if replica_of_row is None else t.index_select(0, replica_of_row)).view(shape)

        return _Grid(*(pick(getattr(self, f.name)) for f in dataclasses.fields(self)))  # astuple would deep-copy


class ReplicaPlans:
    """One ``QuantPlan`` per replica, applied as one plan by the training kernels.

    ``generators[r]`` is replica r's stochastic-rounding generator.
    """

    def __init__(self, plans: list[QuantPlan], generators: list[torch.Generator]) -> None:
        if len({p.quantizes_neurons for p in plans}) != 1:
            raise ValueError("the replicas of one simulation must all quantize neurons (qWN) or none (qW)")
        if len({p.decay_frac_bits for p in plans}) != 1:
            raise ValueError("the replicas of one simulation must share quant.decay_frac_bits")
        self.plans = plans
        self.roundings = [p.rounding for p in plans]
        self.generators = generators
        self._stochastic = [r for r, rounding in enumerate(self.roundings) if rounding is Rounding.stochastic]
        self._grids: dict[tuple[str, torch.dtype, torch.device], _Grid] = {}

    @classmethod
    def side_by_side(cls, plans: list[QuantPlan]) -> "ReplicaPlans":
        """The variants ``plans`` in turn, each with one replica per generator of its own."""
        return cls([p for p in plans for _ in p.generators], [g for p in plans for g in p.generators])

    def restricted(self, replicas: Sequence[int]) -> "ReplicaPlans":
        """These plans for a simulation of only ``replicas``."""
        return ReplicaPlans([self.plans[r] for r in replicas], [self.generators[r] for r in replicas])

    @property
    def quantizes_neurons(self) -> bool:
        return self.plans[0].quantizes_neurons

    @property
    def state_dtype(self) -> torch.dtype:
        return self.plans[0].state_dtype

    # --- rounding -------------------------------------------------------------------------

    def _grid(self, kind: str, x: torch.Tensor) -> _Grid:
        """Per-replica parameters for ``kind`` (weights or neurons), shaped [R, 1, …] against x."""
        key = (kind, x.dtype, x.device, x.dim())
        if key not in self._grids:
            formats = [p.weight_format if kind == "weights" else p.neuron_format for p in self.plans]
            grid = _Grid.of(formats, self.roundings, x.dtype, x.device)  # type: ignore[arg-type]
            self._grids[key] = grid.rows(None, x.dim())
        return self._grids[key]

    def _round_(self, x: torch.Tensor, kind: str, replica_of_row: Sequence[int] | None,
                drawing: Sequence[int]) -> torch.Tensor:
        """Round x in place, row k with replica ``replica_of_row[k]``'s plan (row r ↔ replica r for None).

        Rows in ``drawing`` whose replica rounds stochastically add U from that replica's
        generator; every other row lies on its grid already or rounds deterministically.
        """
        grid = self._grid(kind, x)
        if replica_of_row is not None:
            grid = grid.rows(torch.tensor(list(replica_of_row), device=x.device), x.dim())
        x.mul_(grid.inv_step).add_(grid.offset)  # ε is a power of two: exact
        for row in drawing:
            replica = row if replica_of_row is None else replica_of_row[row]
            if self.roundings[replica] is Rounding.stochastic:
                # U in float32 whatever x's dtype, as in quantize_
                x[row].add_(torch.rand(x[row].shape, generator=self.generators[replica], device=x.device,
                                       dtype=torch.float32))
        return x.floor_().clamp_(grid.min_code, grid.max_code).mul_(grid.step)

    def weights_(self, weights: torch.Tensor, replica_of_row: Sequence[int],
                 drawing: Sequence[int] | None = None) -> torch.Tensor:
        """Round gathered weight rows/columns [K, ...] in place; row k belongs to ``replica_of_row[k]``.

        ``drawing`` lists the rows that changed (all when None), as in ``QuantPlan.weights_``.
        """
        if not self._stochastic:
            drawing = ()
        return self._round_(weights, "weights", replica_of_row,
                            range(len(replica_of_row)) if drawing is None else drawing)

    def replica_weights_(self, weights: torch.Tensor, replicas: Sequence[int]) -> torch.Tensor:
        """Round the weights [R, I, N] of the listed replicas in place."""
        return self._round_(weights, "weights", None, replicas)

    def replica_neurons_(self, values: torch.Tensor, replicas: Sequence[int]) -> torch.Tensor:
        """Round neuron state (u or θ) [R, N] of the listed replicas in place (qWN only)."""
        return self._round_(values, "neurons", None, replicas)

    def theta_after_spikes_(self, theta: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """Round θ [R, N] of the replicas with a spike in ``spikes`` [R, N] (qWN)."""
        spiked = spikes.any(1).nonzero().flatten().tolist() if self._stochastic else []
        return self.replica_neurons_(theta, spiked)

    def threshold(self, theta: torch.Tensor, constants: NetworkConstants) -> torch.Tensor:
        """V_th = u_th + θ per replica, saturated to each replica's neuron format (qWN)."""
        threshold = theta + constants.exc.thresh
        if not self.quantizes_neurons:
            return threshold
        grid = self._grid("neurons", threshold)
        return threshold.clamp_(grid.min_code * grid.step, grid.max_code * grid.step)

    # --- device constants ------------------------------------------------------------------

    def _per_replica(self, values: list[float]) -> float | torch.Tensor:
        """One value when the replicas agree, else an [R, 1] float32 tensor (broadcasts like the scalar)."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, dtype=torch.float32, device=self.generators[0].device)[:, None]

    def constants(self, constants: NetworkConstants) -> NetworkConstants:
        """Each replica's fixed-point u_th (and α, u_reset, which all replicas share)."""
        per_plan = [p.constants(constants).exc for p in self.plans]
        if len({(c.decay, c.reset) for c in per_plan}) != 1:
            raise ValueError("replicas of one simulation must share α_q and u_reset")
        exc = dataclasses.replace(per_plan[0], thresh=self._per_replica([c.thresh for c in per_plan]))
        return dataclasses.replace(constants, exc=exc)

    def model(self, model: ModelConfig) -> ModelConfig:
        """Each replica's inhibition strength on its neuron grid."""
        field = "w_lateral_mv" if model.topology is Topology.tinysnn else "w_inh_exc_mv"
        values = [getattr(p.model(model), field) for p in self.plans]
        return dataclasses.replace(model, **{field: self._per_replica(values)})


#: what the training kernels accept as their quantization
TrainingQuant = QuantPlan | ReplicaPlans
