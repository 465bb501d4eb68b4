"""Operation-count energy model (ALGORITHMS.md §9.3), priced with Horowitz's 45 nm energies.

The kernels count what they did (``tinysnn.ops.OpCounts``); this module turns those counts
into operations per image and prices them by bit width. An image costs every presentation it
took: the paper prices processing ("we leverage the simulation time and the operational power"),
and a network that answers an image with fewer than 5 spikes is shown it again at a higher rate
(up to ``sim.max_retries`` times), in training and in inference alike.

* integer add 0.1 pJ·b/32, integer multiply 3.1 pJ·(b/32)² (linear / quadratic fits to the
  8- and 32-bit table entries); FP32 add 0.9 pJ, FP32 multiply 3.7 pJ;
* SRAM access per bit, log-linear in the array's size between 8 KB (0.16 pJ/bit), 32 KB
  (0.31) and 1 MB (1.56), chosen by the size of the weight memory.

Per image and phase it reports four parts: synaptic (input spikes × N weight reads and
accumulates), neuron (per step and neuron one multiply, two adds, one compare; θ adds at
spikes), inhibition (per excitatory spike N − 1 adds; the baseline's inhibitory population
adds its own neuron updates and spikes), learning (weight rows and columns rewritten, one
multiply and add each, normalisation's I·N multiplies and adds, θ decay) and memory (weight
reads per synaptic operation and writes per update at B_w, neuron state read and written every
step at B_n). Absolute values are estimates for comparison; ratios between models are the point.

Two devices are priced from the same counts (``EnergyInputs.device``):

* ``event`` (default): an event-driven device — an input spike reads and accumulates one weight
  row, an excitatory spike drives the inhibition; work scales with spikes.
* ``timestepped``: a device that, like a time-stepped GPU simulator (BindsNET, which the paper's
  energy figures come from: "we leverage the simulation time and the operational power"),
  evaluates every connection as a dense product at every step: I·N X→E weight reads and adds
  per step whatever the input, and for the Diehl & Cook network also the E→I (N) and dense I→E
  (N·(N−1)) products per step; tinySNN's direct lateral inhibition has one uniform strength, so
  it costs N subtractions per step. Neurons and learning are priced as on the event device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .memory import FP32_BITS

_SRAM_PJ_PER_BIT = ((8 * 1024 * 8, 0.16), (32 * 1024 * 8, 0.31), (1024 * 1024 * 8, 1.56))


def add_pj(bits: int) -> float:
    return 0.9 if bits >= FP32_BITS else 0.1 * bits / 32


def mul_pj(bits: int) -> float:
    return 3.7 if bits >= FP32_BITS else 3.1 * (bits / 32) ** 2


def sram_pj_per_bit(array_bits: float) -> float:
    """Access energy per bit of an SRAM holding ``array_bits``, log-linear between table sizes."""
    points = _SRAM_PJ_PER_BIT
    if array_bits <= points[0][0]:
        return points[0][1]
    for (size_a, e_a), (size_b, e_b) in zip(points, points[1:]):
        if array_bits <= size_b:
            t = (math.log(array_bits) - math.log(size_a)) / (math.log(size_b) - math.log(size_a))
            return e_a + t * (e_b - e_a)
    return points[-1][1]


@dataclass(frozen=True)
class EnergyInputs:
    """Op counts of one phase (a dict from ``OpCounts.to_dict``), the images they processed and the
    network they ran on."""

    ops: dict[str, int]
    #: images processed (per replica, summed over replicas): each is presented once, or again while
    #: the network answers with too few spikes (the retry rule), and all its presentations are its cost
    images: int
    steps: int
    n_inputs: int
    n_neurons: int
    topology: str
    weight_bits: int
    neuron_bits: int
    training: bool
    #: ``event`` or ``timestepped`` (module docstring)
    device: str = "event"


def energy_per_image(x: EnergyInputs) -> dict[str, float]:
    """Energy in pJ per image — all of its presentations, retries included — split into parts, with the total."""
    ops, n, i = x.ops, x.n_neurons, x.n_inputs
    images = max(1, x.images)
    b_w, b_n = x.weight_bits, x.neuron_bits
    steps = ops["presentations"] * x.steps
    neuron_steps = steps * n
    dense = x.device == "timestepped"
    if x.device not in ("event", "timestepped"):
        raise ValueError(f"unknown energy device {x.device!r}: event or timestepped")
    # synaptic operations: one weight read + accumulate per (input spike or step) × neuron
    sops = steps * i * n if dense else ops["input_spikes"] * n
    synaptic = sops * add_pj(b_n)
    neuron = neuron_steps * (mul_pj(b_n) + 3 * add_pj(b_n))  # α·u, + I, − inhibition, compare
    inhibition = (neuron_steps if dense else ops["exc_spikes"] * (n - 1)) * add_pj(b_n)
    dense_inhibitory = 0  # I→E weights read from a dense FP32 matrix at every step (Diehl & Cook, time-stepped)
    if x.topology == "diehl_cook":
        # E→I one-to-one and I→E all-but-one: per spike on the event device, at every step when dense
        dense_inhibitory = steps * n * (n - 1) if dense else 0
        adds = steps * n + dense_inhibitory if dense else ops["exc_spikes"] + ops["inh_spikes"] * (n - 1)
        inhibition = adds * add_pj(FP32_BITS) + neuron_steps * (mul_pj(FP32_BITS) + 2 * add_pj(FP32_BITS))
    learning = 0.0
    written = 0
    if x.training:
        written = ops["column_updates"] * i + ops["row_updates"] * n
        normalized = ops["normalizations"] * i * n
        learning = written * (mul_pj(b_w) + add_pj(b_w)) + normalized * (mul_pj(b_w) + add_pj(b_w)) \
            + ops["exc_spikes"] * add_pj(b_n) + ops["normalizations"] * n * mul_pj(b_n)
        written += normalized
    weight_memory = sram_pj_per_bit(i * n * b_w)
    state_memory = sram_pj_per_bit(2 * n * b_n)
    memory = (sops + 2 * written) * b_w * weight_memory + neuron_steps * 2 * b_n * state_memory \
        + dense_inhibitory * FP32_BITS * sram_pj_per_bit(n * (n - 1) * FP32_BITS)
    parts = {"synaptic": synaptic, "neuron": neuron, "inhibition": inhibition, "learning": learning, "memory": memory}
    per_image = {key: value / images for key, value in parts.items()}
    per_image["total"] = sum(per_image.values())
    return per_image
