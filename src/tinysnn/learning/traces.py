"""Spike traces computed from event lists: x(t) = exp(−(t − t_last)·dt/τ), 0 before any spike.

Equivalent to the per-step "decay, then set to 1 at a spike" trace, but evaluated only when a
rule needs it.
"""

from __future__ import annotations

import torch


def trace_at(step: int, times: torch.Tensor, rows: torch.Tensor, size: int, decay_log: float) -> torch.Tensor:
    """Traces of ``size`` inputs at ``step`` from the events (times, rows) up to that step.

    x = exp((t_last − t)·dt/τ) with t_last each input's latest spike; ``decay_log`` = −dt/τ.
    """
    last = torch.full((size,), float("-inf"), device=times.device)
    last.scatter_reduce_(0, rows, times.float(), reduce="amax")
    return last.sub_(step).mul_(-decay_log).exp_()


class LatestSpikes:
    """Each input's latest spike so far in a presentation, for traces at steps that only move forward.

    ``trace_at`` rescans a presentation's events from its start; a window's update would so cost the
    whole presentation's events again at every window with a spike. This keeps the maximum over the
    events already passed and adds only the newer ones: the same maxima (amax of the same values,
    in any order), so the same traces.
    """

    def __init__(self, size: int, device: torch.device) -> None:
        self.last = torch.full((size,), float("-inf"), device=device)
        self.passed = 0  # events[:passed] are in self.last

    def through(self, times: torch.Tensor, rows: torch.Tensor, end: int) -> torch.Tensor:
        """Latest spikes [size] over events[:end] (``end`` never decreasing); do not modify it."""
        if end > self.passed:
            self.last.scatter_reduce_(0, rows[self.passed:end], times[self.passed:end].float(), reduce="amax")
            self.passed = end
        return self.last

    def trace_at(self, step: int, times: torch.Tensor, rows: torch.Tensor, end: int, decay_log: float) -> torch.Tensor:
        """``trace_at(step, times[:end], rows[:end], size, decay_log)``, from the events passed and the newer
        ones up to ``end`` (which are not passed: a later step's window may still need a nearer one)."""
        last = self.last.clone()
        last.scatter_reduce_(0, rows[self.passed:end], times[self.passed:end].float(), reduce="amax")
        return last.sub_(step).mul_(-decay_log).exp_()


def mean_trace(start: int, stop: int, times: torch.Tensor, rows: torch.Tensor, size: int, decay_log: float,
               initial_last: torch.Tensor) -> torch.Tensor:
    """Traces of ``size`` inputs averaged over steps [start, stop).

    ``times``/``rows`` are the events inside the window; ``initial_last`` [size] holds each input's
    latest spike before ``start`` (−inf if none).
    """
    steps = stop - start
    spike_step = torch.full((steps, size), float("-inf"), device=times.device)
    spike_step[times - start, rows] = times.float()
    spike_step[0] = torch.maximum(spike_step[0], initial_last)
    last = spike_step.cummax(0).values
    now = torch.arange(start, stop, device=times.device, dtype=torch.float32)[:, None]
    traces = last.sub_(now).mul_(-decay_log).exp_()
    # a running sum adds each input's steps in time order whatever the tensor's width, so a
    # replica's result never depends on how many replicas are simulated beside it
    return traces.cumsum(0)[-1] / steps
