"""tinySNN's enhanced STDP: timestep-based updates with an adaptive potentiation factor.

Weights change only at the end of each update window (default: once per presentation). With
maxN the largest spike count of any excitatory neuron in the window (paper Eq. 1, 2):

    k  = ceil(maxN / N_th)
    Δw = k · η_post · x_pre · (w_max − w)     for every input of each neuron that spiked in the window

Potentiation only; competition comes from lateral inhibition, θ and weight normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import LearningConfig, ModelConfig, PreTrace, SimConfig, steps_for


@dataclass(frozen=True)
class AdaptivePotentiation:
    nu_post: float
    n_th: int
    window_steps: int
    pre_trace: PreTrace
    pre_decay_log: float
    w_min: float
    w_max: float

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "AdaptivePotentiation":
        window = sim.steps if learning.update_window_ms is None else steps_for(learning.update_window_ms, sim.dt_ms)
        return cls(nu_post=learning.nu_post, n_th=learning.n_th, window_steps=min(window, sim.steps),
                   pre_trace=learning.pre_trace, pre_decay_log=-sim.dt_ms / learning.tau_pre_ms,
                   w_min=model.w_min, w_max=model.w_max)

    def potentiation_factor(self, window_counts: torch.Tensor) -> torch.Tensor:
        """k = ceil(maxN / N_th) per replica, from window spike counts [R, N]."""
        return torch.ceil(window_counts.amax(1) / self.n_th)

    def update_(self, weights: torch.Tensor, window_counts: torch.Tensor, pre_trace: torch.Tensor) -> None:
        """weights [R, I, N]; window_counts [R, N]; pre_trace x_pre [R, I]. Updates spiking neurons' columns."""
        k = self.potentiation_factor(window_counts)
        replica_idx, neuron_idx = (window_counts > 0).nonzero(as_tuple=True)
        if replica_idx.numel() == 0:
            return
        cols = weights[replica_idx, :, neuron_idx]  # [K, I]
        rate = (k[replica_idx] * self.nu_post)[:, None]
        # Δw = k·η_post·x_pre·(w_max − w)
        delta = torch.sub(self.w_max, cols).mul_(pre_trace[replica_idx]).mul_(rate)
        weights[replica_idx, :, neuron_idx] = cols.add_(delta).clamp_(self.w_min, self.w_max)
