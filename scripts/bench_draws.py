#!/usr/bin/env python
"""Encoding with torch's draws against the C draws (``tinysnn.native.mt19937``: the same events),
alternating, on real MNIST images and the default presentation, one thread: a training image for R
replicas (``stream_events``) and an evaluation batch (``poisson_events``). Prints ms per image per round.

    python scripts/bench_draws.py [--replicas 36] [--batch 100] [--images 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Callable

import torch

from tinysnn.config import SimConfig
from tinysnn.data import default_data_root, load_dataset
from tinysnn.encoding import poisson_events, spike_probability, stream_events
from tinysnn.native import mt19937


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=36)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not mt19937.applies(torch.zeros(1), [torch.Generator()]):
        print("bench_draws: the C draws do not run here (no C compiler?), torch's path runs: nothing to compare")
        return
    torch.set_num_threads(1)
    sim = SimConfig()  # the default presentation: 350 steps of 1 ms, 63.75 Hz
    images = load_dataset("mnist", "train", default_data_root()).images[:args.images].reshape(args.images, -1)
    generators = [torch.Generator().manual_seed(r) for r in range(args.replicas)]

    def training() -> None:
        for image in images:
            stream_events(spike_probability(image.expand(args.replicas, -1), sim.max_rate_hz, sim.dt_ms), sim.steps,
                          generators)

    def evaluation() -> None:
        for start in range(0, args.images, args.batch):
            poisson_events(spike_probability(images[start:start + args.batch], sim.max_rate_hz, sim.dt_ms), sim.steps,
                           generators[0])

    weights_u = torch.empty(784, 400)

    def rounding() -> None:
        for _ in range(args.images):
            mt19937.rand_(weights_u, generators[0])

    def ms_each(draw: Callable[[], None], torch_draws: bool) -> float:
        with mt19937.switched_off() if torch_draws else contextlib.nullcontext():
            start = time.perf_counter()
            draw()
            return (time.perf_counter() - start) / args.images * 1000

    print(f"| round | training image, {args.replicas} replicas: torch | C | evaluation image, batch {args.batch}: "
          "torch | C | U for [784, 400] weights: torch | C |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for round_ in range(1, args.rounds + 1):
        row = [ms_each(draw, torch_draws) for draw in (training, evaluation, rounding) for torch_draws in (True, False)]
        print(f"| {round_} | " + " | ".join(f"{ms:.2f}" for ms in row) + " |")


if __name__ == "__main__":
    main()
