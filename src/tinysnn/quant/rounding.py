"""Rounding a real value to a fixed-point grid of step ε, then saturating.

* truncate:   floor(x/ε)·ε            (two's-complement truncation, toward −∞)
* nearest:    floor(x/ε + 1/2)·ε      (round to nearest, ties go up, toward +∞)
* stochastic: floor(x/ε + U)·ε, U ~ Uniform[0, 1)  — unbiased: E[SR(x)] = x; rounds up
  with probability equal to the distance from the lower grid point, in units of ε.
"""

from __future__ import annotations

from enum import Enum

import torch

from .formats import FixedPoint


class Rounding(str, Enum):
    truncate = "truncate"
    nearest = "nearest"
    stochastic = "stochastic"


def quantize(x: torch.Tensor, fmt: FixedPoint, rounding: Rounding,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """x rounded onto ``fmt``'s grid and saturated to its range (a new tensor of x's dtype)."""
    return quantize_(x.clone(), fmt, rounding, generator)


def quantize_(x: torch.Tensor, fmt: FixedPoint, rounding: Rounding,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """In-place ``quantize``; returns x."""
    scaled = x.mul_(1.0 / fmt.step)  # ε is a power of two: exact
    if rounding is Rounding.truncate:
        scaled = scaled.floor_()
    elif rounding is Rounding.nearest:
        scaled = scaled.add_(0.5).floor_()
    else:
        if generator is None:
            raise ValueError("stochastic rounding needs an explicit torch.Generator (for reproducibility)")
        # U is drawn in float32 (24 random bits) whatever x's dtype, so integer kernels can
        # reproduce it exactly as floor(U·2^24)
        noise = torch.rand(scaled.shape, generator=generator, device=scaled.device, dtype=torch.float32)
        scaled = scaled.add_(noise).floor_()
    return scaled.clamp_(fmt.min_code, fmt.max_code).mul_(fmt.step)

