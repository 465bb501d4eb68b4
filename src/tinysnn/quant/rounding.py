"""Rounding a real value to a fixed-point grid of step ε, then saturating: the one kernel.

* truncate:   floor(x/ε)·ε            (two's-complement truncation, toward −∞)
* nearest:    floor(x/ε + 1/2)·ε      (round to nearest, ties go up, toward +∞)
* stochastic: floor(x/ε + U)·ε, U ~ Uniform[0, 1)  — unbiased: E[SR(x)] = x; rounds up
  with probability equal to the distance from the lower grid point, in units of ε.

Every quantizer rounds through ``round_``: one format for the whole tensor, or one per row
(the replicas of a simulation with different precisions and roundings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import EllipsisType
from typing import Iterable, Sequence

import torch

from ..config import Rounding
from ..native import mt19937
from .formats import FixedPoint

#: o in floor(x/ε + o) for the deterministic modes (stochastic rows add U instead)
OFFSET = {Rounding.truncate: 0.0, Rounding.nearest: 0.5, Rounding.stochastic: 0.0}

#: one number for the whole tensor, or a [R, 1, …] tensor with one value per row
PerRow = float | torch.Tensor


@dataclass(frozen=True)
class Grid:
    """Where ``round_`` puts values: step ε, offset o, code bounds; numbers, or per-row tensors.

    ``offset`` o is 0 (truncate), ½ (nearest) or 0 for stochastic rows that draw no U (they lie on
    the grid already, where every mode is the identity)."""

    inv_step: PerRow
    step: PerRow
    offset: PerRow
    min_code: PerRow
    max_code: PerRow
    #: whether any row's format holds negative values
    signed: bool

    @classmethod
    def of(cls, fmt: FixedPoint, rounding: Rounding) -> "Grid":
        return cls(1.0 / fmt.step, fmt.step, OFFSET[rounding], float(fmt.min_code), float(fmt.max_code),
                   fmt.signed)

    @classmethod
    def per_row(cls, formats: Sequence[FixedPoint], roundings: Sequence[Rounding], dtype: torch.dtype,
                device: torch.device, ndim: int, tensors: bool = False) -> "Grid":
        """Row r rounds with ``formats[r]`` and ``roundings[r]``; shaped to broadcast against [R, …] of ``ndim``.

        A parameter every row shares is a number, unless ``tensors``: then every parameter is a tensor
        (a compiled kernel would bake numbers in and compile again for each format)."""
        def per_row(values: list[float], as_tensor: bool = tensors) -> PerRow:
            if len(set(values)) == 1 and not as_tensor:
                return values[0]
            return torch.tensor(values, dtype=dtype, device=device).view((-1,) + (1,) * (ndim - 1))

        # clamp_ takes two numbers or two tensors: the bounds are numbers only when both agree
        bounds_differ = len({(f.min_code, f.max_code) for f in formats}) > 1
        return cls(inv_step=per_row([1.0 / f.step for f in formats]), step=per_row([f.step for f in formats]),
                   offset=per_row([OFFSET[r] for r in roundings]),
                   min_code=per_row([float(f.min_code) for f in formats], bounds_differ or tensors),
                   max_code=per_row([float(f.max_code) for f in formats], bounds_differ or tensors),
                   signed=any(f.signed for f in formats))

    def rows(self, row_of: torch.Tensor) -> "Grid":
        """The grid of gathered rows: row k takes row ``row_of[k]``'s parameters."""
        def pick(value: PerRow) -> PerRow:
            return value.index_select(0, row_of) if isinstance(value, torch.Tensor) else value

        return Grid(*(pick(getattr(self, f.name)) for f in dataclasses.fields(self)))  # astuple would deep-copy

    def lowest(self) -> PerRow:
        return self.min_code * self.step

    def highest(self) -> PerRow:
        return self.max_code * self.step


#: where stochastic rounding adds U, and from which generator: an index of the first dim, or ... for all
Draw = tuple[int | EllipsisType, torch.Generator]


def round_(x: torch.Tensor, grid: Grid, draws: Iterable[Draw] = ()) -> torch.Tensor:
    """Round x onto ``grid`` in place and saturate; returns x.

    ``draws`` lists the parts of x that round stochastically, each with its generator; U is
    drawn in float32 (24 random bits, U = r·2^−24) whatever x's dtype, so integer kernels can
    reproduce it exactly. Parts not listed round with the grid's offset o (0 truncate, ½ nearest).

    Exact in x's dtype: with y = x/ε (exact, ε is a power of two), its integer part t = trunc(y)
    and fraction f = y − t (both exact in floating point),

        floor(y + o) = t + [f ≥ 1 − o] − [f < −o]     (0 ≤ o < 1; the first term acts for y ≥ 0,
                                                        the second for y < 0)

    Adding o to y in floating point would round (upward: a bias of stochastic rounding, and
    grid values moved); these comparisons do not.
    """
    y = x.mul_(grid.inv_step)
    draws = list(draws)
    offset: PerRow = grid.offset
    if draws:
        offset = torch.empty(y.shape, dtype=torch.float32, device=y.device)
        if isinstance(grid.offset, torch.Tensor):  # rows that draw no U keep the grid's o
            offset.copy_(grid.offset.expand_as(y))
        elif not (len(draws) == 1 and draws[0][0] is Ellipsis):
            offset.fill_(grid.offset)
        for where, generator in draws:
            mt19937.rand_(offset[where], generator)
    elif not isinstance(offset, torch.Tensor) and not offset:
        return y.floor_().clamp_(grid.min_code, grid.max_code).mul_(grid.step)  # truncate
    fraction = torch.frac(y)
    y.sub_(fraction)  # t
    if grid.signed:  # unsigned formats saturate every y < 0 to 0 anyway
        y.sub_(fraction.lt(-offset).to(y.dtype))
    y.add_(fraction.ge_(1 - offset))
    return y.clamp_(grid.min_code, grid.max_code).mul_(grid.step)


def rounded(x: torch.Tensor, grid: Grid, offset: torch.Tensor) -> torch.Tensor:
    """``round_``'s arithmetic out of place, for compiled kernels: x on ``grid`` with offsets o.

    ``offset`` is a tensor of o per element or per row: U for stochastic rounding (float32, drawn
    by the caller), the mode's o for the others. These are ``round_``'s exact steps, so its bits;
    where ``round_`` truncates with floor(y) (o = 0 as a number), t + [f ≥ 1] − [f < 0] is the
    same value, and the same bits for every y but −0.0, which neither α·u + I nor θ + θ_plus ever is.
    """
    y = x * grid.inv_step
    fraction = torch.frac(y)
    y = y - fraction  # t
    if grid.signed:  # as in round_: unsigned formats saturate every y < 0 to 0 anyway
        y = y - (fraction < -offset).to(y.dtype)
    y = y + (fraction >= 1 - offset).to(y.dtype)
    return y.clamp(grid.min_code, grid.max_code) * grid.step


def quantize(x: torch.Tensor, fmt: FixedPoint, rounding: Rounding,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """x rounded onto ``fmt``'s grid and saturated to its range (a new tensor of x's dtype)."""
    if rounding is Rounding.stochastic and generator is None:
        raise ValueError("stochastic rounding needs an explicit torch.Generator (for reproducibility)")
    draws: list[Draw] = [(..., generator)] if rounding is Rounding.stochastic else []
    return round_(x.clone(), Grid.of(fmt, rounding), draws)
