#!/usr/bin/env python
"""Simulator speed and memory on real MNIST: prints markdown tables, on CPU and on CUDA when present.

For each network — the Diehl & Cook baseline (inhibitory population, pair STDP), tinySNN
(direct inhibition, adaptive potentiation in 25 ms windows), tinySNN with the compiled
integrator, two training-only variants (their inference is tinySNN's): the closed-form
integrator and x_pre at each neuron's spike, tinySNN on an 8-bit qWN device (``--rounding``)
with the step path and the compiled kernel, and on an 8-bit qW device compiled — rows give
training ms/image at R=1 (B=1) and per replica at R = 4, 16, 32 (R = 16, 32 also with every
core), and inference ms/image at B = 1, 64, 256, 1000; then one full MNIST epoch of tinySNN
(R=1), extrapolated from a measured 2,000-image run, and for the compiled networks the seconds
their kernels take to build from an empty inductor cache (what ``sim.integrator=auto`` weighs
against the time they save). Each row runs in its own process so its peak memory (RSS; CUDA:
peak allocated) is its own. Times are medians over repeated chunks after a warm-up.

    python scripts/bench_sim.py [--neurons 400] [--steps 250] [--networks baseline tinysnn tinysnn_spike]
                                [--only train infer epoch build] [--devices cpu cuda] [--replicas 1 4 16 32]
                                [--wide-replicas 16 32] [--batches 1 64 256 1000] [--infer-threads 2]
                                [--rounding stochastic]
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
import tempfile
import time

import torch

from tinysnn.config import Integrator, LearningConfig, ModelConfig, PreTrace, Rule, SimConfig, Topology
from tinysnn.data import load_dataset
from tinysnn.data.datasets import default_data_root
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, init_params
from tinysnn.quant import FixedPoint, FixedPointQuantizer, FP32Quantizer, Quantizer, QuantSpec, Rounding
from tinysnn.runtime import ROUNDING_SEED_OFFSET, make_generator, replica_generators
from tinysnn.sim import InferenceSimulator, collect_counts, make_training_simulator, train_image

#: the learning settings of conf/learning/*.yaml (the adaptive rule's 25 ms windows included)
_ADAPTIVE = LearningConfig(rule=Rule.adaptive, nu_post=0.01, n_th=5, update_window_ms=25.0)
NETWORKS = {
    "baseline": (Topology.diehl_cook, LearningConfig(rule=Rule.pair_stdp), Integrator.step),
    "tinysnn": (Topology.tinysnn, _ADAPTIVE, Integrator.step),
    # the same network with sim.integrator=closed_form (one small matmul per spike-free stretch)
    "tinysnn_closed_form": (Topology.tinysnn, _ADAPTIVE, Integrator.closed_form),
    # and with sim.integrator=compiled (one fused torch.compile kernel per window, inference too)
    "tinysnn_compiled": (Topology.tinysnn, _ADAPTIVE, Integrator.compiled),
    # conf/experiment/tinysnn_fashion_mnist.yaml: x_pre at each neuron's spike
    "tinysnn_spike": (Topology.tinysnn, dataclasses.replace(_ADAPTIVE, pre_trace=PreTrace.spike), Integrator.step),
    # tinySNN on an 8-bit qWN device (QWN_FORMATS, --rounding): u and θ rounded where stored
    "tinysnn_qwn": (Topology.tinysnn, _ADAPTIVE, Integrator.step),
    "tinysnn_qwn_compiled": (Topology.tinysnn, _ADAPTIVE, Integrator.compiled),
    # and on an 8-bit qW device (UQ0.8 weights, FP32 neurons), as an ITQ qW grid's replicas train
    "tinysnn_qw_compiled": (Topology.tinysnn, _ADAPTIVE, Integrator.compiled),
}
#: variants that differ from another network in training only (no inference rows)
TRAINING_ONLY = {"tinysnn_closed_form", "tinysnn_spike"}
#: the recorded 8-bit qWN PTQ of MNIST (docs/runs/headline/ptq/mnist/wn-0): UQ0.8 weights, Q8.−1
#: membrane, UQ8.0 thresholds
QWN_FORMATS = (FixedPoint(8, 8, False), FixedPoint(8, -1, True), FixedPoint(8, 0, False))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(args: argparse.Namespace, replicas: int):
    topology, _, integrator = NETWORKS[args.network]
    model = ModelConfig(topology=topology, n_neurons=args.neurons)
    sim = SimConfig(presentation_ms=float(args.steps), integrator=integrator)
    constants = NetworkConstants.build(model, sim)
    device = torch.device(args.device)
    generators = replica_generators(0, replicas, device)
    params = init_params(model, generators, device)
    images = load_dataset("mnist", "train", default_data_root()).images.reshape(-1, 784).to(device)
    return model, sim, constants, generators, params, images


def _quantizer(args: argparse.Namespace, replicas: int, device: torch.device) -> Quantizer:
    """The network's device: FP32, or for the qW and qWN rows one spec of QWN_FORMATS per replica."""
    if not args.network.startswith("tinysnn_qw"):
        return FP32Quantizer()
    neurons = QWN_FORMATS[1:] if args.network.startswith("tinysnn_qwn") else (None, None)
    spec = QuantSpec(QWN_FORMATS[0], *neurons, Rounding(args.rounding), decay_frac_bits=16)
    return FixedPointQuantizer([spec] * replicas, replica_generators(ROUNDING_SEED_OFFSET, replicas, device))


def _train_images(args: argparse.Namespace, replicas: int, chunks: list[int]) -> list[float]:
    """Seconds per image per replica of each chunk of ``chunks`` training images (the real protocol)."""
    torch.set_num_threads(args.threads)
    model, sim, constants, generators, params, images = _setup(args, replicas)
    learning = NETWORKS[args.network][1]
    rule = build_rule(learning, model, sim)
    quant = _quantizer(args, replicas, params.weights.device)
    quant.store_weights_(params.weights)
    simulator = make_training_simulator(params, constants, rule, sim, generators, quant)
    times, index = [], 0
    for chunk in chunks:
        _sync(params.weights.device)
        start = time.perf_counter()
        for _ in range(chunk):
            train_image(simulator, images[index].expand(replicas, -1), learning.nu_post)
            index += 1
        _sync(params.weights.device)
        times.append((time.perf_counter() - start) / chunk / replicas)
    return times


def bench_training(args: argparse.Namespace, replicas: int) -> dict:
    chunk = max(10, args.train_images // replicas)
    times = _train_images(args, replicas, [chunk] * (args.repeats + 1))[1:]  # the first chunk warms up
    return {"ms": 1000 * statistics.median(times)}


def bench_epoch(args: argparse.Namespace, images: int) -> dict:
    """One MNIST epoch (60,000 images) extrapolated from ``images`` consecutive training images.

    The first 10 images are timed apart (they include building compiled kernels, once per run)
    and added to the extrapolation of the rest.
    """
    warmup = 10
    warmup_per_image, per_image = _train_images(args, 1, [warmup, images])
    seconds = warmup_per_image * warmup + per_image * (60_000 - warmup)
    return {"ms": 1000 * per_image, "epoch_minutes": seconds / 60}


def _infer_count(args: argparse.Namespace, batch: int) -> int:
    """Images of one inference pass: ``--infer-images`` in whole batches, at least one."""
    return max(batch, args.infer_images // batch * batch)


def _infer_images(args: argparse.Namespace, batch: int, repeats: int) -> list[float]:
    """Seconds per image of each of ``repeats`` inference passes over the same images, batch ``batch``."""
    torch.set_num_threads(args.threads)
    model, sim, constants, _, params, images = _setup(args, 1)
    quant = _quantizer(args, 1, params.weights.device)
    quant.store_weights_(params.weights)
    simulator = InferenceSimulator(params.weights[0], params.theta[0], constants, sim, quant)
    generator = make_generator(1, params.weights.device)
    n = _infer_count(args, batch)
    times = []
    for _ in range(repeats):
        _sync(params.weights.device)
        start = time.perf_counter()
        collect_counts(simulator, images[:n], sim, batch, generator)
        _sync(params.weights.device)
        times.append((time.perf_counter() - start) / n)
    return times


def bench_inference(args: argparse.Namespace, batch: int) -> dict:
    return {"ms": 1000 * statistics.median(_infer_images(args, batch, args.repeats + 1)[1:])}


def bench_build(args: argparse.Namespace, batch: int) -> dict:
    """Seconds a compiled network's first pass spends building its kernels (the caller empties the
    inductor cache): the first of two equal passes less the second — 10 training images at R=1
    (``batch`` 0), or ``--infer-images`` images in batches of ``batch``."""
    if batch == 0:
        first, second = _train_images(args, 1, [10, 10])
        return {"seconds": 10 * (first - second)}
    first, second = _infer_images(args, batch, 2)
    return {"seconds": _infer_count(args, batch) * (first - second)}


def run_case(case: str, value: int, args: argparse.Namespace) -> dict:
    bench = {"train": bench_training, "infer": bench_inference, "epoch": bench_epoch, "build": bench_build}[case]
    result = bench(args, value)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=400)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--only", nargs="+", choices=["train", "infer", "epoch", "build"], help="run only these rows")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"],
                        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 4, 16, 32], help="training R values")
    parser.add_argument("--wide-replicas", type=int, nargs="*", default=[16, 32],
                        help="training R values also timed with every core (threads = cores; same results)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-images", type=int, default=100, help="images per timed training chunk (÷ R)")
    parser.add_argument("--infer-images", type=int, default=1000, help="images per timed inference repeat")
    parser.add_argument("--epoch-images", type=int, default=2000, help="measured images for the epoch time")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256, 1000], help="inference B values")
    parser.add_argument("--infer-threads", type=int, default=os.cpu_count() or 1,
                        help="threads of the inference rows (every core; 1 when other jobs load the cores)")
    parser.add_argument("--rounding", default="stochastic", choices=[r.value for r in Rounding],
                        help="the qWN rows' rounding")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--network", default="baseline", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--value", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.value, args)))
        return

    cores = os.cpu_count() or 1
    cases = [("train", r, 1, f"training, R={r}" + (", B=1" if r == 1 else ""),
              "ms/image" if r == 1 else "ms/image/replica") for r in args.replicas]
    if cores > 1:
        cases += [("train", r, cores, f"training, R={r}, {cores} threads", "ms/image/replica")
                  for r in args.wide_replicas]
    cases += [("infer", b, args.infer_threads, f"inference, B={b}", "ms/image") for b in args.batches]
    cases += [("epoch", args.epoch_images, 1, f"MNIST epoch from {args.epoch_images} images, R=1", "ms/image")]
    cases += [("build", 0, 1, "kernel build from an empty cache, training R=1", "s"),
              ("build", 1000, args.infer_threads, "kernel build from an empty cache, inference B=1000", "s")]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"tinysnn simulator bench: {args.neurons} excitatory neurons, {args.steps} steps of 1 ms, real MNIST")
    print(f"torch {torch.__version__}, CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores), "
          f"GPU {gpu}; threads: training 1 unless the row says more, inference {args.infer_threads}; "
          f"medians of {args.repeats} repeats; qWN rows: 8-bit, {args.rounding} rounding; "
          f"load average {os.getloadavg()[0]:.2f} (other jobs share the cores)\n")
    print("| device | network | case | time | unit | peak RSS (MiB) | peak CUDA (MiB) | note |\n"
          "|---|---|---|---:|---|---:|---:|---|")
    passthrough = [f"--neurons={args.neurons}", f"--steps={args.steps}", f"--repeats={args.repeats}",
                   f"--train-images={args.train_images}", f"--infer-images={args.infer_images}",
                   f"--rounding={args.rounding}"]
    for device in args.devices:
        for network in args.networks:
            for case, value, threads, label, unit in cases:
                # training-only variants have no inference rows; the epoch rows are tinySNN's; only
                # compiled networks build kernels
                skip = (args.only and case not in args.only) or (network in TRAINING_ONLY and case == "infer") \
                    or (case == "epoch" and not network.startswith("tinysnn")) \
                    or (case == "build" and not network.endswith("_compiled"))
                if skip:
                    continue
                with tempfile.TemporaryDirectory(prefix="tinysnn-bench-inductor-") as cache:
                    # a build row starts from an empty inductor cache, as a first run on a machine does
                    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache} if case == "build" else None
                    out = subprocess.run([sys.executable, __file__, f"--network={network}", f"--device={device}",
                                          f"--case={case}", f"--value={value}", f"--threads={threads}", *passthrough],
                                         check=True, capture_output=True, text=True, env=env).stdout
                result = json.loads(out.strip().splitlines()[-1])
                cuda = f"{result['peak_cuda_mib']:.0f}" if "peak_cuda_mib" in result else ""
                note = f"epoch ≈ {result['epoch_minutes']:.1f} min" if "epoch_minutes" in result else ""
                time_taken = result["seconds"] if case == "build" else result["ms"]
                print(f"| {device} | {network} | {label} | {time_taken:.2f} | {unit} | "
                      f"{result['peak_rss_mib']:.0f} | {cuda} | {note} |", flush=True)


if __name__ == "__main__":
    main()
