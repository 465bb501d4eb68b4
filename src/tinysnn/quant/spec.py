"""What a quantized network stores in fixed point, in which formats, and how it rounds.

Each stored quantity has its own format: integer bits from its own range (range analysis of the
FP32 reference), the rest of its width fraction (``quant.bits``, or ``quant.bits_by_param``).

* qW: the X→E weights, unsigned UQm.n with m from the weights' range.
* qWN: additionally the excitatory neurons. The membrane potential u = V_mem − V_rest is signed
  Qm.n with m covering the largest threshold and potential (u must reach the threshold to fire;
  ``v_range=spiking``: deeper inhibition saturates at −2^m) or every observed potential
  (``v_range=observed``); u_reset and the inhibition strength, which act on u, lie on its grid.
  The threshold V_th = u_th + θ (θ is stored in it) is unsigned UQm.n with m from the thresholds'
  range; u_th lies on its grid. The decay α has ``decay_frac_bits`` fractional bits.

A ``QuantSpec`` is data; ``tinysnn.quant.quantizer`` applies specs to a simulation's replicas.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch

from ..config import QuantConfig, QuantTarget, Rounding, VRange
from ..cost.memory import BitWidths
from ..network import DeviceConstants, NetworkConstants
from .formats import FixedPoint
from .observe import Ranges
from .rounding import quantize


@dataclass(frozen=True)
class QuantSpec:
    weight_format: FixedPoint
    #: qWN: the membrane potential's format (None for qW)
    membrane_format: FixedPoint | None
    #: qWN: the threshold V_th's format (None for qW)
    threshold_format: FixedPoint | None
    rounding: Rounding
    decay_frac_bits: int

    @classmethod
    def build(cls, quant: QuantConfig, ranges: Ranges) -> "QuantSpec":
        weight_format = FixedPoint.for_range(max(ranges.weights.high, 0.0), quant.width("w"), signed=False)
        membrane_format = threshold_format = None
        if quant.target is QuantTarget.wn:
            top = max(ranges.v_th.high, ranges.v_mem.high)
            if quant.v_range is VRange.observed:
                top = max(top, -ranges.v_mem.low)
            membrane_format = FixedPoint.for_range(top, quant.width("v_mem"), signed=True)
            threshold_format = FixedPoint.for_range(max(ranges.v_th.high, 0.0), quant.width("theta"), signed=False)
        return cls(weight_format, membrane_format, threshold_format, quant.rounding, quant.decay_frac_bits)

    @property
    def quantizes_neurons(self) -> bool:
        return self.membrane_format is not None

    @property
    def state_dtype(self) -> torch.dtype:
        """float64 for fixed-point membranes (α_q·u + I is exact there for widths up to 32 bits), float32 otherwise."""
        return torch.float64 if self.quantizes_neurons else torch.float32

    def widths(self) -> BitWidths:
        """Bits of each stored parameter (FP32 where nothing is fixed point), for the memory accounting."""
        if self.membrane_format is None or self.threshold_format is None:
            return BitWidths(weights=self.weight_format.total_bits)
        return BitWidths(weights=self.weight_format.total_bits, v_mem=self.membrane_format.total_bits,
                         threshold=self.threshold_format.total_bits)

    def formats(self) -> dict[str, str | None]:
        return {"weights": self.weight_format.name,
                "membrane": self.membrane_format.name if self.membrane_format else None,
                "threshold": self.threshold_format.name if self.threshold_format else None}

    def device_constants(self, network: NetworkConstants) -> DeviceConstants:
        """The constants a fixed-point device uses (qWN): α_q, u_reset and w_inh on the membrane grid, u_th on
        the threshold grid."""
        return _device_constants(self, network)

    def summary(self) -> dict[str, object]:
        return {"formats": self.formats(), "rounding": self.rounding.value,
                "weight_step": self.weight_format.step,
                "membrane_step": self.membrane_format.step if self.membrane_format else None,
                "threshold_step": self.threshold_format.step if self.threshold_format else None,
                "decay_frac_bits": self.decay_frac_bits}


@functools.cache
def _device_constants(spec: QuantSpec, network: NetworkConstants) -> DeviceConstants:
    """``QuantSpec.device_constants``, once per spec and network: every retry's restricted simulator asks again."""
    if spec.membrane_format is None or spec.threshold_format is None:
        return DeviceConstants.fp32(network)
    scale = 2.0 ** spec.decay_frac_bits
    exc = dataclasses.replace(network.exc, decay=round(network.exc.decay * scale) / scale,
                              reset=_nearest(network.exc.reset, spec.membrane_format))
    return DeviceConstants(network=network, exc=exc, u_th=_nearest(network.exc.thresh, spec.threshold_format),
                           w_inh=_nearest(network.w_inh, spec.membrane_format))


def _nearest(value: float, fmt: FixedPoint) -> float:
    return float(quantize(torch.tensor([value], dtype=torch.float64), fmt, Rounding.nearest))
