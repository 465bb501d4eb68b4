"""tinySNN's enhanced STDP: timestep-based updates with an adaptive potentiation factor.

Weights change only at the end of each update window (default: once per presentation). With
maxN the largest spike count of any excitatory neuron in the window (paper Eq. 1, 2):

    k  = ceil(maxN / N_th)
    Δw = k · η_post · x_pre · (w_max − w)     for every input of each neuron that spiked in the window

Potentiation only; competition comes from lateral inhibition, θ and weight normalisation.
η_post may anneal geometrically over the training run, η(f) = η_0·(η_1/η_0)^f with f the
fraction of training images seen: large early steps form features, small late steps keep
them from being overwritten by the most recent images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..config import LearningConfig, ModelConfig, PreTrace, SimConfig, steps_for


@dataclass
class AdaptivePotentiation:
    nu_post: float
    n_th: int
    window_steps: int
    pre_trace: PreTrace
    pre_decay_log: float
    w_min: float
    w_max: float
    #: η_post at the end of training (None = constant)
    nu_post_final: float | None = None

    def __post_init__(self) -> None:
        self.rate = self.nu_post  # η_post now

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "AdaptivePotentiation":
        window = sim.steps if learning.update_window_ms is None else steps_for(learning.update_window_ms, sim.dt_ms)
        return cls(nu_post=learning.nu_post, n_th=learning.n_th, window_steps=min(window, sim.steps),
                   pre_trace=learning.pre_trace, pre_decay_log=-sim.dt_ms / learning.tau_pre_ms,
                   w_min=model.w_min, w_max=model.w_max, nu_post_final=learning.nu_post_final)

    def set_progress(self, fraction: float) -> None:
        """η_post for a training run ``fraction`` ∈ [0, 1] done: η_0·(η_1/η_0)^fraction."""
        if self.nu_post_final is not None:
            self.rate = self.nu_post * (self.nu_post_final / self.nu_post) ** fraction

    def potentiation_factor(self, window_counts: torch.Tensor) -> torch.Tensor:
        """k = ceil(maxN / N_th) per replica, from window spike counts [R, N]."""
        return torch.ceil(window_counts.amax(1) / self.n_th)

    def update_(self, weights: torch.Tensor, window_counts: torch.Tensor, pre_trace: torch.Tensor,
                requantize: Callable[[torch.Tensor, Sequence[int]], object] | None = None) -> int:
        """weights [R, I, N]; window_counts [R, N]; pre_trace x_pre [R, I]. Updates spiking neurons' columns
        and returns how many.

        ``requantize(cols, replica_of_col)`` rounds the updated columns in place (ITQ).
        """
        replica_idx, neuron_idx = (window_counts > 0).nonzero(as_tuple=True)
        return self.update_columns_(weights, window_counts, replica_idx, neuron_idx, pre_trace[replica_idx],
                                    requantize)

    def update_columns_(self, weights: torch.Tensor, window_counts: torch.Tensor, replica_idx: torch.Tensor,
                        neuron_idx: torch.Tensor, pre_cols: torch.Tensor,
                        requantize: Callable[[torch.Tensor, Sequence[int]], object] | None = None) -> int:
        """Update the columns (replica_idx, neuron_idx) of neurons that spiked, each with its own x_pre
        row of ``pre_cols`` [K, I]; returns K."""
        if replica_idx.numel() == 0:
            return 0
        k = self.potentiation_factor(window_counts)
        cols = weights[replica_idx, :, neuron_idx]  # [K, I]
        rate = (k[replica_idx] * self.rate)[:, None]
        # Δw = k·η_post·x_pre·(w_max − w)
        delta = torch.sub(self.w_max, cols).mul_(pre_cols).mul_(rate)
        cols.add_(delta).clamp_(self.w_min, self.w_max)
        if requantize is not None:
            requantize(cols, replica_idx.tolist())
        weights[replica_idx, :, neuron_idx] = cols
        return replica_idx.numel()
