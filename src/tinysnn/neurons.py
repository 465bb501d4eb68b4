"""Leaky integrate-and-fire neurons, simulated in potentials relative to rest.

With u = V − V_rest, the current-based LIF of BindsNET's DiehlAndCookNodes is, per step dt:

    u ← α·u + I        unless refractory (input ignored), α = exp(−dt/τ_m)
    spike when u ≥ u_th (+ θ for excitatory neurons), then u ← u_reset, refractory for t_ref

Refractoriness is kept as the step of each neuron's last spike: a neuron that spiked at
step s ignores input on steps s+1 … s+refrac_steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import LIFConfig, steps_for

#: "never spiked" marker for last-spike steps (far enough back to clear any refractory period)
NEVER = -1.0e9


@dataclass(frozen=True)
class LIFConstants:
    decay: float  # α = exp(−dt/τ_m)
    log_decay: float  # ln α = −dt/τ_m, for exact multi-step decay
    thresh: float  # u_th = V_th − V_rest (mV)
    reset: float  # u_reset = V_reset − V_rest (mV)
    refrac_steps: int

    @classmethod
    def from_config(cls, cfg: LIFConfig, dt_ms: float) -> "LIFConstants":
        return cls(
            decay=math.exp(-dt_ms / cfg.tau_mem_ms),
            log_decay=-dt_ms / cfg.tau_mem_ms,
            thresh=cfg.thresh_mv - cfg.rest_mv,
            reset=cfg.reset_mv - cfg.rest_mv,
            refrac_steps=steps_for(cfg.refrac_ms, dt_ms),
        )


def refractory(last_spike: torch.Tensor, step: int, c: LIFConstants) -> torch.Tensor:
    """bool mask of neurons still refractory at ``step``."""
    return last_spike >= step - c.refrac_steps


def integrate_(u: torch.Tensor, current: torch.Tensor, last_spike: torch.Tensor, step: int, c: LIFConstants,
               may_be_refractory: bool = True) -> None:
    """u ← α·u + I in place, I ignored while refractory (``current`` is consumed).

    ``may_be_refractory=False`` skips the refractory mask when the caller knows no neuron
    spiked within the last refrac_steps steps. The caller stores u (a fixed-point device
    rounds it), then compares it with the threshold and resets the neurons that spiked.
    """
    if may_be_refractory:
        current.masked_fill_(refractory(last_spike, step, c), 0.0)
    u.mul_(c.decay).add_(current)


def reset_(u: torch.Tensor, last_spike: torch.Tensor, spikes: torch.Tensor, step: int, c: LIFConstants) -> None:
    """u ← u_reset where the neurons spiked, and remember the step."""
    u.masked_fill_(spikes, c.reset)
    last_spike.masked_fill_(spikes, float(step))
