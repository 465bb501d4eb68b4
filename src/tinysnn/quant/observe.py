"""Range analysis: the values each quantizable quantity takes in an FP32 run.

The integer bits of every fixed-point format come from these ranges (recorded in an FP32
run's metrics.json under ``ranges``): weights and θ from the trained parameters, V_th = u_th + θ,
and the membrane potential u = V − V_rest from every step of the labelling pass (training
images, frozen weights), tracked on device without synchronising.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Ranges:
    weights: Interval
    theta: Interval
    v_th: Interval
    v_mem: Interval

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {key: asdict(value) for key, value in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Ranges":
        try:
            return cls(**{key: Interval(float(data[key]["low"]), float(data[key]["high"]))
                          for key in ("weights", "theta", "v_th", "v_mem")})
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed ranges record ({error}); expected weights/theta/v_th/v_mem "
                             "each with low and high") from None


class MembraneTracker:
    """Running min and max of u over simulation steps (two elementwise ops per step, no sync)."""

    def __init__(self) -> None:
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    def update(self, u: torch.Tensor) -> None:
        low, high = u.amin(0), u.amax(0)
        if self.low is None or self.high is None:
            self.low, self.high = low, high
        else:
            torch.minimum(self.low, low, out=self.low)
            torch.maximum(self.high, high, out=self.high)

    def interval(self) -> Interval:
        if self.low is None or self.high is None:
            raise ValueError("no membrane potentials were tracked")
        return Interval(float(self.low.min()), float(self.high.max()))


def measure_ranges(weights: torch.Tensor, theta: torch.Tensor, threshold_mv: float,
                   membrane: MembraneTracker) -> Ranges:
    """Ranges of a trained network (weights [..., I, N], θ [..., N]) and its tracked potentials."""
    v_th = theta + threshold_mv
    return Ranges(weights=Interval(float(weights.min()), float(weights.max())),
                  theta=Interval(float(theta.min()), float(theta.max())),
                  v_th=Interval(float(v_th.min()), float(v_th.max())),
                  v_mem=membrane.interval())
