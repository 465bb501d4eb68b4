"""Poisson rate coding of images into input spike events.

A pixel of value p fires with rate r = p/255 · max_rate (Hz); per step of dt ms a Bernoulli
draw with probability r·dt/1000 decides a spike. Random numbers are drawn only for non-zero
pixels (dark pixels can never fire), which makes encoding ~5× cheaper on MNIST, and on a CPU by
``tinysnn.native.mt19937`` (the same numbers, listed without materialising the draws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .native import mt19937


def spike_probability(images: torch.Tensor, max_rate_hz: float, dt_ms: float) -> torch.Tensor:
    """Per-step spike probability of each pixel: p/255 · rate · dt/1000, shape of ``images``."""
    return images.float() * (max_rate_hz / 255.0 * dt_ms / 1000.0)


@dataclass(frozen=True)
class SpikeEvents:
    """Input spikes as a sorted event list: ``time[k]`` fires input ``row[k]`` of stream ``stream[k]``.

    ``row`` indexes the flattened [S·784] input of S streams (replicas in training, images in
    evaluation); events are sorted by time, then stream, then pixel.
    """

    time: torch.Tensor  # int64 [E]
    stream: torch.Tensor  # int64 [E]
    row: torch.Tensor  # int64 [E]
    steps: int
    streams: int

    def bounds(self, start: int, stop: int) -> tuple[int, int]:
        """The index range [lo, hi) of the events of steps [start, stop)."""
        lo, hi = torch.searchsorted(self.time, torch.tensor([start, stop], device=self.time.device)).tolist()
        return lo, hi

    def per_stream(self) -> torch.Tensor:
        """Input spikes of each stream, int64 [S]."""
        return torch.bincount(self.stream, minlength=self.streams)

    def counts_per_step(self) -> list[int]:
        return torch.bincount(self.time, minlength=self.steps).tolist()

    def of_streams(self, keep: list[int], n_inputs: int) -> "SpikeEvents":
        """The events of streams ``keep`` (ascending), renumbered 0 … len(keep) − 1: what ``merge_events``
        gives for those streams' own event lists."""
        renumbered = torch.full((self.streams,), -1, dtype=torch.long, device=self.stream.device)
        renumbered[keep] = torch.arange(len(keep), device=self.stream.device)
        stream = renumbered[self.stream]
        kept = stream >= 0
        stream = stream[kept]
        row = self.row[kept] + (stream - self.stream[kept]) * n_inputs
        return SpikeEvents(time=self.time[kept], stream=stream, row=row, steps=self.steps, streams=len(keep))

    def to_dense(self, n_inputs: int) -> torch.Tensor:
        """bool [T, S, n_inputs] (for tests and reference paths)."""
        dense = torch.zeros(self.steps, self.streams * n_inputs, dtype=torch.bool, device=self.time.device)
        dense[self.time, self.row] = True
        return dense.view(self.steps, self.streams, n_inputs)


def poisson_events(probability: torch.Tensor, steps: int, generator: torch.Generator) -> SpikeEvents:
    """Bernoulli spikes for ``steps`` steps from per-pixel probabilities [S, I] (one generator)."""
    streams, n_inputs = probability.shape
    flat = probability.reshape(-1)
    active = flat.nonzero().squeeze(1)
    if mt19937.applies(flat, [generator]):
        time, _, which = mt19937.bernoulli_events(flat[active], steps, [generator])
    else:
        draws = torch.rand(steps, active.numel(), generator=generator, device=flat.device)
        time, which = (draws < flat[active]).nonzero(as_tuple=True)
    row = active[which]
    return SpikeEvents(time=time, stream=row // n_inputs, row=row, steps=steps, streams=streams)


def stream_events(probability: torch.Tensor, steps: int, generators: Sequence[torch.Generator]) -> SpikeEvents:
    """Bernoulli spikes of S streams [S, I], stream s drawing from ``generators[s]``: ``merge_events`` of
    each stream's own ``poisson_events``, bit for bit.

    Streams of one image (a training image shown to every replica) list their spikes natively
    (``tinysnn.native.mt19937``) or, on torch's path, draw into one tensor and are compared and listed
    at once: per stream, torch's list and the merge's sort cost more than its draws.
    """
    streams, n_inputs = probability.shape
    if not bool((probability == probability[0]).all()):
        parts = [poisson_events(probability[s:s + 1], steps, g) for s, g in enumerate(generators)]
        return merge_events(parts, list(range(streams)), streams, n_inputs, steps, probability.device)
    active = probability[0].nonzero().squeeze(1)
    if mt19937.applies(probability, generators):
        time, stream, which = mt19937.bernoulli_events(probability[0, active], steps, generators)
        return SpikeEvents(time=time, stream=stream, row=stream * n_inputs + active[which], steps=steps,
                           streams=streams)
    draws = torch.empty(streams, steps, active.numel(), device=probability.device)
    for s, generator in enumerate(generators):  # what each stream's poisson_events draws
        torch.rand(steps, active.numel(), generator=generator, device=probability.device, out=draws[s])
    # listed by (time, stream, pixel): the merge's stable sort of each stream's (time, pixel) list
    time, stream, which = (draws < probability[0, active]).permute(1, 0, 2).nonzero(as_tuple=True)
    return SpikeEvents(time=time, stream=stream, row=stream * n_inputs + active[which], steps=steps, streams=streams)


def merge_events(parts: list[SpikeEvents], stream_ids: list[int], streams: int, n_inputs: int, steps: int,
                 device: torch.device) -> SpikeEvents:
    """Combine single-stream event lists (``parts[k]`` becomes stream ``stream_ids[k]``), time-sorted."""
    if not parts:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return SpikeEvents(empty, empty, empty, steps, streams)
    time = torch.cat([p.time for p in parts])
    stream = torch.cat([torch.full_like(p.time, s) for p, s in zip(parts, stream_ids)])
    row = torch.cat([p.row + s * n_inputs for p, s in zip(parts, stream_ids)])
    if len(parts) > 1:
        # a stable sort by time keeps stream order, then pixel order, within a step
        order = torch.sort(time, stable=True).indices
        time, stream, row = time[order], stream[order], row[order]
    return SpikeEvents(time=time, stream=stream, row=row, steps=steps, streams=streams)
