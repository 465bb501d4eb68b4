"""The one place that knows about fixed point: where a device stores a value, it rounds it.

The simulators call a ``Quantizer`` at the few places where a device stores a value — a weight
after an update or normalisation, u after a step, θ after a spike or decay — and read the
device's constants and thresholds from it. ``FP32Quantizer`` changes nothing; ``FixedPointQuantizer`` rounds
each replica of a simulation with its own ``QuantSpec`` (precision × rounding) and draws
stochastic-rounding noise from its own generator, in the shape and order a run of its own
would draw it, so each replica equals its separate run and a whole ITQ grid trains as one
simulation. A ``FixedPointQuantizer`` of one replica also rounds an evaluation batch [B, …]
of that replica's network, the whole tensor at once.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from ..config import Rounding
from ..network import DeviceConstants, NetworkConstants, PerReplica
from .rounding import Draw, Grid, round_
from .spec import QuantSpec


class Quantizer(Protocol):
    """What the simulators ask of fixed point (all methods round in place)."""

    #: dtype of the membrane state: float64 where fixed-point sums must be exact
    state_dtype: torch.dtype
    #: whether u and θ are fixed point (qWN)
    quantizes_neurons: bool

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


class FP32Quantizer:
    """Nothing is fixed point."""

    state_dtype = torch.float32
    quantizes_neurons = False

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

    def restricted(self, replicas: list[int]) -> "FixedPointQuantizer":
        return FixedPointQuantizer([self.specs[r] for r in replicas], [self.generators[r] for r in replicas])

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

    def _grid(self, kind: str, x: torch.Tensor) -> Grid:
        """Per-replica grids for ``kind`` (weights, membrane or threshold), shaped [R, 1, …] against x."""
        key = (kind, x.dtype, x.device, x.dim())
        if key not in self._grids:
            formats = [getattr(s, f"{kind.removesuffix('s')}_format") for s in self.specs]
            self._grids[key] = Grid.per_row(formats, [s.rounding for s in self.specs],  # type: ignore[arg-type]
                                            x.dtype, x.device, x.dim())
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
