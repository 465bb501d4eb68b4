"""The presentation protocol around the simulators: retries, training over a dataset, and
collecting spike counts for evaluation.

D&C's rule: a presentation that makes fewer than ``min_spikes`` excitatory spikes is repeated
with the max input rate raised by ``retry_rate_step_hz``, at most ``max_retries`` times, in
training and in evaluation. Learning stays on during failed training presentations, and every
training presentation is followed by θ decay and weight normalisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .config import ModelConfig, SimConfig
from .evaluation import assign_labels, predict_all_activity
from .network import NetworkConstants, NetworkParams, end_presentation_
from .simulator import InferenceSimulator, TrainingSimulator


def present_with_retries(simulator: TrainingSimulator, params: NetworkParams, images: torch.Tensor,
                         constants: NetworkConstants, model: ModelConfig, sim: SimConfig) -> tuple[torch.Tensor, int]:
    """One training image per replica ([R, I]); returns final spike counts [R, N] and presentations run."""
    replicas = list(range(params.replicas))
    rate = sim.max_rate_hz
    for attempt in range(sim.max_retries + 1):
        if len(replicas) == params.replicas:
            counts = simulator.present(images, rate)
            end_presentation_(params, sim.steps, constants, model, simulator.quant)
        else:  # a retry simulates only the replicas that failed
            part = simulator.restricted(replicas)
            counts[replicas] = part.present(images[replicas], rate)
            end_presentation_(part.params, sim.steps, constants, model, part.quant)
            simulator.write_back(part, replicas)
        simulator.ops.normalizations += len(replicas)
        totals = counts.sum(1).tolist()
        replicas = [r for r in replicas if totals[r] < sim.min_spikes]
        if not replicas:
            return counts, attempt + 1
        rate += sim.retry_rate_step_hz
    return counts, sim.max_retries + 1


@dataclass
class TrainingLog:
    images: int = 0
    presentations: int = 0
    #: excitatory spikes of the counted presentations, per replica [R]
    spikes: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    seconds: float = 0.0
    #: (images seen, running accuracy per replica) at each monitor point
    running_accuracy: list[tuple[int, list[float]]] = field(default_factory=list)

    def spikes_per_image(self) -> float:
        """Mean over replicas of the spikes per training image."""
        if not self.images or not self.spikes.numel():
            return 0.0
        return float(self.spikes.sum()) / self.spikes.numel() / self.images  # counts: the sum is exact

    def of_replicas(self, replicas: Sequence[int]) -> "TrainingLog":
        """This log restricted to some replicas (presentations and seconds are the whole simulation's)."""
        return TrainingLog(self.images, self.presentations, self.spikes[list(replicas)], self.seconds,
                           [(images, [accuracy[r] for r in replicas]) for images, accuracy in self.running_accuracy])


class RunningAccuracy:
    """Labels of the last window of training images predict the next window (monitoring only)."""

    def __init__(self, replicas: int, window: int, n_neurons: int, device: torch.device) -> None:
        self.window = window
        self.counts = torch.zeros(window, replicas, n_neurons, device=device)
        self.labels = torch.zeros(window, dtype=torch.long, device=device)
        self.filled = 0
        self.assignments: list | None = None

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


def train_epochs(simulator: TrainingSimulator, params: NetworkParams, images: torch.Tensor, labels: torch.Tensor,
                 epochs: int, constants: NetworkConstants, model: ModelConfig, sim: SimConfig, monitor_every: int,
                 on_image: Callable[[TrainingLog], None] | None = None) -> TrainingLog:
    """Train every replica on ``images`` [n, I] in order, ``epochs`` times (labels only for monitoring)."""
    log = TrainingLog(spikes=torch.zeros(params.replicas, device=images.device))
    monitor = RunningAccuracy(params.replicas, monitor_every, constants.n_neurons, images.device)
    start = time.perf_counter()
    total = epochs * images.shape[0]
    for _ in range(epochs):
        for index in range(images.shape[0]):
            simulator.set_training_progress(log.images / total)
            batch = images[index].expand(params.replicas, -1)
            counts, presentations = present_with_retries(simulator, params, batch, constants, model, sim)
            log.images += 1
            log.presentations += presentations
            log.spikes.add_(counts.sum(1))
            accuracy = monitor.add(counts, labels[index])
            if accuracy is not None:
                log.running_accuracy.append((log.images, accuracy))
            if on_image is not None:
                on_image(log)
    log.seconds = time.perf_counter() - start
    return log


def collect_counts(simulator: InferenceSimulator, images: torch.Tensor, sim: SimConfig, batch: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Frozen spike counts [n, N] of ``images`` [n, I], batched, with the retry rule; also presentations run."""
    out = []
    presentations = 0
    for start in range(0, images.shape[0], batch):
        chunk = images[start:start + batch]
        counts = simulator.present(chunk, sim.max_rate_hz, generator)
        presentations += chunk.shape[0]
        rate = sim.max_rate_hz
        for _ in range(sim.max_retries):
            failed = (counts.sum(1) < sim.min_spikes).nonzero().squeeze(1)
            if failed.numel() == 0:
                break
            rate += sim.retry_rate_step_hz
            counts[failed] = simulator.present(chunk[failed], rate, generator)
            presentations += failed.numel()
        out.append(counts)
    return torch.cat(out), presentations
