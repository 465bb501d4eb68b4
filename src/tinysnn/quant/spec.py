"""What a quantized network stores in fixed point, in which formats, and how it rounds.

* qW: the X→E weights are unsigned fixed point, UQm.n with m from the weights' range.
* qWN: additionally the neuron parameters of the excitatory layer — the membrane potential
  u = V_mem − V_rest and the threshold V_th = u_th + θ (so θ too) — share one signed format Qm.n,
  with m covering the largest threshold and potential (``v_range=spiking``; deeper inhibition
  saturates at −2^m) or every observed potential (``v_range=observed``). The device constants
  that act on them are fixed point as well: u_th, u_reset and the inhibition strength are
  rounded to nearest on the same grid, the decay α to ``decay_frac_bits`` fractional bits.

A ``QuantSpec`` is data; ``tinysnn.quant.quantizer`` applies specs to a simulation's replicas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..config import QuantConfig, QuantTarget, Rounding, VRange
from ..network import DeviceConstants, NetworkConstants
from .formats import FixedPoint
from .observe import Ranges
from .rounding import quantize


@dataclass(frozen=True)
class QuantSpec:
    weight_format: FixedPoint
    #: the neuron format for V_mem and V_th (qWN), None for qW
    neuron_format: FixedPoint | None
    rounding: Rounding
    decay_frac_bits: int

    @classmethod
    def build(cls, quant: QuantConfig, ranges: Ranges) -> "QuantSpec":
        assert quant.bits is not None
        weight_format = FixedPoint.for_range(max(ranges.weights.high, 0.0), quant.bits, signed=False)
        neuron_format = None
        if quant.target is QuantTarget.wn:
            top = max(ranges.v_th.high, ranges.v_mem.high)
            if quant.v_range is VRange.observed:
                top = max(top, -ranges.v_mem.low)
            neuron_format = FixedPoint.for_range(top, quant.bits, signed=True)
        return cls(weight_format, neuron_format, quant.rounding, quant.decay_frac_bits)

    @property
    def quantizes_neurons(self) -> bool:
        return self.neuron_format is not None

    @property
    def state_dtype(self) -> torch.dtype:
        """float64 for fixed-point membranes (α_q·u + I is exact there for widths up to 32 bits), float32 otherwise."""
        return torch.float64 if self.quantizes_neurons else torch.float32

    @property
    def neuron_bits(self) -> int | None:
        return self.neuron_format.total_bits if self.neuron_format else None

    def formats(self) -> dict[str, str | None]:
        return {"weights": self.weight_format.name,
                "neurons": self.neuron_format.name if self.neuron_format else None}

    def _nearest(self, value: float) -> float:
        assert self.neuron_format is not None
        return float(quantize(torch.tensor([value], dtype=torch.float64), self.neuron_format, Rounding.nearest))

    def device_constants(self, network: NetworkConstants) -> DeviceConstants:
        """The constants a fixed-point device uses: α_q, and u_th, u_reset and w_inh on the neuron grid (qWN)."""
        if self.neuron_format is None:
            return DeviceConstants.fp32(network)
        scale = 2.0 ** self.decay_frac_bits
        exc = dataclasses.replace(network.exc, decay=round(network.exc.decay * scale) / scale,
                                  reset=self._nearest(network.exc.reset))
        return DeviceConstants(network=network, exc=exc, u_th=self._nearest(network.exc.thresh),
                               w_inh=self._nearest(network.w_inh))

    def summary(self) -> dict[str, object]:
        return {"formats": self.formats(), "rounding": self.rounding.value,
                "weight_step": self.weight_format.step,
                "neuron_step": self.neuron_format.step if self.neuron_format else None,
                "decay_frac_bits": self.decay_frac_bits}
