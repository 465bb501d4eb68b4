"""How the training kernels round: one ``QuantPlan`` per replica of the simulation.

A training simulation holds R replicas; replica r rounds with its own plan (precision ×
rounding) and draws stochastic-rounding noise from its own generator. With one plan for every
replica this is an ordinary quantized run; with different plans a whole ITQ grid trains as one
simulation and pays the per-step overhead once. Every rounding mode is floor(x/ε + o)·ε,
saturated, with o = 0 (truncate), 1/2 (nearest) or U (stochastic): one vectorised pass rounds
all replicas with per-row ε, o and code bounds — plain numbers where the replicas agree, [R, 1, …]
tensors where they differ — and the rows of stochastic replicas add U drawn from their
replica's generator, in the shape and order a run of their own would draw it. Each replica
therefore equals its separate run (tests/test_grid.py).

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

#: a per-replica value: one number when every replica has it, else a tensor with one row per replica
PerReplica = float | torch.Tensor


def _per_replica(values: list[float], dtype: torch.dtype, device: torch.device, ndim: int,
                 as_tensor: bool = False) -> PerReplica:
    """``values[r]`` for each replica r: one number when they agree (unless ``as_tensor``), else
    [R, 1, …] with ``ndim`` dims."""
    if len(set(values)) == 1 and not as_tensor:
        return values[0]
    return torch.tensor(values, dtype=dtype, device=device).view((-1,) + (1,) * (ndim - 1))


@dataclass(frozen=True)
class _Grid:
    """Per-replica rounding parameters for one quantity (numbers where the replicas agree)."""

    inv_step: PerReplica
    step: PerReplica
    offset: PerReplica
    min_code: PerReplica
    max_code: PerReplica

    @classmethod
    def of(cls, formats: Sequence[FixedPoint], roundings: Sequence[Rounding], dtype: torch.dtype,
           device: torch.device, ndim: int) -> "_Grid":
        def per_replica(values: list[float], as_tensor: bool = False) -> PerReplica:
            return _per_replica(values, dtype, device, ndim, as_tensor)

        # clamp_ takes two numbers or two tensors: the bounds are numbers only when both agree
        bounds_differ = len({(f.min_code, f.max_code) for f in formats}) > 1
        return cls(inv_step=per_replica([1.0 / f.step for f in formats]), step=per_replica([f.step for f in formats]),
                   offset=per_replica([_OFFSET[r] for r in roundings]),
                   min_code=per_replica([float(f.min_code) for f in formats], bounds_differ),
                   max_code=per_replica([float(f.max_code) for f in formats], bounds_differ))

    def rows(self, replica_of_row: torch.Tensor) -> "_Grid":
        """The parameters of gathered rows, row k of replica ``replica_of_row[k]``."""
        def pick(value: PerReplica) -> PerReplica:
            return value.index_select(0, replica_of_row) if isinstance(value, torch.Tensor) else value

        return _Grid(*(pick(getattr(self, f.name)) for f in dataclasses.fields(self)))  # astuple would deep-copy


class ReplicaPlans:
    """One ``QuantPlan`` per replica, applied as one by the training kernels.

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
        self._grids: dict[tuple[str, torch.dtype, torch.device, int], _Grid] = {}

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
            self._grids[key] = _Grid.of(formats, self.roundings, x.dtype, x.device, x.dim())  # type: ignore[arg-type]
        return self._grids[key]

    def _round_(self, x: torch.Tensor, kind: str, replica_of_row: Sequence[int] | None,
                drawing: Sequence[int]) -> torch.Tensor:
        """Round x in place, row k with replica ``replica_of_row[k]``'s plan (row r ↔ replica r for None).

        Rows in ``drawing`` whose replica rounds stochastically add U from that replica's
        generator; every other row lies on its grid already (rounding is the identity there) or
        rounds deterministically.
        """
        grid = self._grid(kind, x)
        if replica_of_row is not None:
            grid = grid.rows(torch.tensor(list(replica_of_row), device=x.device))
        x.mul_(grid.inv_step)  # ε is a power of two: exact
        if isinstance(grid.offset, torch.Tensor) or grid.offset:
            x.add_(grid.offset)
        for row in drawing:
            replica = row if replica_of_row is None else replica_of_row[row]
            if self.roundings[replica] is Rounding.stochastic:
                # U in float32 whatever x's dtype, as in quantize_
                x[row].add_(torch.rand(x[row].shape, generator=self.generators[replica], device=x.device,
                                       dtype=torch.float32))
        return x.floor_().clamp_(grid.min_code, grid.max_code).mul_(grid.step)

    @property
    def draws_noise(self) -> bool:
        """Whether any replica rounds stochastically (and so which rows changed matters)."""
        return bool(self._stochastic)

    def weights_(self, weights: torch.Tensor, replica_of_row: Sequence[int],
                 drawing: Sequence[int] | None = None) -> torch.Tensor:
        """Round gathered weight rows/columns [K, ...] in place; row k belongs to ``replica_of_row[k]``.

        ``drawing`` lists the rows that changed (all when None); the others lie on the grid and
        draw no stochastic rounding noise.
        """
        if not self._stochastic:
            drawing = ()
        return self._round_(weights, "weights", replica_of_row,
                            range(len(replica_of_row)) if drawing is None else drawing)

    def replica_weights_(self, weights: torch.Tensor) -> torch.Tensor:
        """Round the weights [R, I, N] of every replica in place."""
        return self._round_(weights, "weights", None, range(weights.shape[0]))

    def replica_neurons_(self, values: torch.Tensor, replicas: Sequence[int] | None = None) -> torch.Tensor:
        """Round neuron state (u or θ) [R, N] in place (qWN only); stochastic replicas draw noise
        only where listed (every replica for None)."""
        return self._round_(values, "neurons", None, range(values.shape[0]) if replicas is None else replicas)

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
        return threshold.clamp_(grid.min_code * grid.step, grid.max_code * grid.step)  # [min, max] value

    # --- device constants ------------------------------------------------------------------

    def _constant(self, values: list[float]) -> PerReplica:
        """A device constant per replica: one number when they agree, else [R, 1] float32."""
        return _per_replica(values, torch.float32, self.generators[0].device, 2)

    def constants(self, constants: NetworkConstants) -> NetworkConstants:
        """Each replica's fixed-point u_th (and α, u_reset, which all replicas share)."""
        per_plan = [p.constants(constants).exc for p in self.plans]
        if len({(c.decay, c.reset) for c in per_plan}) != 1:
            raise ValueError("replicas of one simulation must share α_q and u_reset")
        exc = dataclasses.replace(per_plan[0], thresh=self._constant([c.thresh for c in per_plan]))
        return dataclasses.replace(constants, exc=exc)

    def model(self, model: ModelConfig) -> ModelConfig:
        """Each replica's inhibition strength on its neuron grid."""
        field = "w_lateral_mv" if model.topology is Topology.tinysnn else "w_inh_exc_mv"
        values = [getattr(p.model(model), field) for p in self.plans]
        return dataclasses.replace(model, **{field: self._constant(values)})

