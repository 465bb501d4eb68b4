"""Lateral inhibition between excitatory neurons: the two architectures the paper compares.

Both act on excitatory spikes of step t and return the inhibitory current they deliver at a
later step. Shapes are [S, N] for S independent streams (replicas or images).

* ``InhibitoryPopulation`` (Diehl & Cook): E→I one-to-one (w_EI), I→E all-but-self (w_IE).
  An excitatory spike at t reaches its inhibitory partner at t+1; an inhibitory spike at t+1
  inhibits every other excitatory neuron at t+2.
* ``DirectInhibition`` (tinySNN): no inhibitory neurons; an excitatory spike at t lowers every
  other excitatory neuron by w_inh at t + delay (default 2, the same timing as E→I→E).
"""

from __future__ import annotations

import torch

from .neurons import NEVER, LIFConstants


def _all_but_self(spikes: torch.Tensor, weight: float) -> torch.Tensor:
    """−w · (Σ_k s_k − s_j): inhibition of every neuron j by all other spiking neurons."""
    total = spikes.sum(-1, keepdim=True, dtype=torch.float32)
    return (spikes.float() - total).mul_(weight)


class InhibitoryPopulation:
    """N inhibitory LIF neurons, simulated event-driven.

    An inhibitory neuron receives input only when its excitatory partner spikes, so between
    inputs its potential decays in closed form: u(t) = u(t₀)·exp((t − t₀)·ln α) from the last
    step t₀ it changed. This is exact, costs nothing on quiet steps, and gives every neuron
    the same arithmetic whatever the other streams do.
    """

    def __init__(self, shape: tuple[int, ...], c: LIFConstants, w_exc_inh: float, w_inh_exc: float,
                 device: torch.device) -> None:
        self.c, self.w_exc_inh, self.w_inh_exc = c, w_exc_inh, w_inh_exc
        self.u_anchor = torch.zeros(shape, device=device)
        self.step_anchor = torch.zeros(shape, device=device)
        self.last_spike = torch.full(shape, NEVER, device=device)
        self._arrivals: dict[int, torch.Tensor] = {}
        self._scheduled: dict[int, torch.Tensor] = {}
        #: inhibitory spikes of each stream since the last reset (op counting), int64 [S]
        self.spike_counts = torch.zeros(shape[:-1], dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.spike_counts.zero_()
        self.u_anchor.zero_()
        self.step_anchor.zero_()
        self.last_spike.fill_(NEVER)
        self._arrivals.clear()
        self._scheduled.clear()

    def exc_spiked(self, step: int, spikes: torch.Tensor) -> None:
        self._arrivals[step + 1] = spikes

    def current(self, step: int) -> torch.Tensor | None:
        arrivals = self._arrivals.pop(step, None)
        if arrivals is not None:
            self._update(step, arrivals)
        return self._scheduled.pop(step, None)

    def _update(self, step: int, arrivals: torch.Tensor) -> None:
        c = self.c
        receiving = arrivals & (self.last_spike < step - c.refrac_steps)
        # u(t) = u(t₀)·α^(t − t₀), then + w_EI where the partner spiked
        elapsed = torch.sub(step, self.step_anchor).mul_(c.log_decay).exp_()
        u = elapsed.mul_(self.u_anchor).add_(receiving.float(), alpha=self.w_exc_inh)
        spikes = receiving & (u >= c.thresh)
        u.masked_fill_(spikes, c.reset)
        self.u_anchor = torch.where(receiving, u, self.u_anchor)
        self.step_anchor.masked_fill_(receiving, float(step))
        self.last_spike.masked_fill_(spikes, float(step))
        if bool(spikes.any()):
            self.spike_counts += spikes.sum(-1)
            self._scheduled[step + 1] = _all_but_self(spikes, self.w_inh_exc)


class DirectInhibition:
    """Each excitatory spike directly inhibits all other excitatory neurons after ``delay`` steps."""

    def __init__(self, weight: float, delay: int) -> None:
        self.weight, self.delay = weight, delay
        self._scheduled: dict[int, torch.Tensor] = {}
        self.spike_counts: torch.Tensor | None = None  # no inhibitory neurons

    def reset(self) -> None:
        self._scheduled.clear()

    def exc_spiked(self, step: int, spikes: torch.Tensor) -> None:
        self._scheduled[step + self.delay] = _all_but_self(spikes, self.weight)

    def current(self, step: int) -> torch.Tensor | None:
        return self._scheduled.pop(step, None)

    def scheduled(self, start: int, stop: int) -> list[tuple[int, torch.Tensor]]:
        """The inhibition arriving at steps [start, stop), without consuming it."""
        return [(step, current) for step, current in self._scheduled.items() if start <= step < stop]

    def discard_before(self, step: int) -> None:
        """Forget inhibition that arrived before ``step`` (delivered by a closed-form stretch)."""
        for arrival in [s for s in self._scheduled if s < step]:
            del self._scheduled[arrival]
