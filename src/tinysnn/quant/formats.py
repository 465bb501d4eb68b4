"""Fixed-point formats Qm.n (signed, two's complement) and UQm.n (unsigned), saturating.

A value is stored as an integer code c and means c·ε with ε = 2^−n. Signed Qm.n has
1 + m + n bits and covers [−2^m, 2^m − ε]; unsigned UQm.n has m + n bits and covers
[0, 2^m − ε]. Values outside the range saturate to its ends.

n may be negative: then ε = 2^|n| > 1 and the format is a scaled integer (e.g. Q8.−1 holds
even numbers in [−256, 254]); range analysis needs this when a quantity's range exceeds
what the width can hold at unit resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class FormatError(ValueError):
    """An impossible fixed-point format; the message says which field and how to fix it."""


@dataclass(frozen=True)
class FixedPoint:
    total_bits: int
    frac_bits: int
    signed: bool

    def __post_init__(self) -> None:
        if self.total_bits < 1:
            raise FormatError(f"a fixed-point format needs at least 1 bit, got total_bits={self.total_bits}")
        if self.signed and self.total_bits < 2:
            raise FormatError("a signed format needs at least 2 bits (sign + 1)")
        if self.frac_bits < -32:
            raise FormatError(f"frac_bits must be >= -32 (ε = 2^-frac_bits), got {self.frac_bits}")
        if self.int_bits < 0:
            raise FormatError(f"{self.frac_bits} fractional bits do not fit in {self.total_bits} bits "
                              f"({'signed, 1 sign bit' if self.signed else 'unsigned'}); use fewer fractional bits")
        if self.total_bits > 32:
            raise FormatError(f"at most 32 bits are supported, got {self.total_bits}")

    @property
    def int_bits(self) -> int:
        return self.total_bits - self.frac_bits - (1 if self.signed else 0)

    @property
    def step(self) -> float:
        """ε = 2^−n, the value of one least significant bit."""
        return 2.0 ** -self.frac_bits

    @property
    def min_code(self) -> int:
        return -(2 ** (self.total_bits - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return 2 ** (self.total_bits - 1) - 1 if self.signed else 2**self.total_bits - 1

    @property
    def min_value(self) -> float:
        return self.min_code * self.step

    @property
    def max_value(self) -> float:
        return self.max_code * self.step

    @property
    def name(self) -> str:
        return f"{'Q' if self.signed else 'UQ'}{self.int_bits}.{self.frac_bits}"

    @classmethod
    def for_range(cls, max_abs: float, total_bits: int, signed: bool) -> "FixedPoint":
        """The format of ``total_bits`` whose integer part just covers |x| ≤ max_abs; the rest is fraction.

        m = smallest integer with 2^m > max_abs (0 for max_abs < 1), n = total − m − sign, which is
        negative (a coarser-than-integer step) when the width cannot hold the range at unit step.
        """
        if not math.isfinite(max_abs) or max_abs < 0:
            raise FormatError(f"range analysis gave max |x| = {max_abs}; it must be finite and >= 0")
        int_bits = 0 if max_abs < 1 else math.floor(math.log2(max_abs)) + 1
        frac_bits = total_bits - int_bits - (1 if signed else 0)
        return cls(total_bits=total_bits, frac_bits=frac_bits, signed=signed)

    def saturate(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.min_value, self.max_value)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes (int64: every width's codes fit) of values that already lie on this format's grid."""
        return torch.round(x.double() / self.step).to(torch.int64)

    def values(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.to(torch.float32) * self.step

    def storage_dtype(self) -> torch.dtype:
        """The smallest torch integer type that holds every code."""
        for dtype in (torch.uint8, torch.int8, torch.uint16, torch.int16, torch.int32):
            info = torch.iinfo(dtype)
            if info.min <= self.min_code and self.max_code <= info.max:
                return dtype
        return torch.int64
