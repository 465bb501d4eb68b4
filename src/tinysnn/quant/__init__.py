"""Fixed-point quantization: formats, the rounding kernel, range analysis (observe), specs and
the quantizer the simulators store values through."""

from ..config import Rounding
from .formats import FixedPoint, FormatError
from .quantizer import FixedPointQuantizer, FP32Quantizer, Quantizer
from .rounding import quantize
from .spec import QuantSpec

__all__ = ["FP32Quantizer", "FixedPoint", "FixedPointQuantizer", "FormatError", "QuantSpec", "Quantizer", "Rounding",
           "quantize"]
