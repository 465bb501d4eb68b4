"""Fixed-point quantization: formats, rounding modes, range analysis and the run's plan."""

from .formats import FixedPoint, FormatError
from .rounding import Rounding, quantize, quantize_

__all__ = ["FixedPoint", "FormatError", "Rounding", "quantize", "quantize_"]
