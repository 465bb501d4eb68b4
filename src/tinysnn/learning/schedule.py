"""η_post over a training run: constant, or falling geometrically η(f) = η_0·(η_1/η_0)^f with f the
fraction of training images seen (large early steps form features, small late steps keep them
from being overwritten by the most recent images)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LearningConfig


@dataclass(frozen=True)
class EtaSchedule:
    start: float
    #: η_post at the end of training (None = constant)
    end: float | None = None

    @classmethod
    def build(cls, learning: LearningConfig) -> "EtaSchedule":
        return cls(learning.nu_post, learning.nu_post_final)

    def at(self, fraction: float) -> float:
        """η_post with ``fraction`` ∈ [0, 1] of the training run done."""
        if self.end is None:
            return self.start
        return self.start * (self.end / self.start) ** fraction
