"""The simulator's side of a deployment check: the same images through ``tinysnn.sim`` with the
run's quantizer, either with the device encoder (``sim.encoding=device``: the C runtime draws the
same spikes itself) or with the default Poisson draws recorded into a spikes file for the C CLI's
``-f`` mode. Predictions and spike counts must then be identical."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import Encoding
from ..device_encoding import DeviceEncoder
from ..encoding import SpikeEvents
from ..evaluation import Assignment, predict_all_activity
from ..quant import FixedPointQuantizer, FP32Quantizer
from ..results import RecordError, atomic_write
from ..runtime import make_generator
from ..sim import InferenceSimulator, collect_counts
from .build import CliRun
from .model import DeployModel


@dataclass(frozen=True)
class Simulated:
    predictions: np.ndarray  # [n]
    counts: np.ndarray  # [n, N]


class _Recording(InferenceSimulator):
    """An inference simulator that keeps every presentation's input spikes per image and attempt."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.attempts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._ids: torch.Tensor | None = None

    def present(self, images: torch.Tensor, max_rate_hz: float, generator: torch.Generator,
                ids: torch.Tensor | None = None, attempt: int = 0) -> torch.Tensor:
        self._ids = ids
        return super().present(images, max_rate_hz, generator, ids, attempt)

    def run(self, events: SpikeEvents) -> torch.Tensor:
        assert self._ids is not None
        stream = events.stream.cpu().numpy()
        time, pixel = events.time.cpu().numpy(), events.row.cpu().numpy() - stream * self.weights.shape[0]
        for s, image in enumerate(self._ids.tolist()):
            mine = stream == s
            self.attempts.setdefault(image, []).append((time[mine], pixel[mine]))
        return super().run(events)


def simulate(model: DeployModel, images: torch.Tensor, encoding: Encoding, spikes_file: Path | None = None,
             batch: int = 1000) -> Simulated:
    """Counts and predictions of ``images`` [n, I] (first images of the test set, from index 0)."""
    sim = dataclasses.replace(model.config.sim, encoding=encoding)
    quantizer = (FP32Quantizer() if model.fp32
                 else FixedPointQuantizer([model.spec], [make_generator(0, torch.device("cpu"))]))
    encoder = DeviceEncoder.build(sim, model.seed_base) if encoding is Encoding.device else None
    # only a spikes file needs the input spikes kept: recording them costs memory per image
    kind = _Recording if spikes_file is not None else InferenceSimulator
    simulator = kind(model.weights, model.theta, model.network, sim, quantizer, encoder=encoder)
    counts, _ = collect_counts(simulator, images, sim, batch, make_generator(model.seed_base, torch.device("cpu")))
    assignment = Assignment(labels=model.assignments, proportions=torch.zeros(0), class_rates=torch.zeros(0))
    predictions = predict_all_activity(counts, assignment)
    if spikes_file is not None:
        assert isinstance(simulator, _Recording)
        write_spikes(spikes_file, [simulator.attempts[n] for n in range(images.shape[0])])
    return Simulated(predictions.numpy().astype(np.int64), counts.numpy().astype(np.int64))


def write_spikes(path: Path, images: list[list[tuple[np.ndarray, np.ndarray]]]) -> Path:
    """The CLI's spikes file: "TSPK", u32 images; per image u32 attempts; per attempt u32 n and n × (u16 step,
    u16 pixel) sorted by step (little-endian)."""
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            f.write(b"TSPK" + struct.pack("<I", len(images)))
            for attempts in images:
                f.write(struct.pack("<I", len(attempts)))
                for time, pixel in attempts:
                    order = np.argsort(time, kind="stable")
                    pairs = np.stack([time[order], pixel[order]], axis=1).astype("<u2")
                    f.write(struct.pack("<I", len(order)) + pairs.tobytes())

    return atomic_write(path, write)


def compare(simulated: Simulated, device: CliRun, what: str) -> None:
    """RecordError naming the first image whose prediction or spike counts differ."""
    n = simulated.predictions.shape[0]
    if device.predictions.shape[0] != n:
        raise RecordError(f"{what}: the C runtime classified {device.predictions.shape[0]} images, the simulator {n}")
    for image in range(n):
        if device.predictions[image] != simulated.predictions[image]:
            raise RecordError(f"{what}: image {image} is class {device.predictions[image]} in C but "
                              f"{simulated.predictions[image]} in the simulator")
        if not np.array_equal(device.counts[image], simulated.counts[image]):
            diff = np.flatnonzero(device.counts[image] != simulated.counts[image])
            raise RecordError(f"{what}: image {image}: spike counts differ at {diff.size} neurons "
                              f"(first: neuron {diff[0]}, C {device.counts[image][diff[0]]}, "
                              f"simulator {simulated.counts[image][diff[0]]})")
