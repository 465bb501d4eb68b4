"""A quantized run's plan: what is fixed point, in which formats, and how it rounds.

* qW: the X→E weights are unsigned fixed point, UQm.n with m from the weights' range.
* qWN: additionally the neuron parameters of the excitatory layer — the membrane potential
  u = V_mem − V_rest and the threshold V_th = u_th + θ (so θ too) — share one signed format Qm.n,
  with m covering the largest threshold and potential (``v_range=spiking``; deeper inhibition
  saturates at −2^m) or every observed potential (``v_range=observed``). The device constants
  that act on them are fixed point as well: u_th, u_reset and the inhibition strength are
  rounded to nearest on the same grid, the decay α to ``decay_frac_bits`` fractional bits.

State is re-quantized wherever it is stored: u after every step's update, θ after every spike
and decay, weights (ITQ) after every update and normalisation. Membrane arithmetic runs in
float64, where α_q·u + I is exact for widths up to 32 bits, so the result equals an integer
device's (``quant.integer``). A plan carries one stochastic-rounding generator per replica of
its training run; the training kernels round through ``quant.replicas.ReplicaPlans``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..config import ModelConfig, QuantConfig, QuantTarget, Topology, VRange
from ..network import NetworkConstants
from .formats import FixedPoint
from .ranges import Ranges
from .rounding import Rounding, quantize, quantize_

#: offset of the rounding generators' seeds from the run seed (apart from spikes' generators)
ROUNDING_SEED_OFFSET = 7_919


@dataclass
class QuantPlan:
    weight_format: FixedPoint
    #: the neuron format for V_mem and V_th (qWN), None for qW
    neuron_format: FixedPoint | None
    rounding: Rounding
    decay_frac_bits: int
    #: one per replica (used by stochastic rounding only)
    generators: list[torch.Generator]

    @classmethod
    def build(cls, quant: QuantConfig, ranges: Ranges, generators: list[torch.Generator]) -> "QuantPlan":
        assert quant.bits is not None
        weight_format = FixedPoint.for_range(max(ranges.weights.high, 0.0), quant.bits, signed=False)
        neuron_format = None
        if quant.target is QuantTarget.wn:
            top = max(ranges.v_th.high, ranges.v_mem.high)
            if quant.v_range is VRange.observed:
                top = max(top, -ranges.v_mem.low)
            neuron_format = FixedPoint.for_range(top, quant.bits, signed=True)
        return cls(weight_format, neuron_format, quant.rounding, quant.decay_frac_bits, generators)

    @property
    def quantizes_neurons(self) -> bool:
        return self.neuron_format is not None

    @property
    def state_dtype(self) -> torch.dtype:
        """float64 for fixed-point membranes (exact products), float32 otherwise."""
        return torch.float64 if self.quantizes_neurons else torch.float32

    def formats(self) -> dict[str, str | None]:
        return {"weights": self.weight_format.name,
                "neurons": self.neuron_format.name if self.neuron_format else None}

    def batch_membrane_rounder(self, generator: torch.Generator):
        """In-place u rounding for an evaluation batch [B, N] of one network, drawing from ``generator``."""
        fmt = self.neuron_format
        if fmt is None:
            return None
        return lambda u: quantize_(u, fmt, self.rounding, generator)

    def threshold(self, theta: torch.Tensor, constants: NetworkConstants) -> torch.Tensor:
        """V_th = u_th + θ (both on the grid), saturated; FP32 θ + u_th for qW."""
        threshold = theta + constants.exc.thresh
        return self.neuron_format.saturate(threshold) if self.neuron_format else threshold

    # --- device constants ------------------------------------------------------------------

    def _nearest(self, value: float) -> float:
        assert self.neuron_format is not None
        return float(quantize(torch.tensor([value], dtype=torch.float64), self.neuron_format, Rounding.nearest))

    def constants(self, constants: NetworkConstants) -> NetworkConstants:
        """The excitatory constants a fixed-point device uses: α_q, and u_th, u_reset on the grid."""
        if self.neuron_format is None:
            return constants
        scale = 2.0 ** self.decay_frac_bits
        exc = dataclasses.replace(constants.exc, decay=round(constants.exc.decay * scale) / scale,
                                  thresh=self._nearest(constants.exc.thresh), reset=self._nearest(constants.exc.reset))
        return dataclasses.replace(constants, exc=exc)

    def model(self, model: ModelConfig) -> ModelConfig:
        """The inhibition strength (what reaches the excitatory membrane) on the neuron grid."""
        if self.neuron_format is None:
            return model
        if model.topology is Topology.tinysnn:
            return dataclasses.replace(model, w_lateral_mv=self._nearest(model.w_lateral_mv))
        return dataclasses.replace(model, w_inh_exc_mv=self._nearest(model.w_inh_exc_mv))

    def summary(self) -> dict[str, object]:
        return {"formats": self.formats(), "rounding": self.rounding.value,
                "weight_step": self.weight_format.step,
                "neuron_step": self.neuron_format.step if self.neuron_format else None,
                "decay_frac_bits": self.decay_frac_bits}
