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
