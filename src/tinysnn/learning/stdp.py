"""Spike-driven STDP rules, applied event-driven to the rows/columns that spiked.

Traces: x = exp(−(t − t_last)·dt/τ) (set to 1 at a spike, decaying in between).

η_post comes from the run's schedule (tinysnn.learning.schedule).

* ``PairSTDP`` — pair-wise STDP (BindsNET's PostPre, the Diehl & Cook baseline):
  at a presynaptic spike of input i:   Δw_ij = −η_pre · x_post,j
  at a postsynaptic spike of neuron j: Δw_ij = +η_post · x_pre,i
* ``SLSTDP`` — SL-STDP (Srinivasan et al., IJCNN 2017), see its docstring.

Weights are clamped to [w_min, w_max] after each update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import LearningConfig, ModelConfig, SimConfig


@dataclass(frozen=True)
class PairSTDP:
    nu_pre: float
    pre_decay_log: float  # −dt/τ_pre
    #: exp(−dt/τ_post): the x_post trace this rule reads at presynaptic spikes
    post_decay: float
    w_min: float
    w_max: float
    #: acts at every spike
    window_steps = None

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "PairSTDP":
        return cls(nu_pre=learning.nu_pre, pre_decay_log=-sim.dt_ms / learning.tau_pre_ms,
                   post_decay=math.exp(-sim.dt_ms / learning.tau_post_ms), w_min=model.w_min, w_max=model.w_max)

    def pre_update_(self, rows: torch.Tensor, post_trace: torch.Tensor) -> None:
        """rows [k, N] of inputs that fired; post_trace [k, N]: w ← max(w − η_pre·x_post, w_min)."""
        rows.sub_(post_trace, alpha=self.nu_pre).clamp_(min=self.w_min)

    def post_update_(self, cols: torch.Tensor, pre_trace: torch.Tensor, eta: float) -> None:
        """cols [k, I] of neurons that fired; pre_trace [k, I]: w ← min(w + η_post·x_pre, w_max)."""
        cols.add_(pre_trace, alpha=eta).clamp_(max=self.w_max)


@dataclass(frozen=True)
class SLSTDP:
    """SL-STDP as reconstructed from secondary sources (the IJCNN 2017 text was not available).

    Assumptions: updates happen only at postsynaptic spikes (no presynaptic-spike updates, which
    is what makes the rule cheaper than pair STDP); the sign is set by how recently the input
    fired, read from its trace against a target x_tar; magnitudes are soft-bounded:

        x_pre ≥ x_tar:  Δw = +η_p · (x_pre − x_tar) · (w_max − w)
        x_pre < x_tar:  Δw = −η_d · (x_tar − x_pre) · (w − w_min)

    with η_p = η_post of the run's schedule (``nu_post``), η_d = ``nu_depression``, x_tar = ``x_tar``
    (default 0.4, D&C's STDP offset).
    """

    nu_depression: float
    x_tar: float
    pre_decay_log: float
    w_min: float
    w_max: float
    #: acts at postsynaptic spikes only
    window_steps = None
    post_decay = None

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "SLSTDP":
        return cls(nu_depression=learning.nu_depression, x_tar=learning.x_tar,
                   pre_decay_log=-sim.dt_ms / learning.tau_pre_ms, w_min=model.w_min, w_max=model.w_max)

    def post_update_(self, cols: torch.Tensor, pre_trace: torch.Tensor, eta: float) -> None:
        """cols [k, I] of neurons that fired; pre_trace [k, I]; eta = η_p."""
        gap = pre_trace - self.x_tar
        potentiation = gap.clamp(min=0).mul_(self.w_max - cols).mul_(eta)
        depression = gap.clamp(max=0).mul_(cols - self.w_min).mul_(self.nu_depression)
        cols.add_(potentiation).add_(depression).clamp_(self.w_min, self.w_max)
