"""Pair-wise STDP with traces (BindsNET's PostPre), applied event-driven.

Traces decay with τ and are set to 1 at a spike: x(t) = exp(−(t − t_last)·dt/τ).
At a presynaptic spike of input i:   Δw_ij = −η_pre · x_post,j   (depression)
At a postsynaptic spike of neuron j: Δw_ij = +η_post · x_pre,i   (potentiation)
then w is clamped to [w_min, w_max]. Only the rows of inputs that fired and the columns of
neurons that fired are touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import LearningConfig, ModelConfig, SimConfig


@dataclass(frozen=True)
class PairSTDP:
    nu_pre: float
    nu_post: float
    pre_decay_log: float  # −dt/τ_pre
    post_decay: float  # exp(−dt/τ_post)
    w_min: float
    w_max: float

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "PairSTDP":
        return cls(
            nu_pre=learning.nu_pre,
            nu_post=learning.nu_post,
            pre_decay_log=-sim.dt_ms / learning.tau_pre_ms,
            post_decay=float(torch.tensor(-sim.dt_ms / learning.tau_post_ms).exp()),
            w_min=model.w_min,
            w_max=model.w_max,
        )

    def depress_rows_(self, rows: torch.Tensor, post_trace: torch.Tensor) -> None:
        """rows [k, N] of inputs that fired; post_trace [k, N]: w ← max(w − η_pre·x_post, w_min)."""
        rows.sub_(post_trace, alpha=self.nu_pre).clamp_(min=self.w_min)

    def potentiate_cols_(self, cols: torch.Tensor, pre_trace: torch.Tensor) -> None:
        """cols [k, I] of neurons that fired; pre_trace [k, I]: w ← min(w + η_post·x_pre, w_max)."""
        cols.add_(pre_trace, alpha=self.nu_post).clamp_(max=self.w_max)


def trace_at(step: int, times: torch.Tensor, rows: torch.Tensor, size: int, decay_log: float) -> torch.Tensor:
    """Spike traces of ``size`` inputs at ``step`` from the events (times, rows) up to that step.

    x = exp((t_last − t)·dt/τ) with t_last each input's latest spike (0 if it never fired).
    """
    last = torch.full((size,), float("-inf"), device=times.device)
    last.scatter_reduce_(0, rows, times.float(), reduce="amax")
    return last.sub_(step).mul_(-decay_log).exp_()
