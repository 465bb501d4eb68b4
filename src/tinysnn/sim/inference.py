"""Frozen-weight presentations of a batch of B images to one network.

The input current of a whole block of steps is one sparse × dense product [T·B, I] @ [I, N];
the per-step loop is the reference step (``tinysnn.sim.layer``) on [B, N], or for tinySNN's
network with ``sim.integrator=compiled`` (``auto``: once ``plan`` says the pass is long enough)
the fused kernel in blocks of ``INFERENCE_KERNEL_STEPS`` steps — on a qWN device the fixed-point
one, its stochastic rounding's U drawn ahead for each block. Images whose presentation is
provably silent are not simulated (``tinysnn.sim.silence``).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import Integrator, SimConfig, Topology
from ..device_encoding import DeviceEncoder
from ..encoding import SpikeEvents, poisson_events, spike_probability
from ..network import NetworkConstants
from ..ops import OpCounts
from ..quant import FixedPointQuantizer, FP32Quantizer, Quantizer
from .auto import choose_integrator
from .currents import step_currents
from .layer import ExcitatoryLayer
from .lif_window import run_fixed_point_window, run_lif_window
from .silence import count_skipped_, provable_row_max, silent_streams

#: steps per fused-kernel call in compiled inference (blocks are whole multiples: one kernel per run)
INFERENCE_KERNEL_STEPS = 10


class InferenceSimulator:
    """``quant`` runs the network as a fixed-point device (a quantizer of one replica, whose generator
    draws the batch's stochastic rounding); ``observe(u)`` sees u after every step (range analysis); ``encoder``
    replaces the Poisson draws by the device's integer encoder (``sim.encoding=device``)."""

    def __init__(self, weights: torch.Tensor, theta: torch.Tensor, network: NetworkConstants, sim: SimConfig,
                 quant: Quantizer | None = None, observe: Callable[[torch.Tensor], None] | None = None,
                 rows_per_block: int = 10_000, encoder: DeviceEncoder | None = None) -> None:
        self.quant = quant if quant is not None else FP32Quantizer()
        self.encoder = encoder
        self.weights = weights  # [I, N]
        self.device = self.quant.device_constants(network)
        self.threshold = self.quant.threshold(theta, self.device)  # [N]
        self.network, self.sim, self.observe = network, sim, observe
        self.ops = OpCounts()
        # sparse products of ~10k rows stay cache-resident; larger ones cost up to 5× more per row
        self.rows_per_block = rows_per_block
        #: a range analysis observes u at every step: it sees every presentation simulated
        self.rest_limit = self.quant.rest_current_limit() if observe is None else None
        self.row_max = provable_row_max(weights, self.threshold, self.rest_limit)
        self.plan(None)

    def plan(self, images: int | None) -> None:
        """Told that a pass of ``images`` images follows (None: unknown): ``sim.integrator=auto``
        chooses for it whether the fused kernel runs."""
        # the fused kernel covers tinySNN's direct inhibition with no observer
        applies = self.network.topology is Topology.tinysnn and self.observe is None
        integrator = choose_integrator(self.sim.integrator, applies, self.quant, images, training=False,
                                       device=self.weights.device)
        self.compiled = applies and integrator is Integrator.compiled

    @property
    def integrator(self) -> Integrator:
        """The integrator the planned pass runs with (``auto`` resolved)."""
        return Integrator.compiled if self.compiled else Integrator.step

    def present(self, images: torch.Tensor, max_rate_hz: float, generator: torch.Generator,
                ids: torch.Tensor | None = None, attempt: int = 0) -> torch.Tensor:
        """Spike counts [B, N] for ``images`` [B, I] at the given max rate (the device encoder instead
        encodes attempt ``attempt`` of the images with indices ``ids``)."""
        if self.encoder is not None:
            if ids is None:
                raise ValueError("the device encoder needs the images' indices")
            return self.run(self.encoder.events(images, ids, attempt))
        probability = spike_probability(images, max_rate_hz, self.sim.dt_ms)
        events = poisson_events(probability, self.sim.steps, generator)
        return self.run(events)

    def run(self, events: SpikeEvents) -> torch.Tensor:
        if self.row_max is not None:
            assert self.rest_limit is not None
            silent = silent_streams(events, self.row_max, self.rest_limit, shared=True)
            if bool(silent.any()):
                return self._run_awake(events, silent)
        return self._simulate(events)

    def _run_awake(self, events: SpikeEvents, silent: torch.Tensor) -> torch.Tensor:
        """Simulate only the images not ``silent`` [B] (``tinysnn.sim.silence``); the silent ones'
        presentations are counted, their outcome is known: no spike."""
        count_skipped_(self.ops, events, silent)
        counts = torch.zeros(events.streams, self.network.n_neurons, device=self.weights.device)
        awake = (~silent).nonzero().flatten().tolist()
        if awake:
            counts[awake] = self._simulate(events.of_streams(awake, self.network.n_inputs))
        return counts

    def _simulate(self, events: SpikeEvents) -> torch.Tensor:
        """Spike counts [B, N] of the presentation of ``events`` to the network, block by block."""
        batch = events.streams
        layer = ExcitatoryLayer(self.device, batch, self.quant, self.weights.device, self.observe)
        time_block = max(1, self.rows_per_block // batch)
        arriving = None
        if self.compiled:  # whole kernel calls per block: one compiled kernel serves the run
            time_block = INFERENCE_KERNEL_STEPS * max(1, time_block // INFERENCE_KERNEL_STEPS)
            arriving = torch.zeros(self.network.lateral_delay_steps, *layer.u.shape, device=layer.u.device)
        for start in range(0, events.steps, time_block):
            stop = min(start + time_block, events.steps)
            lo, hi = events.bounds(start, stop)
            # fixed-point membranes integrate in float64, where weight sums plus inhibition are exact
            currents = step_currents(events, lo, hi, start, stop, self.weights, shared=True).to(layer.u.dtype)
            if arriving is not None:
                arriving = self._advance_compiled(layer, currents, start, arriving)
            else:
                for step in range(start, stop):
                    layer.step_(currents[step - start], step, self.threshold)
        self.ops.presentations += batch
        self.ops.input_spikes += events.row.numel()
        self.ops.exc_spikes += int(layer.counts.sum())
        if layer.inhibition.spike_counts is not None:
            self.ops.count_("inh_spikes", layer.inhibition.spike_counts)
        return layer.counts

    def _advance_compiled(self, layer: ExcitatoryLayer, currents: torch.Tensor, start: int,
                          arriving: torch.Tensor) -> torch.Tensor:
        """A block in fused kernels of INFERENCE_KERNEL_STEPS steps (θ frozen); returns the inhibition
        under way after it."""
        for first in range(0, currents.shape[0], INFERENCE_KERNEL_STEPS):
            block = currents[first:first + INFERENCE_KERNEL_STEPS]
            if self.quant.quantizes_neurons:
                layer.u, layer.last_spike, _, counts, arriving = self._fixed_point_block(layer, block, start + first,
                                                                                         arriving)
            else:  # V_th = self.threshold + 0 and θ_plus = 0
                layer.u, layer.last_spike, _, counts, arriving = run_lif_window(
                    layer.u, layer.last_spike, self.threshold, arriving, block, start + first, self.device.exc,
                    thresh=0.0, theta_plus=0.0, w_inh=self.device.w_inh)
            layer.counts.add_(counts)
        return arriving

    def _fixed_point_block(self, layer: ExcitatoryLayer, currents: torch.Tensor, first: int,
                           arriving: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The fixed-point kernel over a block from step ``first``: V_th = self.threshold, u rounded
        at every step (one slot of offsets per step, all used)."""
        quant, steps = self.quant, currents.shape[0]
        assert isinstance(quant, FixedPointQuantizer)
        return run_fixed_point_window(
            layer.u, layer.last_spike, self.threshold, arriving, currents, first, self.device.exc, thresh=0.0,
            theta_plus=0.0, w_inh=self.device.w_inh, membrane=quant.kernel_grid("membrane", layer.u),
            threshold=None, offsets=quant.draw_ahead(layer.u.shape, slots=steps, used=steps).offsets)[:5]
