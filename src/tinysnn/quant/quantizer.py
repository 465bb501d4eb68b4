"""The one place that knows about fixed point: where a device stores a value, it rounds it.

The simulators call a ``Quantizer`` at the few places where a device stores a value — a weight
after an update or normalisation, u after a step, θ after a spike or decay — and read the
device's constants and thresholds from it. ``FP32Quantizer`` changes nothing; ``FixedPointQuantizer`` rounds
each replica of a simulation with its own ``QuantSpec`` (precision × rounding) and draws
stochastic-rounding noise from its own generator, in the shape and order a run of its own
would draw it, so each replica equals its separate run and a whole ITQ grid trains as one
simulation. A ``FixedPointQuantizer`` of one replica also rounds an evaluation batch [B, …]
of that replica's network, the whole tensor at once. For the fused kernels, which round u and
θ themselves, it gives its grids as tensors and draws stochastic rounding's U ahead, in the
order ``store_membrane_`` and ``store_theta_`` would (``draw_ahead``); for the one that stores
renormalised weights, the U ``store_weights_`` would draw (``weight_offsets``).
"""

from __future__ import annotations

from types import EllipsisType
from typing import NamedTuple, Protocol, Sequence

import torch

from ..config import Rounding
from ..native import mt19937
from ..network import DeviceConstants, NetworkConstants, PerReplica
from .rounding import OFFSET, Draw, Grid, round_
from .spec import QuantSpec

#: slots drawn between saved generator states beyond those a kernel certainly uses (``DrawnAhead``):
#: saving a state costs about as much as drawing 300 values, so a few slots of 400 neurons apart
SLOTS_PER_SNAPSHOT = 5


class Quantizer(Protocol):
    """What the simulators ask of fixed point (all methods round in place)."""

    #: dtype of the membrane state: float64 where fixed-point sums must be exact
    state_dtype: torch.dtype
    #: whether u and θ are fixed point (qWN)
    quantizes_neurons: bool
    #: stochastic rounding's generators, one per replica (none in FP32): a resumed training restores them
    generators: Sequence[torch.Generator]

    def device_constants(self, network: NetworkConstants) -> DeviceConstants: ...

    def threshold(self, theta: torch.Tensor, device: DeviceConstants) -> torch.Tensor:
        """V_th = u_th + θ as the device holds it."""
        ...

    def store_weights_(self, weights: torch.Tensor) -> None:
        """Every replica's weights [R, I, N]."""
        ...

    def store_slices_(self, x: torch.Tensor, replica_of: torch.Tensor, live: torch.Tensor | None = None) -> None:
        """Gathered weight rows or columns [K, …]; slice k belongs to replica ``replica_of[k]``.

        ``live`` [R] marks the replicas whose slices may have changed (None: all); the others lie
        on their grid and draw no stochastic-rounding noise.
        """
        ...

    def store_membrane_(self, u: torch.Tensor) -> None: ...

    def store_theta_(self, theta: torch.Tensor, spikes: torch.Tensor | None = None) -> None:
        """θ [R, N] after the ``spikes`` [R, N] raised it (None: after a change of every replica)."""
        ...

    def restricted(self, replicas: list[int]) -> "Quantizer":
        """This quantizer for a simulation of only ``replicas``."""
        ...

    def rest_current_limit(self) -> torch.Tensor | None:
        """Per replica [R] (float64), the step current below which a membrane at rest stays exactly at
        rest; None where the membrane is not on a grid (FP32 u moves with any current)."""
        ...


class FP32Quantizer:
    """Nothing is fixed point."""

    state_dtype = torch.float32
    quantizes_neurons = False
    generators: Sequence[torch.Generator] = ()

    def device_constants(self, network: NetworkConstants) -> DeviceConstants:
        return DeviceConstants.fp32(network)

    def threshold(self, theta: torch.Tensor, device: DeviceConstants) -> torch.Tensor:
        return theta + device.u_th

    def store_weights_(self, weights: torch.Tensor) -> None:
        pass

    def store_slices_(self, x: torch.Tensor, replica_of: torch.Tensor, live: torch.Tensor | None = None) -> None:
        pass

    def store_membrane_(self, u: torch.Tensor) -> None:
        pass

    def store_theta_(self, theta: torch.Tensor, spikes: torch.Tensor | None = None) -> None:
        pass

    def restricted(self, replicas: list[int]) -> "FP32Quantizer":
        return self

    def rest_current_limit(self) -> torch.Tensor | None:
        return None


class _Mark(NamedTuple):
    """Where one generator's draws went: the rows of a neuron tensor it draws for (an index, or ...
    for all), how many values one slot takes, and its state before slots ``start`` (start, state)."""

    generator: torch.Generator
    row: int | EllipsisType
    slot_size: int
    snapshots: list[tuple[int, torch.Tensor]]


class DrawnAhead:
    """The offsets o of a fused kernel's roundings, stochastic rounding's U drawn before it runs.

    ``offsets`` [S, slots, N] (float32): row s's k-th rounding from now takes slot k — the N values
    its replica's generator would give ``store_membrane_`` or ``store_theta_`` then, or for a
    quantizer of one replica the k-th draw of the whole [S, N] tensor; rows that round
    deterministically hold their o. A kernel uses slots in order, at least a known number; how many
    more depends on its spikes, so the generators are drawn past every slot and ``settle_`` puts
    each back to just after the slots its row used, from a state saved every ``SLOTS_PER_SNAPSHOT`` slots.
    """

    def __init__(self, offsets: torch.Tensor, marks: list[_Mark]) -> None:
        self.offsets, self._marks = offsets, marks

    def settle_(self, used: Sequence[int]) -> None:
        """Each generator just after the ``used[s]`` slots of its row s (a whole-tensor draw: row 0's)."""
        slots = self.offsets.shape[1]
        for generator, row, slot_size, snapshots in self._marks:
            target = used[0 if row is Ellipsis else row]
            if target == slots:  # the generator is there already
                continue
            start, state = [snapshot for snapshot in snapshots if snapshot[0] <= target][-1]
            generator.set_state(state)
            torch.rand((target - start) * slot_size, generator=generator, device=self.offsets.device)


def _draw_slots(out: torch.Tensor, generator: torch.Generator, row: int | EllipsisType, used: int) -> _Mark:
    """Fill ``out`` [slots, …] with U slot after slot (one draw of k slots is k draws of one: the CPU
    generator's stream is sequential), saving the generator's state every few slots after ``used``."""
    mt19937.rand_(out[:used], generator)
    snapshots = []
    for start in range(used, out.shape[0], SLOTS_PER_SNAPSHOT):
        snapshots.append((start, generator.get_state()))
        mt19937.rand_(out[start:start + SLOTS_PER_SNAPSHOT], generator)
    return _Mark(generator, row, out[0].numel(), snapshots)


class FixedPointQuantizer:
    """Replica r stores what ``specs[r]`` quantizes, rounding with ``generators[r]``."""

    def __init__(self, specs: Sequence[QuantSpec], generators: Sequence[torch.Generator]) -> None:
        if len({s.quantizes_neurons for s in specs}) != 1:
            raise ValueError("the replicas of one simulation must all quantize neurons (qWN) or none (qW)")
        if len({s.decay_frac_bits for s in specs}) != 1:
            raise ValueError("the replicas of one simulation must share quant.decay_frac_bits")
        if len(specs) != len(generators):
            raise ValueError(f"{len(specs)} specs but {len(generators)} rounding generators")
        self.specs, self.generators = list(specs), list(generators)
        self.quantizes_neurons = specs[0].quantizes_neurons
        self.state_dtype = specs[0].state_dtype
        self._stochastic = [s.rounding is Rounding.stochastic for s in specs]
        self._grids: dict[tuple[str, torch.dtype, torch.device, int], Grid] = {}
        #: ``weight_offsets``' buffer: the rows that do not draw keep their o between stores
        self._weight_offsets: torch.Tensor | None = None

    def restricted(self, replicas: list[int]) -> "FixedPointQuantizer":
        return FixedPointQuantizer([self.specs[r] for r in replicas], [self.generators[r] for r in replicas])

    def rest_current_limit(self) -> torch.Tensor | None:
        """u = 0 stores round(α_q·0 + I) = floor(I/ε + o)·ε = 0 for 0 ≤ I < (1 − o)·ε (ε: the membrane's
        step, o: 0 truncate, ½ nearest); −inf for stochastic rounding, which draws U at every step
        whatever u is, so its presentations always run."""
        if not self.quantizes_neurons:
            return None
        limits = [float("-inf") if s.rounding is Rounding.stochastic
                  else (1.0 - OFFSET[s.rounding]) * s.membrane_format.step  # type: ignore[union-attr]
                  for s in self.specs]
        return torch.tensor(limits, dtype=torch.float64, device=self.generators[0].device)

    # --- device constants ------------------------------------------------------------------

    def _per_replica(self, values: list[float]) -> PerReplica:
        """One number when every replica has it, else [R, 1] float32."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, dtype=torch.float32, device=self.generators[0].device).view(-1, 1)

    def device_constants(self, network: NetworkConstants) -> DeviceConstants:
        """Each replica's u_th and w_inh on its grid; α_q and u_reset, which all replicas must share."""
        per = [s.device_constants(network) for s in self.specs]
        if len({(d.exc.decay, d.exc.reset) for d in per}) != 1:
            raise ValueError("replicas of one simulation must share α_q and u_reset")
        return DeviceConstants(network=network, exc=per[0].exc, u_th=self._per_replica([float(d.u_th) for d in per]),
                               w_inh=self._per_replica([float(d.w_inh) for d in per]))

    def threshold(self, theta: torch.Tensor, device: DeviceConstants) -> torch.Tensor:
        """V_th = u_th + θ per replica, saturated to each replica's neuron format (qWN)."""
        threshold = theta + device.u_th
        if not self.quantizes_neurons:
            return threshold
        grid = self._grid("threshold", threshold)
        return threshold.clamp_(grid.lowest(), grid.highest())

    # --- rounding -------------------------------------------------------------------------

    def _grid(self, kind: str, x: torch.Tensor, tensors: bool = False) -> Grid:
        """Per-replica grids for ``kind`` (weights, membrane or threshold), shaped [R, 1, …] against x
        (``tensors``: every parameter a tensor)."""
        key = (kind, x.dtype, x.device, x.dim(), tensors)
        if key not in self._grids:
            formats = [getattr(s, f"{kind.removesuffix('s')}_format") for s in self.specs]
            self._grids[key] = Grid.per_row(formats, [s.rounding for s in self.specs],  # type: ignore[arg-type]
                                            x.dtype, x.device, x.dim(), tensors)
        return self._grids[key]

    def _draws(self, replicas: Sequence[int]) -> list[Draw]:
        """Noise for the rows ``replicas`` of a [R, …] tensor; one replica draws for the whole tensor."""
        if len(self.specs) == 1:
            return [(..., self.generators[0])] if replicas and self._stochastic[0] else []
        return [(r, self.generators[r]) for r in replicas if self._stochastic[r]]

    def _round_replicas_(self, x: torch.Tensor, kind: str, drawing: Sequence[int]) -> None:
        round_(x, self._grid(kind, x), self._draws(drawing))

    def store_weights_(self, weights: torch.Tensor) -> None:
        self._round_replicas_(weights, "weights", range(len(self.specs)))

    def store_slices_(self, x: torch.Tensor, replica_of: torch.Tensor, live: torch.Tensor | None = None) -> None:
        draws: list[Draw] = []
        if any(self._stochastic):
            replica_list = replica_of.tolist()
            changed = [True] * len(self.specs) if live is None else live.tolist()
            draws = [(k, self.generators[r]) for k, r in enumerate(replica_list)
                     if self._stochastic[r] and changed[r]]
        round_(x, self._grid("weights", x).rows(replica_of), draws)

    def store_membrane_(self, u: torch.Tensor) -> None:
        if self.quantizes_neurons:
            self._round_replicas_(u, "membrane", range(len(self.specs)))

    def store_theta_(self, theta: torch.Tensor, spikes: torch.Tensor | None = None) -> None:
        if not self.quantizes_neurons:
            return
        if spikes is None:
            changed: Sequence[int] = range(len(self.specs))
        else:  # only replicas that spiked changed θ
            changed = spikes.any(1).nonzero().flatten().tolist() if any(self._stochastic) else []
        # θ on the threshold grid: V_th = u_th + θ is then on it too (u_th is)
        self._round_replicas_(theta, "threshold", changed)

    # --- fused kernels (tinysnn.sim.lif_window) ----------------------------------------------

    def kernel_grid(self, kind: str, x: torch.Tensor) -> Grid:
        """The grid ``store_membrane_`` (kind membrane) or ``store_theta_`` and ``threshold`` (threshold)
        round x [S, N] onto, every parameter a tensor: one compiled kernel serves every format."""
        return self._grid(kind, x, tensors=True)

    def weight_offsets(self, weights: torch.Tensor) -> torch.Tensor:
        """The o each element of ``weights`` [R, I, N] rounds with at this store of the whole tensor, for a
        compiled kernel (``rounded`` on ``kernel_grid("weights", …)``): U drawn as ``store_weights_`` draws it
        (the same generators, shapes and order), the grid's o for the replicas that do not round stochastically."""
        grid = self._grid("weights", weights, tensors=True)
        draws = self._draws(range(len(self.specs)))
        if not draws:
            return grid.offset  # type: ignore[return-value]  # [R, 1, 1]
        offsets = self._weight_offsets
        if offsets is None or offsets.shape != weights.shape or offsets.device != weights.device:
            offsets = torch.empty(weights.shape, dtype=torch.float32, device=weights.device)
            offsets.copy_(grid.offset.expand_as(offsets))  # type: ignore[union-attr]
            self._weight_offsets = offsets
        for where, generator in draws:
            mt19937.rand_(offsets[where], generator)
        return offsets

    @property
    def draws_ahead(self) -> bool:
        """Whether ``draw_ahead`` gives the U the step path would draw: a CPU generator's stream is
        the same however it is cut into draws, a CUDA generator's (Philox offsets) is not."""
        return all(g.device.type == "cpu" for g, stochastic in zip(self.generators, self._stochastic) if stochastic)

    def draw_ahead(self, shape: torch.Size, slots: int, used: int) -> DrawnAhead:
        """The offsets o of the next ``slots`` roundings of a neuron tensor of ``shape`` [S, N], of
        which at least ``used`` will happen (``DrawnAhead``): U for the replicas that round
        stochastically, their grid's o for the others."""
        if not self.draws_ahead:
            raise ValueError("drawing stochastic rounding ahead needs CPU generators: a CUDA generator's stream "
                             "depends on how it is cut into draws; use sim.integrator=step")
        rows, n = shape
        device = self.generators[0].device
        if not any(self._stochastic):  # nothing to draw: every slot of a row holds its o, one number broadcast
            o = torch.tensor([OFFSET[s.rounding] for s in self.specs], device=device)
            return DrawnAhead(o.view(-1, 1, 1).expand(rows, slots, n), [])
        if len(self.specs) == 1:  # one replica rounds the whole tensor: slot k is its k-th [S, N] draw
            blocks = torch.empty(slots, rows, n, device=device)
            marks = [self._fill_slots(0, blocks, ..., used)]
            offsets = blocks.transpose(0, 1)
        else:
            offsets = torch.empty(rows, slots, n, device=device)
            marks = [self._fill_slots(r, offsets[r], r, used) for r in range(rows)]
        return DrawnAhead(offsets, [mark for mark in marks if mark is not None])

    def _fill_slots(self, replica: int, out: torch.Tensor, row: int | EllipsisType, used: int) -> _Mark | None:
        """``out`` [slots, …] filled with ``replica``'s offsets: drawn (where the draws went), or its o (None)."""
        if self._stochastic[replica]:
            return _draw_slots(out, self.generators[replica], row, used)
        out.fill_(OFFSET[self.specs[replica].rounding])
        return None
