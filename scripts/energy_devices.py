"""Energy per image of recorded runs on the event-driven and the time-stepped device, and savings.

Prices each run's recorded operation counts (metrics.json → ops) with tinysnn.cost.energy on both
devices, at FP32 and at the widths given by --bits (weights and neuron state alike), and prints the
saving of every run against the first one (the baseline):

    python scripts/energy_devices.py docs/runs/headline/diehl_cook/mnist-pair_stdp \\
        docs/runs/headline/tinysnn/mnist-last_presentation --bits 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysnn.cost.energy import EnergyInputs, energy_per_image
from tinysnn.record import counted_images, read_record

DEVICES = ("event", "timestepped")


def energies(run: Path, bits: int) -> dict[tuple[str, str], float]:
    """µJ per image for (phase, device), phase train or inference, at ``bits``."""
    metrics = read_record(run / "metrics.json")
    ops = metrics["ops"]
    out = {}
    for phase, key in (("train", "train"), ("inference", "test")):
        images = counted_images(metrics, key)
        for device in DEVICES:
            inputs = EnergyInputs(ops[key], images, ops["steps_per_presentation"], ops["n_inputs"], ops["n_neurons"],
                                  metrics["topology"], bits, bits, phase == "train", device)
            out[phase, device] = energy_per_image(inputs)["total"] / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; the first is the baseline")
    parser.add_argument("--bits", type=int, nargs="*", default=[], help="quantized widths to price besides FP32")
    args = parser.parse_args()
    base = energies(args.runs[0], 32)
    print("| run | bits | phase | event µJ/img | saving | time-stepped µJ/img | saving |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for run in args.runs:
        for bits in [32, *args.bits]:
            e = energies(run, bits)
            for phase in ("train", "inference"):
                cells = [f"{e[phase, d]:.1f} | {base[phase, d] / e[phase, d]:.2f}×" for d in DEVICES]
                print(f"| {run} | {bits} | {phase} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
