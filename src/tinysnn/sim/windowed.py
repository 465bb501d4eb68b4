"""Training with tinySNN's windowed rule: weights are constant inside an update window.

The X→E current of a whole window is therefore one sparse product (or, for few fired rows, one
gather and index_add); the per-step loop is elementwise only. Three integrators advance a
window, chosen by ``sim.integrator``: ``step`` runs the reference step one step at a time,
``closed_form`` one small matmul per spike-free stretch, ``compiled`` one fused kernel per
window (``lif_window``; on a qWN device ``lif_window_fixed_point``; on a fixed-point device the
weights are renormalised and stored by ``weight_store``), ``auto`` the compiled
kernel once ``plan`` says the pass is long enough (``tinysnn.sim.auto``). At each window's end
the rule updates the columns of the neurons that spiked in it. Replicas whose presentation is
provably silent, and compiled windows that provably leave every replica at rest, are not
simulated: their outcome is known (``tinysnn.sim.silence``).
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import Integrator, PreTrace, SimConfig, Topology
from ..encoding import SpikeEvents
from ..learning import AdaptivePotentiation, LatestSpikes, LearningRule, mean_trace
from ..network import NetworkConstants, NetworkParams
from ..quant import FixedPointQuantizer, Quantizer
from .auto import choose_integrator
from .currents import step_currents
from .lif_window import run_fixed_point_window, run_lif_window
from .silence import count_skipped_, silent_replicas
from .training import TrainingSimulator
from .weight_store import normalize_and_store_

#: fired rows in a training window above which its current is a sparse product (both sum alike)
SPARSE_PRODUCT_MIN_ROWS = 1_000


class WindowedTrainingSimulator(TrainingSimulator):
    def __init__(self, params: NetworkParams, network: NetworkConstants, rule: AdaptivePotentiation,
                 sim: SimConfig, generators: list[torch.Generator], quant: Quantizer) -> None:
        super().__init__(params, network, rule, sim, generators, quant)
        self.window_rule = rule
        #: the presentation's spike counts (the layer counts each window's)
        self.counts = torch.zeros_like(self.layer.counts)
        #: how often each replica updated with each k (k = column index), for the record
        self.k_counts = torch.zeros(params.replicas, rule.largest_factor(sim.steps) + 1, device=self.counts.device)
        #: per replica, the step current below which u = 0 stays at rest (None: FP32 membranes)
        self.rest_limit = quant.rest_current_limit()
        #: whether every replica's windows may be proven to rest (each rounds deterministically)
        self.may_rest = self.rest_limit is not None and bool((self.rest_limit > 0).all())
        #: sim.integrator as configured (``auto`` is resolved by ``plan``)
        self.requested = sim.integrator
        self._use(self._choose(None))

    def plan(self, images: int) -> None:
        self._use(self._choose(images))

    @property
    def integrator(self) -> Integrator:
        return self.sim.integrator

    def _choose(self, images: int | None) -> Integrator:
        """The integrator for a pass of ``images`` images per replica (None: unknown)."""
        return choose_integrator(self.requested, self.network.topology is Topology.tinysnn, self.quant, images,
                                 training=True, device=self.layer.u.device)

    def _use(self, integrator: Integrator) -> None:
        """Advance windows with ``integrator`` from now on."""
        # retries' restricted copies are built from self.sim: they inherit the choice
        self.sim = dataclasses.replace(self.sim, integrator=integrator)
        #: advances one window's steps and counts its spikes in the layer; returns whether any neuron fired
        self._advance_window = {Integrator.step: self._step_window, Integrator.closed_form: self._integrate_window,
                                Integrator.compiled: self._compiled_window}[integrator]
        u = self.layer.u
        # the compiled kernel carries the lateral inhibition on its way between windows; none at a start
        self.no_arriving = (torch.zeros(self.network.lateral_delay_steps, *u.shape, device=u.device)
                            if integrator is Integrator.compiled else None)
        if integrator is Integrator.closed_form:
            # L[i, j] = α^(i−j) for j ≤ i, and α^(i+1): u over a stretch of steps from its inputs and start
            k = torch.arange(self.window_rule.window_steps, dtype=torch.float64, device=u.device)
            lag = k[:, None] - k[None, :]
            alpha = self.device.exc.decay
            self.decay_matrix = torch.where(lag >= 0, alpha ** lag.clamp_min(0), 0.0).float()
            self.decay_powers = (alpha ** (k + 1)).float()

    def _normalize_and_store_weights(self) -> None:
        """On a fixed-point device with the compiled integrator, one fused kernel (``weight_store``)."""
        if self.sim.integrator is Integrator.compiled and isinstance(self.quant, FixedPointQuantizer):
            normalize_and_store_(self.params.weights, self.network.weight_norm_total, self.quant)
        else:
            super()._normalize_and_store_weights()

    def write_back(self, part: "TrainingSimulator", replicas: list[int]) -> None:
        super().write_back(part, replicas)
        self.k_counts[replicas] += part.k_counts  # type: ignore[index]

    def run(self, events: SpikeEvents, eta: float) -> torch.Tensor:
        if self.rest_limit is not None:
            silent = silent_replicas(events, self.params.weights, self.quant.threshold(self.params.theta, self.device),
                                     self.rest_limit)
            if bool(silent.any()):
                return self._run_awake(events, eta, silent)
        return self._simulate(events, eta)

    def _run_awake(self, events: SpikeEvents, eta: float, silent: torch.Tensor) -> torch.Tensor:
        """Simulate only the replicas not ``silent`` [R] (``tinysnn.sim.silence``); the silent ones'
        presentation is counted, its outcome is known: no spike, θ and weights unchanged."""
        count_skipped_(self.ops, events, silent)
        counts = torch.zeros_like(self.counts)
        awake = (~silent).nonzero().flatten().tolist()
        if awake:
            part = self.restricted(awake)
            assert isinstance(part, WindowedTrainingSimulator)
            counts[awake] = part._simulate(events.of_streams(awake, self.network.n_inputs), eta)
            self.write_back(part, awake)
        return counts

    def _simulate(self, events: SpikeEvents, eta: float) -> torch.Tensor:
        """The presentation of ``events`` to every replica, window by window; spike counts [R, N]."""
        self._start_presentation(events)
        #: each input's latest spike over the windows passed (x_pre at a window's end)
        self.latest_inputs = LatestSpikes(self.params.replicas * self.network.n_inputs, self.layer.u.device)
        self.counts.zero_()
        self.arriving = self.no_arriving
        window = self.window_rule.window_steps
        weights = self.params.weights
        for start in range(0, events.steps, window):
            stop = min(start + window, events.steps)
            lo, hi = events.bounds(start, stop)
            currents = step_currents(events, lo, hi, start, stop, weights.view(-1, self.network.n_neurons),
                                     shared=False, gather_up_to=SPARSE_PRODUCT_MIN_ROWS)
            self.layer.counts.zero_()
            fired_in_window = self._advance_window(currents, start, stop)
            window_counts = self.layer.counts
            self.counts.add_(window_counts)
            if fired_in_window:
                replica_idx, neuron_idx = (window_counts > 0).nonzero(as_tuple=True)
                k = self.window_rule.potentiation_factor(self.counts, window_counts)
                updating = torch.unique(replica_idx)
                self.k_counts.index_put_((updating, k[updating].long()), torch.ones_like(updating, dtype=torch.float32),
                                         accumulate=True)
                cols = weights[replica_idx, :, neuron_idx]  # [K, I]
                pre = self._pre_trace(events, lo, hi, start, stop, replica_idx, neuron_idx)
                self.window_rule.post_update_(cols, pre, (k[replica_idx] * eta)[:, None])  # k·η_post per column
                self.quant.store_slices_(cols, replica_idx)
                weights[replica_idx, :, neuron_idx] = cols
                self.ops.count_at_("column_updates", replica_idx)
        return self._finish_presentation(self.counts)

    def _step_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance steps [start, stop) with the reference step; returns whether any neuron fired."""
        fired = False
        for step in range(start, stop):
            fired |= self._excitatory_step(step, currents[step - start]) is not None
        return fired

    def _integrate_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance steps [start, stop) in closed form between spikes; returns whether any neuron fired.

        From step a, with no spike before step t, u_t = α^(t−a+1)·u_(a−1) + Σ_(j=a..t) α^(t−j)·I_j
        (refractory neurons' inputs zeroed, scheduled inhibition added): one matmul gives the
        whole stretch, the first step where any neuron crosses its threshold fires as in the step
        path, and the next stretch starts after it.
        """
        layer, exc = self.layer, self.device.exc
        replicas, n = self.params.replicas, self.network.n_neurons
        fired, a = False, start
        while a < stop:
            steps = stop - a
            current = currents[a - start:].clone()
            for step, inhibition in layer.inhibition.scheduled(a, stop):  # type: ignore[union-attr]
                current[step - a].add_(inhibition)
            if layer.last_fire_step >= a - exc.refrac_steps:  # someone may still be refractory
                step_index = torch.arange(a, stop, device=current.device, dtype=layer.last_spike.dtype)
                refractory = layer.last_spike.unsqueeze(0) >= (step_index - exc.refrac_steps)[:, None, None]
                current.masked_fill_(refractory, 0.0)
            trajectory = torch.addmm(self.decay_powers[:steps, None] * layer.u.view(1, -1),
                                     self.decay_matrix[:steps, :steps], current.view(steps, -1))
            crossed = trajectory.view(steps, replicas, n) >= self.threshold
            any_crossed = crossed.view(steps, -1).any(1)
            first = any_crossed.to(torch.uint8).argmax()
            offset, hit = torch.stack([first, any_crossed[first].long()]).tolist()
            if not hit:
                layer.u.copy_(trajectory[-1].view(replicas, n))
                break
            layer.u.copy_(trajectory[offset].view(replicas, n))
            spikes = crossed[offset]
            layer.fire_(a + offset, spikes)
            self._raise_theta(spikes)
            fired, a = True, a + offset + 1
        layer.inhibition.discard_before(stop)  # type: ignore[union-attr]
        return fired

    def _compiled_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance the window's steps in one fused kernel; returns whether any neuron fired."""
        if self.quant.quantizes_neurons:
            return self._fixed_point_window(currents, start, stop)
        layer = self.layer
        layer.u, layer.last_spike, theta, layer.counts, self.arriving = run_lif_window(
            layer.u, layer.last_spike, self.params.theta, self.arriving, currents, start, self.device.exc,
            thresh=self.device.u_th, theta_plus=self.network.theta_plus, w_inh=self.device.w_inh)
        self.params.theta.copy_(theta)
        return bool(layer.counts.any())

    def _fixed_point_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """The compiled window on a qWN device: u and θ rounded where the quantizer stores them, stochastic
        rounding's U drawn ahead (each step's u and each spike's θ: at most 2 slots a step, W certainly)."""
        quant, layer, theta, steps = self.quant, self.layer, self.params.theta, stop - start
        assert isinstance(quant, FixedPointQuantizer)
        if self._rests_through(currents):
            return False
        drawn = quant.draw_ahead(layer.u.shape, slots=2 * steps, used=steps)
        layer.u, layer.last_spike, rounded_theta, layer.counts, self.arriving, used = run_fixed_point_window(
            layer.u, layer.last_spike, theta, self.arriving, currents, start, self.device.exc,
            thresh=self.device.u_th, theta_plus=self.network.theta_plus, w_inh=self.device.w_inh,
            membrane=quant.kernel_grid("membrane", layer.u), threshold=quant.kernel_grid("threshold", theta),
            offsets=drawn.offsets)
        drawn.settle_([int(n) for n in used.flatten().tolist()])
        theta.copy_(rounded_theta)
        return bool(layer.counts.any())

    def _rests_through(self, currents: torch.Tensor) -> bool:
        """Whether the window provably leaves every replica at rest (``tinysnn.sim.silence``): u = 0, no
        inhibition under way, every V_th > 0 and each step's current ``currents`` [W, R, N] below the
        replica's rest limit (currents sum non-negative weights). Its outcome is then known: u, θ and
        the weights unchanged, no spike."""
        if not self.may_rest or bool(self.layer.u.any()) or bool(self.arriving.any()):
            return False
        return bool((currents.amax((0, 2)) < self.rest_limit).all()) and bool(
            (self.quant.threshold(self.params.theta, self.device) > 0).all())

    def _pre_trace(self, events: SpikeEvents, lo: int, hi: int, start: int, stop: int, replica_idx: torch.Tensor,
                   neuron_idx: torch.Tensor) -> torch.Tensor:
        """x_pre [K, I] for the update of columns (replica_idx, neuron_idx) at the end of window [start, stop)."""
        rule, replicas, n_inputs = self.window_rule, self.params.replicas, self.network.n_inputs
        before = self.latest_inputs.through(events.time, events.row, lo)  # latest spikes before the window
        if rule.pre_trace is PreTrace.spike:
            return self._trace_at_spikes(events, replica_idx, neuron_idx)
        if rule.pre_trace is PreTrace.last:
            x = self.latest_inputs.trace_at(stop - 1, events.time, events.row, hi, rule.pre_decay_log)
        else:
            x = mean_trace(start, stop, events.time[lo:hi], events.row[lo:hi], replicas * n_inputs,
                           rule.pre_decay_log, before)
        return x.view(replicas, n_inputs)[replica_idx]

    def _trace_at_spikes(self, events: SpikeEvents, replica_idx: torch.Tensor,
                         neuron_idx: torch.Tensor) -> torch.Tensor:
        """x_pre of each updated neuron at its last spike (inputs of that step included), [K, I]."""
        spike_steps = self.layer.last_spike[replica_idx, neuron_idx].long()
        steps = torch.unique(spike_steps).tolist()  # one or a few distinct steps per window
        if len(steps) == 1:
            return self._input_traces_at(events, steps[0]).index_select(0, replica_idx)
        out = torch.empty(replica_idx.numel(), self.network.n_inputs, device=self.layer.u.device)
        for step in steps:
            chosen = (spike_steps == step).nonzero().squeeze(1)
            out.index_copy_(0, chosen, self._input_traces_at(events, step).index_select(0, replica_idx[chosen]))
        return out

    def _input_traces_at(self, events: SpikeEvents, step: int) -> torch.Tensor:
        """Every replica's input traces at ``step`` of the current window, [R, I]."""
        end = int(torch.searchsorted(events.time, step, right=True))
        x = self.latest_inputs.trace_at(step, events.time, events.row, end, self.window_rule.pre_decay_log)
        return x.view(self.params.replicas, self.network.n_inputs)


def make_training_simulator(params: NetworkParams, network: NetworkConstants, rule: LearningRule, sim: SimConfig,
                            generators: list[torch.Generator], quant: Quantizer) -> TrainingSimulator:
    """The simulator that fits the rule: windowed for rules with update windows, per-step otherwise."""
    if rule.window_steps is not None:
        return WindowedTrainingSimulator(params, network, rule, sim, generators, quant)
    return TrainingSimulator(params, network, rule, sim, generators, quant)
