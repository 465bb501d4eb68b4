"""tinySNN's enhanced STDP: timestep-based updates with an adaptive potentiation factor.

Weights change only at the end of each update window (default: once per presentation). With
maxN the largest spike count of any excitatory neuron (paper Eq. 1, 2), counted — as the paper
defines it — "during the presentation of input spikes until the update time" (``max_n=presentation``;
``max_n=window`` counts inside the update window only):

    k  = ceil(maxN / N_th)
    Δw = k · η_post · x_pre · (w_max − w)     for every input of each neuron that spiked in the window

Potentiation only; competition comes from lateral inhibition, θ and weight normalisation.
η_post comes from the run's schedule (tinysnn.learning.schedule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import LearningConfig, MaxN, ModelConfig, PreTrace, SimConfig, steps_for


@dataclass(frozen=True)
class AdaptivePotentiation:
    n_th: int
    max_n: MaxN
    #: weights change once per window of this many steps
    window_steps: int
    pre_trace: PreTrace
    pre_decay_log: float
    w_min: float
    w_max: float
    #: acts at postsynaptic spikes only
    post_decay = None

    @classmethod
    def build(cls, learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> "AdaptivePotentiation":
        window = sim.steps if learning.update_window_ms is None else steps_for(learning.update_window_ms, sim.dt_ms)
        return cls(n_th=learning.n_th, max_n=learning.max_n, window_steps=min(window, sim.steps),
                   pre_trace=learning.pre_trace,
                   pre_decay_log=-sim.dt_ms / learning.tau_pre_ms, w_min=model.w_min, w_max=model.w_max)

    def potentiation_factor(self, presentation_counts: torch.Tensor, window_counts: torch.Tensor) -> torch.Tensor:
        """k = ceil(maxN / N_th) per replica, from the spike counts [R, N] of the presentation so far
        (window included) or of the window, as ``max_n`` says."""
        counts = presentation_counts if self.max_n is MaxN.presentation else window_counts
        return torch.ceil(counts.amax(1) / self.n_th)

    def largest_factor(self, steps: int) -> int:
        """The largest k a presentation of ``steps`` steps can give (a neuron spikes at most once a step)."""
        return -(-steps // self.n_th)

    def post_update_(self, cols: torch.Tensor, pre_trace: torch.Tensor, eta: float | torch.Tensor) -> None:
        """cols [K, I] of neurons that spiked in the window; pre_trace x_pre [K, I]; eta = k·η_post ([K, 1])."""
        # Δw = k·η_post·x_pre·(w_max − w)
        delta = torch.sub(self.w_max, cols).mul_(pre_trace).mul_(eta)
        cols.add_(delta).clamp_(self.w_min, self.w_max)
