"""Fixed-point quantization: formats, rounding modes."""

from .formats import FixedPoint, FormatError
from .rounding import Rounding, quantize

__all__ = ["FixedPoint", "FormatError", "Rounding", "quantize"]
