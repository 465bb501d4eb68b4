"""The presentation protocol around the simulators: retries, training over a dataset, and
collecting spike counts for evaluation.

D&C's rule: a presentation that makes fewer than ``min_spikes`` excitatory spikes is repeated
with the max input rate raised by ``retry_rate_step_hz``, at most ``max_retries`` times, in
training and in evaluation. Learning stays on during failed training presentations, and every
training presentation is followed by θ decay and weight normalisation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ..config import SimConfig
from ..evaluation import Assignment, assign_labels, predict_all_activity
from ..learning import EtaSchedule
from .inference import InferenceSimulator
from .training import TrainingSimulator

#: presents all streams (None) or only some (a retry): (streams, max rate Hz) → spike counts [S, N]
Present = Callable[[torch.Tensor | None, float], torch.Tensor]


def present_with_retries(present: Present, sim: SimConfig) -> tuple[torch.Tensor, int]:
    """Present every stream, then re-present those with fewer than ``min_spikes`` spikes at a rate
    raised by ``retry_rate_step_hz``, at most ``max_retries`` times; returns the final counts and
    how many rounds ran."""
    rate = sim.max_rate_hz
    counts = present(None, rate)
    rounds = 1
    for _ in range(sim.max_retries):
        failed = (counts.sum(1) < sim.min_spikes).nonzero().squeeze(1)
        if failed.numel() == 0:
            break
        rate += sim.retry_rate_step_hz
        counts[failed] = present(failed, rate)
        rounds += 1
    return counts, rounds


def train_image(simulator: TrainingSimulator, images: torch.Tensor, eta: float) -> tuple[torch.Tensor, int]:
    """One training image per replica ([R, I]) with η_post ``eta``; returns final spike counts [R, N]
    and the presentations run. A retry simulates only the replicas that failed."""
    def present(failed: torch.Tensor | None, rate: float) -> torch.Tensor:
        if failed is None:
            counts = simulator.present(images, rate, eta)
            simulator.end_presentation()
            return counts
        replicas = failed.tolist()
        part = simulator.restricted(replicas)
        counts = part.present(images[replicas], rate, eta)
        part.end_presentation()
        simulator.write_back(part, replicas)
        return counts

    return present_with_retries(present, simulator.sim)


@dataclass
class TrainingLog:
    images: int = 0
    presentations: int = 0
    #: excitatory spikes of the counted presentations, per replica [R]
    spikes: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    seconds: float = 0.0
    #: (images seen, running accuracy per replica) at each monitor point
    running_accuracy: list[tuple[int, list[float]]] = field(default_factory=list)
    #: updates per replica and adaptive factor k, [R, k_max + 1] (rules with k only)
    k_counts: torch.Tensor | None = None
    #: the integrator training ran with (``sim.integrator=auto`` resolved); None: nothing trained
    integrator: str | None = None

    def spikes_per_image(self) -> float:
        """Mean over replicas of the spikes per training image."""
        if not self.images or not self.spikes.numel():
            return 0.0
        return float(self.spikes.sum()) / self.spikes.numel() / self.images  # counts: the sum is exact

    def of_replicas(self, replicas: Sequence[int]) -> "TrainingLog":
        """This log restricted to some replicas (presentations and seconds are the whole simulation's)."""
        return TrainingLog(self.images, self.presentations, self.spikes[list(replicas)], self.seconds,
                           [(images, [accuracy[r] for r in replicas]) for images, accuracy in self.running_accuracy],
                           self.k_counts[list(replicas)] if self.k_counts is not None else None, self.integrator)

    def k_distribution(self) -> list[dict[str, int]] | None:
        """Per replica, how many updates used each adaptive factor k (k as a string key)."""
        if self.k_counts is None:
            return None
        return [{str(k): int(n) for k, n in enumerate(row.tolist()) if n} for row in self.k_counts]


class RunningAccuracy:
    """Labels of the last window of training images predict the next window (monitoring only)."""

    def __init__(self, replicas: int, window: int, n_neurons: int, device: torch.device) -> None:
        self.window = window
        self.counts = torch.zeros(window, replicas, n_neurons, device=device)
        self.labels = torch.zeros(window, dtype=torch.long, device=device)
        self.filled = 0
        self.assignments: list[Assignment] | None = None

    def state(self) -> dict[str, Any]:
        """What a resumed training needs: the window so far and the last window's labels."""
        return {"counts": self.counts[:self.filled].clone(), "labels": self.labels[:self.filled].clone(),
                "assignments": None if self.assignments is None else [dataclasses.asdict(a) for a in self.assignments]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of a monitor of the same shape."""
        self.filled = state["counts"].shape[0]
        self.counts[:self.filled] = state["counts"].to(self.counts.device)
        self.labels[:self.filled] = state["labels"].to(self.labels.device)
        self.assignments = (None if state["assignments"] is None else
                            [Assignment(**{k: v.to(self.counts.device) for k, v in a.items()})
                             for a in state["assignments"]])

    def add(self, counts: torch.Tensor, label: torch.Tensor) -> list[float] | None:
        self.counts[self.filled] = counts
        self.labels[self.filled] = label
        self.filled += 1
        if self.filled < self.window:
            return None
        self.filled = 0
        replicas = self.counts.shape[1]
        accuracy = None
        if self.assignments is not None:
            accuracy = [float((predict_all_activity(self.counts[:, r], self.assignments[r]) == self.labels)
                              .float().mean()) for r in range(replicas)]
        self.assignments = [assign_labels(self.counts[:, r], self.labels) for r in range(replicas)]
        return accuracy


@dataclass
class TrainingProgress:
    """A training pass after ``log.images`` images, besides the simulator's own state: its log and
    running-accuracy monitor (what a resumed pass continues from)."""

    log: TrainingLog
    monitor: RunningAccuracy

    def restore(self, log: TrainingLog, monitor: dict[str, Any]) -> None:
        """Continue a pass stopped after ``log.images`` images: its log, and its monitor's ``state()``."""
        self.log = log
        self.monitor.restore(monitor)


def start_training(simulator: TrainingSimulator, monitor_every: int, device: torch.device) -> TrainingProgress:
    """A training pass of ``simulator``'s replicas before its first image."""
    replicas = simulator.params.replicas
    return TrainingProgress(TrainingLog(spikes=torch.zeros(replicas, device=device)),
                            RunningAccuracy(replicas, monitor_every, simulator.network.n_neurons, device))


def train_epochs(simulator: TrainingSimulator, images: torch.Tensor, labels: torch.Tensor, epochs: int,
                 schedule: EtaSchedule, monitor_every: int,
                 on_image: Callable[[TrainingProgress], None] | None = None,
                 progress: TrainingProgress | None = None) -> TrainingLog:
    """Train every replica on ``images`` [n, I] in order, ``epochs`` times (labels only for monitoring).

    ``progress`` (with the simulator restored to the same point) resumes a pass after its
    ``log.images`` images; the result equals the uninterrupted pass's.
    """
    replicas = simulator.params.replicas
    if progress is None:
        progress = start_training(simulator, monitor_every, images.device)
    log, monitor = progress.log, progress.monitor
    earlier_seconds, start = log.seconds, time.perf_counter()
    total = epochs * images.shape[0]
    simulator.plan(total)  # the whole pass's length: a resumed pass chooses as the uninterrupted one did
    log.integrator = simulator.integrator.value
    for position in range(log.images, total):
        index = position % images.shape[0]
        batch = images[index].expand(replicas, -1)
        counts, presentations = train_image(simulator, batch, schedule.at(log.images / total))
        log.images += 1
        log.presentations += presentations
        log.spikes.add_(counts.sum(1))
        accuracy = monitor.add(counts, labels[index])
        if accuracy is not None:
            log.running_accuracy.append((log.images, accuracy))
        log.seconds = earlier_seconds + time.perf_counter() - start
        if on_image is not None:
            on_image(progress)
    log.k_counts = simulator.k_counts_so_far()
    return log


def collect_counts(simulator: InferenceSimulator, images: torch.Tensor, sim: SimConfig, batch: int,
                   generator: torch.Generator,
                   on_batch: Callable[[int], None] | None = None) -> tuple[torch.Tensor, int]:
    """Frozen spike counts [n, N] of ``images`` [n, I], batched, with the retry rule; also presentations run.
    ``on_batch(k)`` is told when each batch of k images is done (progress)."""
    out = []
    presentations = 0
    simulator.plan(images.shape[0])
    for start in range(0, images.shape[0], batch):
        chunk = images[start:start + batch]
        ids = torch.arange(start, start + chunk.shape[0])
        attempt = -1

        def present(failed: torch.Tensor | None, rate: float, chunk: torch.Tensor = chunk,
                    ids: torch.Tensor = ids) -> torch.Tensor:
            nonlocal presentations, attempt
            attempt = 0 if failed is None else attempt + 1
            shown = chunk if failed is None else chunk[failed]
            presentations += shown.shape[0]
            return simulator.present(shown, rate, generator, ids if failed is None else ids[failed.cpu()], attempt)

        out.append(present_with_retries(present, sim)[0])
        if on_batch is not None:
            on_batch(chunk.shape[0])
    return torch.cat(out), presentations
