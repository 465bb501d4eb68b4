#!/usr/bin/env python
"""Encoding one training image for R replicas: each replica's own spike list merged (``merge_events`` of
``poisson_events``, what training did before) against ``stream_events`` (one comparison for all),
alternating, on real MNIST images and the default presentation, one thread. Prints ms per image for each round.

    python scripts/bench_encoding.py [--replicas 36] [--images 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from tinysnn.config import SimConfig
from tinysnn.data import default_data_root, load_dataset
from tinysnn.encoding import merge_events, poisson_events, spike_probability, stream_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=36)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sim = SimConfig()  # the default presentation: 350 steps of 1 ms, 63.75 Hz
    images = load_dataset("mnist", "train", default_data_root()).images[:args.images].reshape(args.images, -1)
    generators = [torch.Generator().manual_seed(r) for r in range(args.replicas)]
    streams = list(range(args.replicas))

    def merged(p: torch.Tensor) -> None:
        parts = [poisson_events(p[r:r + 1], sim.steps, generators[r]) for r in streams]
        merge_events(parts, streams, args.replicas, p.shape[1], sim.steps, p.device)

    def at_once(p: torch.Tensor) -> None:
        stream_events(p, sim.steps, generators)

    print("| round | merged lists (ms/image) | stream_events (ms/image) |\n|---:|---:|---:|")
    for round_ in range(1, args.rounds + 1):
        times = []
        for encode in (merged, at_once):
            start = time.perf_counter()
            for image in images:
                encode(spike_probability(image.expand(args.replicas, -1), sim.max_rate_hz, sim.dt_ms))
            times.append((time.perf_counter() - start) / args.images * 1000)
        print(f"| {round_} | {times[0]:.1f} | {times[1]:.1f} |")


if __name__ == "__main__":
    main()
