"""Fixed-point quantization: formats, rounding modes."""

from .formats import FixedPoint, FormatError
from .rounding import Rounding, quantize, quantize_

__all__ = ["FixedPoint", "FormatError", "Rounding", "quantize", "quantize_"]
