#!/usr/bin/env python
"""Simulator speed and memory on real MNIST: prints a markdown table.

For each network — the Diehl & Cook baseline (inhibitory population, pair STDP), tinySNN
(direct inhibition, adaptive potentiation in 25 ms windows) and tinySNN with x_pre at each
neuron's spike (training only; its inference is tinySNN's) — rows give training ms/image (R=1, B=1)
and per replica at R=8, and inference ms/image at B = 1, 64, 256, 1000. Each row runs in its
own process so its peak RSS is its own. Times are medians over repeated chunks after a warm-up.

    python scripts/bench_sim.py [--neurons 400] [--steps 250] [--networks baseline tinysnn tinysnn_spike]
                                [--only train|infer]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from tinysnn.config import LearningConfig, ModelConfig, PreTrace, Rule, SimConfig, Topology
from tinysnn.data import load_dataset
from tinysnn.data.datasets import default_data_root
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, init_params
from tinysnn.protocol import collect_counts, present_with_retries
from tinysnn.runtime import make_generator, replica_generators
from tinysnn.simulator import InferenceSimulator, make_training_simulator


#: the learning settings of conf/learning/*.yaml (the adaptive rule's 25 ms windows included)
_ADAPTIVE = LearningConfig(rule=Rule.adaptive, nu_post=0.01, n_th=5, update_window_ms=25.0)
NETWORKS = {
    "baseline": (Topology.diehl_cook, LearningConfig(rule=Rule.pair_stdp)),
    "tinysnn": (Topology.tinysnn, _ADAPTIVE),
    # conf/experiment/tinysnn_fashion_mnist.yaml: x_pre at each neuron's spike
    "tinysnn_spike": (Topology.tinysnn, dataclasses.replace(_ADAPTIVE, pre_trace=PreTrace.spike)),
}


def _setup(args: argparse.Namespace, replicas: int):
    topology, _ = NETWORKS[args.network]
    model = ModelConfig(topology=topology, n_neurons=args.neurons)
    sim = SimConfig(presentation_ms=float(args.steps))
    constants = NetworkConstants.build(model, sim)
    device = torch.device("cpu")
    generators = replica_generators(0, replicas, device)
    params = init_params(model, generators, device)
    images = load_dataset("mnist", "train", default_data_root()).images.reshape(-1, 784)
    return model, sim, constants, generators, params, images


def bench_training(args: argparse.Namespace, replicas: int) -> dict:
    torch.set_num_threads(1)
    model, sim, constants, generators, params, images = _setup(args, replicas)
    rule = build_rule(NETWORKS[args.network][1], model, sim)
    simulator = make_training_simulator(params, constants, rule, model, sim, generators)
    chunk = max(10, args.train_images // replicas)
    times, index = [], 0
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        for _ in range(chunk):
            present_with_retries(simulator, params, images[index].expand(replicas, -1), constants, model, sim)
            index += 1
        if repeat:  # the first chunk warms up
            times.append((time.perf_counter() - start) / chunk / replicas)
    return {"ms": 1000 * statistics.median(times)}


def bench_inference(args: argparse.Namespace, batch: int) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    model, sim, constants, _, params, images = _setup(args, 1)
    simulator = InferenceSimulator(params.weights[0], params.theta[0], constants, model, sim)
    generator = make_generator(1, torch.device("cpu"))
    n = max(batch, args.infer_images // batch * batch)
    times = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        collect_counts(simulator, images[:n], sim, batch, generator)
        if repeat:
            times.append((time.perf_counter() - start) / n)
    return {"ms": 1000 * statistics.median(times)}


def run_case(case: str, value: int, args: argparse.Namespace) -> dict:
    result = bench_training(args, value) if case == "train" else bench_inference(args, value)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=400)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--only", choices=["train", "infer"], help="run only the training or inference rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-images", type=int, default=100, help="images per timed training chunk")
    parser.add_argument("--infer-images", type=int, default=1000, help="images per timed inference repeat")
    parser.add_argument("--network", default="baseline", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--value", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.value, args)))
        return

    cases = [("train", 1, "training, R=1, B=1", "ms/image"), ("train", 8, "training, R=8", "ms/image/replica")]
    cases += [("infer", b, f"inference, B={b}", "ms/image") for b in (1, 64, 256, 1000)]
    print(f"tinysnn simulator bench: {args.neurons} excitatory neurons, {args.steps} steps of 1 ms, real MNIST")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"training 1 thread, inference {os.cpu_count()} threads; medians of {args.repeats} repeats\n")
    print("| network | case | time | unit | peak RSS (MiB) |\n|---|---|---:|---|---:|")
    passthrough = [f"--neurons={args.neurons}", f"--steps={args.steps}", f"--repeats={args.repeats}",
                   f"--train-images={args.train_images}", f"--infer-images={args.infer_images}"]
    for network in args.networks:
        for case, value, label, unit in cases:
            # the spike-trace variant differs from tinysnn in training only
            if (args.only and case != args.only) or (network == "tinysnn_spike" and case == "infer"):
                continue
            out = subprocess.run([sys.executable, __file__, f"--network={network}", f"--case={case}",
                                  f"--value={value}", *passthrough], check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            print(f"| {network} | {label} | {result['ms']:.2f} | {unit} | {result['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
