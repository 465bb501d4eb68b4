"""The hot loops: one training presentation for R replicas, and batched frozen inference.

Training (weights plastic, B = 1 per replica): per step, the X→E current is the sum of the
weight rows of the inputs that fired (event-driven gather, ~6 rows per step on MNIST instead of
a dense 784×N product); the LIF update is a handful of elementwise ops on [R, N]; STDP touches
only the rows of inputs that fired and the columns of neurons that fired.

Inference (weights frozen, B images): the input current of a whole block of steps is one sparse
× dense product [T·B, I] @ [I, N]; the per-step loop is elementwise on [B, N].

Quantized, both kernels keep what the plan quantizes in fixed point: weights after every update
(ITQ), u after every step and θ after every change (qWN). Training rounds through
``quant.replicas.ReplicaPlans`` (one plan per replica), inference through one ``QuantPlan``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import accumulate

import torch

from .config import Integrator, ModelConfig, PreTrace, SimConfig, Topology
from .encoding import SpikeEvents, merge_events, poisson_events, spike_probability
from .kernels import run_lif_window
from .learning import AdaptivePotentiation, LearningRule, SpikeDrivenRule, mean_trace, trace_at
from .inhibition import DirectInhibition, InhibitoryPopulation
from .network import NetworkConstants, NetworkParams, make_inhibition
from .neurons import NEVER, integrate_, reset_
from .ops import OpCounts
from .quant.plan import QuantPlan
from .quant.replicas import ReplicaPlans
from .quant.ranges import MembraneTracker


#: fired rows in a training window above which its current is a sparse product (both sum alike)
SPARSE_PRODUCT_MIN_ROWS = 1_000
#: steps per fused-kernel call in compiled inference (blocks are whole multiples: one kernel per run)
INFERENCE_KERNEL_STEPS = 10


class TrainingSimulator:
    """Presents one image to each of R replicas with a spike-driven rule (each replica its own stream)."""

    def __init__(self, params: NetworkParams, constants: NetworkConstants, rule: SpikeDrivenRule, model: ModelConfig,
                 sim: SimConfig, generators: list[torch.Generator], quant: ReplicaPlans | None = None) -> None:
        self.unquantized = constants, model
        if quant is not None:
            constants, model = quant.constants(constants), quant.model(model)
        self.params, self.c, self.rule, self.sim, self.quant = params, constants, rule, sim, quant
        self.generators = generators
        replicas, n = params.replicas, constants.n_neurons
        device = params.weights.device
        self.requantize_u = quant.replica_neurons_ if quant is not None and quant.quantizes_neurons else None
        self.u = torch.zeros(replicas, n, device=device, dtype=quant.state_dtype if quant else torch.float32)
        self.last_spike = torch.full((replicas, n), NEVER, device=device)
        self.post_trace = torch.zeros(replicas, n, device=device)
        self.counts = torch.zeros(replicas, n, device=device)
        self.no_current = torch.zeros(replicas, n, device=device)
        self.inhibition = make_inhibition(model, constants, (replicas, n), device)
        self.ops = OpCounts()

    def restricted(self, replicas: list[int]) -> "TrainingSimulator":
        """A simulator of only ``replicas``: copies of their parameters, their own generators and plans.

        Replicas never interact, so a retry that concerns a few replicas runs on this smaller
        simulation (then ``write_back``) at the cost of those few instead of all R.
        """
        params = NetworkParams(self.params.weights[replicas], self.params.theta[replicas])
        quant = self.quant.restricted(replicas) if self.quant is not None else None
        constants, model = self.unquantized
        return type(self)(params, constants, self.rule, model, self.sim,  # type: ignore[arg-type]
                          [self.generators[r] for r in replicas], quant)

    def write_back(self, part: "TrainingSimulator", replicas: list[int]) -> None:
        """Take the parameters and op counts of ``part = self.restricted(replicas)`` after it ran."""
        self.params.weights[replicas] = part.params.weights
        self.params.theta[replicas] = part.params.theta
        self.ops += part.ops

    def encode(self, images: torch.Tensor, max_rate_hz: float) -> SpikeEvents:
        """Input events of every replica (each draws from its own generator)."""
        probability = spike_probability(images, max_rate_hz, self.sim.dt_ms)
        replicas = list(range(self.params.replicas))
        parts = [poisson_events(probability[r:r + 1], self.sim.steps, self.generators[r]) for r in replicas]
        return merge_events(parts, replicas, self.params.replicas, self.c.n_inputs, self.sim.steps,
                            probability.device)

    def present(self, images: torch.Tensor, max_rate_hz: float) -> torch.Tensor:
        """Simulate one presentation of ``images`` [R, I] (one per replica); returns spike counts [R, N]."""
        return self.run(self.encode(images, max_rate_hz))

    def set_training_progress(self, fraction: float) -> None:
        """Spike-driven rules keep constant rates; the windowed rule may anneal η_post."""

    def _start_presentation(self, events: SpikeEvents) -> None:
        """Reset the per-presentation state (θ and weights persist) and count the presentation."""
        self.ops.presentations += self.params.replicas
        self.ops.input_spikes += events.row.numel()
        self.u.zero_()
        self.last_spike.fill_(NEVER)
        self.counts.zero_()
        self.inhibition.reset()
        self.threshold = self._threshold()
        self.last_fire_step = int(NEVER)

    def _threshold(self) -> torch.Tensor:
        """V_th = u_th + θ, per replica and neuron."""
        if self.quant is not None:
            return self.quant.threshold(self.params.theta, self.c)
        return self.params.theta + self.c.exc.thresh

    def _excitatory_step(self, step: int, current: torch.Tensor) -> torch.Tensor | None:
        """Advance the excitatory layer one step with X→E ``current`` [R, N] (consumed).

        Returns the bool spikes [R, N] when any neuron fired, else None; on spikes it resets
        them, raises θ and hands them to the lateral inhibition.
        """
        exc = self.c.exc
        current = current.to(self.u.dtype)  # float64 for fixed-point membranes (exact sums)
        inhibition = self.inhibition.current(step)
        if inhibition is not None:
            current.add_(inhibition)
        spikes = integrate_(self.u, current, self.last_spike, self.threshold, step, exc,
                            may_be_refractory=step - self.last_fire_step <= exc.refrac_steps,
                            requantize=self.requantize_u)
        if not bool(spikes.any()):
            return None
        self._fire(step, spikes)
        return spikes

    def _fire(self, step: int, spikes: torch.Tensor) -> None:
        """Reset the neurons that spiked at ``step``, raise their θ, hand them to the lateral inhibition."""
        reset_(self.u, self.last_spike, spikes, step, self.c.exc)
        self.last_fire_step = step
        self.params.theta.add_(spikes, alpha=self.c.theta_plus)  # θ ← θ + θ_plus at each spike
        if self.quant is not None and self.quant.quantizes_neurons:
            self.quant.theta_after_spikes_(self.params.theta, spikes)
        self.threshold = self._threshold()
        self.inhibition.exc_spiked(step, spikes)

    def run(self, events: SpikeEvents) -> torch.Tensor:
        c, rule, params = self.c, self.rule, self.params
        n_rows = params.replicas * c.n_inputs
        weights = params.weights
        weights_flat = weights.view(n_rows, c.n_neurons)
        post_trace = self.post_trace
        post_trace.zero_()
        self._start_presentation(events)

        per_step = events.counts_per_step()
        rows_by_step = torch.split(events.row, per_step)
        streams_by_step = torch.split(events.stream, per_step)
        events_until = list(accumulate(per_step))
        # x_post only feeds presynaptic-spike updates, and is zero until the first excitatory spike;
        # a replica's rows change (and draw stochastic rounding noise) only once its own x_post is live
        post_trace_live = False
        live_replicas: set[int] = set()

        for step in range(events.steps):
            rows_idx, streams = rows_by_step[step], streams_by_step[step]
            rows = weights_flat.index_select(0, rows_idx)
            spikes = self._excitatory_step(step, self.no_current.index_add(0, streams, rows))
            if post_trace_live:
                post_trace.mul_(rule.post_decay)
            if spikes is not None:
                self.counts.add_(spikes)
                if rule.has_pre_update:
                    post_trace.masked_fill_(spikes, 1.0)
                    post_trace_live = True
                    if self.quant is not None and self.quant.draws_noise:
                        live_replicas.update(spikes.any(1).nonzero().flatten().tolist())
            if post_trace_live and rows_idx.numel():
                rule.pre_spike_update_(rows, post_trace.index_select(0, streams))
                self.ops.row_updates += rows_idx.numel()
                if self.quant is not None:
                    replica_of_row = streams.tolist()
                    changed = ([k for k, r in enumerate(replica_of_row) if r in live_replicas]
                               if self.quant.draws_noise else None)
                    self.quant.weights_(rows, replica_of_row, changed)
                weights_flat.index_copy_(0, rows_idx, rows)
            if spikes is not None:
                end = events_until[step]
                pre_trace = trace_at(step, events.time[:end], events.row[:end], n_rows, rule.pre_decay_log)
                replica_idx, neuron_idx = spikes.nonzero(as_tuple=True)
                cols = weights[replica_idx, :, neuron_idx]  # [k, I]
                self.ops.column_updates += replica_idx.numel()
                rule.post_spike_update_(cols, pre_trace.view(params.replicas, c.n_inputs)[replica_idx])
                if self.quant is not None:
                    self.quant.weights_(cols, replica_idx.tolist())
                weights[replica_idx, :, neuron_idx] = cols
        return self._finish_presentation()

    def _finish_presentation(self) -> torch.Tensor:
        """Count the presentation's spikes; return its spike counts [R, N]."""
        self.ops.exc_spikes += int(self.counts.sum())
        self.ops.inh_spikes += self.inhibition.spike_count
        return self.counts.clone()


class WindowedTrainingSimulator(TrainingSimulator):
    """Training with tinySNN's windowed rule: weights are constant inside an update window.

    The X→E current of a whole window is therefore one sparse product (or, for few fired rows,
    one gather and index_add); the per-step loop is elementwise only, with
    ``sim.integrator=closed_form`` one small matmul per spike-free stretch, with
    ``sim.integrator=compiled`` one fused kernel per window (tinysnn.kernels). At each window's
    end the rule updates the columns of the neurons that spiked in it.
    """

    def __init__(self, params: NetworkParams, constants: NetworkConstants, rule: AdaptivePotentiation,
                 model: ModelConfig, sim: SimConfig, generators: list[torch.Generator],
                 quant: ReplicaPlans | None = None) -> None:
        super().__init__(params, constants, rule, model, sim, generators, quant)  # type: ignore[arg-type]
        self.window_rule = rule
        self.window_counts = torch.zeros_like(self.counts)
        #: advances one window's steps and fills window_counts; returns whether any neuron fired
        self._advance_window = {Integrator.step: self._step_window, Integrator.closed_form: self._integrate_window,
                                Integrator.compiled: self._compiled_window}[sim.integrator]
        # the compiled kernel carries the lateral inhibition on its way between windows; none at a start
        self.no_arriving = (torch.zeros(self.inhibition.delay, *self.u.shape, device=self.u.device)  # type: ignore[union-attr]
                            if sim.integrator is Integrator.compiled else None)
        if sim.integrator is Integrator.closed_form:
            # L[i, j] = α^(i−j) for j ≤ i, and α^(i+1): u over a stretch of steps from its inputs and start
            k = torch.arange(rule.window_steps, dtype=torch.float64, device=self.u.device)
            lag = k[:, None] - k[None, :]
            alpha = self.c.exc.decay
            self.decay_matrix = torch.where(lag >= 0, alpha ** lag.clamp_min(0), 0.0).float()
            self.decay_powers = (alpha ** (k + 1)).float()

    def set_training_progress(self, fraction: float) -> None:
        self.window_rule.set_progress(fraction)

    def run(self, events: SpikeEvents) -> torch.Tensor:
        self._start_presentation(events)
        self.arriving = self.no_arriving
        window = self.window_rule.window_steps
        for start in range(0, events.steps, window):
            stop = min(start + window, events.steps)
            lo, hi = torch.searchsorted(events.time, torch.tensor([start, stop], device=events.time.device)).tolist()
            currents = self._window_current(events, lo, hi, start, stop)
            fired_in_window = self._advance_window(currents, start, stop)
            self.counts.add_(self.window_counts)
            if fired_in_window:
                replica_idx, neuron_idx = (self.window_counts > 0).nonzero(as_tuple=True)
                self.ops.column_updates += self.window_rule.update_columns_(
                    self.params.weights, self.window_counts, replica_idx, neuron_idx,
                    self._pre_trace(events, lo, hi, start, stop, replica_idx, neuron_idx),
                    self.quant.weights_ if self.quant is not None else None)
        return self._finish_presentation()

    def _step_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance steps [start, stop) one by one (the reference); returns whether any neuron fired."""
        self.window_counts.zero_()
        fired = False
        for step in range(start, stop):
            spikes = self._excitatory_step(step, currents[step - start])
            if spikes is not None:
                self.window_counts.add_(spikes)
                fired = True
        return fired

    def _integrate_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance steps [start, stop) in closed form between spikes; returns whether any neuron fired.

        From step a, with no spike before step t, u_t = α^(t−a+1)·u_(a−1) + Σ_(j=a..t) α^(t−j)·I_j
        (refractory neurons' inputs zeroed, scheduled inhibition added): one matmul gives the
        whole stretch, the first step where any neuron crosses its threshold fires as in the step
        path, and the next stretch starts after it.
        """
        exc, replicas, n = self.c.exc, self.params.replicas, self.c.n_neurons
        self.window_counts.zero_()
        fired, a = False, start
        while a < stop:
            steps = stop - a
            current = currents[a - start:].clone()
            for step, inhibition in self.inhibition.scheduled(a, stop):
                current[step - a].add_(inhibition)
            if self.last_fire_step >= a - exc.refrac_steps:  # someone may still be refractory
                step_index = torch.arange(a, stop, device=current.device, dtype=self.last_spike.dtype)
                refractory = self.last_spike.unsqueeze(0) >= (step_index - exc.refrac_steps)[:, None, None]
                current.masked_fill_(refractory, 0.0)
            trajectory = torch.addmm(self.decay_powers[:steps, None] * self.u.view(1, -1),
                                     self.decay_matrix[:steps, :steps], current.view(steps, -1))
            crossed = trajectory.view(steps, replicas, n) >= self.threshold
            any_crossed = crossed.view(steps, -1).any(1)
            first = any_crossed.to(torch.uint8).argmax()
            offset, hit = torch.stack([first, any_crossed[first].long()]).tolist()
            if not hit:
                self.u.copy_(trajectory[-1].view(replicas, n))
                break
            self.u.copy_(trajectory[offset].view(replicas, n))
            spikes = crossed[offset]
            self._fire(a + offset, spikes)
            self.window_counts.add_(spikes)
            fired, a = True, a + offset + 1
        self.inhibition.discard_before(stop)
        return fired

    def _compiled_window(self, currents: torch.Tensor, start: int, stop: int) -> bool:
        """Advance the window's steps in one fused kernel; returns whether any neuron fired."""
        self.u, self.last_spike, theta, self.window_counts, self.arriving = run_lif_window(
            self.u, self.last_spike, self.params.theta, self.arriving, currents, start, self.c.exc,
            thresh=self.c.exc.thresh, theta_plus=self.c.theta_plus, w_inh=self.inhibition.weight)  # type: ignore[union-attr]
        self.params.theta.copy_(theta)
        return bool(self.window_counts.any())

    def _window_current(self, events: SpikeEvents, lo: int, hi: int, start: int, stop: int) -> torch.Tensor:
        """[stop − start, R, N]: Σ of the weight rows of the inputs fired at each step, per replica."""
        replicas, n = self.params.replicas, self.c.n_neurons
        slots = (events.time[lo:hi] - start) * replicas + events.stream[lo:hi]
        weights = self.params.weights.view(-1, n)
        if hi - lo > SPARSE_PRODUCT_MIN_ROWS:
            current = spike_matrix_product(slots, events.row[lo:hi], (stop - start) * replicas, weights)
        else:  # few rows: gathering them and summing by slot is cheaper than building the sparse matrix
            current = torch.zeros((stop - start) * replicas, n, device=weights.device)
            current.index_add_(0, slots, weights.index_select(0, events.row[lo:hi]))
        return current.view(stop - start, replicas, n)

    def _pre_trace(self, events: SpikeEvents, lo: int, hi: int, start: int, stop: int, replica_idx: torch.Tensor,
                   neuron_idx: torch.Tensor) -> torch.Tensor:
        """x_pre [K, I] for the update of columns (replica_idx, neuron_idx) at the end of window [start, stop)."""
        rule, replicas, n_inputs = self.window_rule, self.params.replicas, self.c.n_inputs
        size = replicas * n_inputs
        if rule.pre_trace is PreTrace.spike:
            return self._trace_at_spikes(events, replica_idx, neuron_idx)
        if rule.pre_trace is PreTrace.last:
            x = trace_at(stop - 1, events.time[:hi], events.row[:hi], size, rule.pre_decay_log)
        else:
            before = torch.full((size,), float("-inf"), device=events.time.device)
            before.scatter_reduce_(0, events.row[:lo], events.time[:lo].float(), reduce="amax")
            x = mean_trace(start, stop, events.time[lo:hi], events.row[lo:hi], size, rule.pre_decay_log, before)
        return x.view(replicas, n_inputs)[replica_idx]

    def _trace_at_spikes(self, events: SpikeEvents, replica_idx: torch.Tensor, neuron_idx: torch.Tensor) -> torch.Tensor:
        """x_pre of each updated neuron at its last spike (inputs of that step included), [K, I]."""
        replicas, n_inputs = self.params.replicas, self.c.n_inputs
        spike_steps = self.last_spike[replica_idx, neuron_idx].long()
        out = torch.empty(replica_idx.numel(), n_inputs, device=self.u.device)
        for step in torch.unique(spike_steps).tolist():  # one or a few distinct steps per window
            end = int(torch.searchsorted(events.time, step, right=True))
            x = trace_at(step, events.time[:end], events.row[:end], replicas * n_inputs,
                         self.window_rule.pre_decay_log).view(replicas, n_inputs)
            chosen = (spike_steps == step).nonzero().squeeze(1)
            out[chosen] = x[replica_idx[chosen]]
        return out


@dataclass
class _BatchState:
    """The excitatory layer of a batch during inference; ``arriving``: the compiled kernel's inhibition."""

    u: torch.Tensor
    last_spike: torch.Tensor
    counts: torch.Tensor
    inhibition: InhibitoryPopulation | DirectInhibition
    arriving: torch.Tensor | None = None


class InferenceSimulator:
    """Frozen-weight presentations of a batch of images to one network.

    ``quant`` (with its rounding ``generator``) runs the network as a fixed-point device;
    ``tracker`` records the range of u over every step (range analysis).
    """

    def __init__(self, weights: torch.Tensor, theta: torch.Tensor, constants: NetworkConstants, model: ModelConfig,
                 sim: SimConfig, rows_per_block: int = 10_000, quant: QuantPlan | None = None,
                 rounding_generator: torch.Generator | None = None, tracker: MembraneTracker | None = None) -> None:
        self.weights = weights  # [I, N]
        self.requantize_u = None
        if quant is not None:
            constants, model = quant.constants(constants), quant.model(model)
            self.threshold = quant.threshold(theta, constants)  # [N]
            if quant.quantizes_neurons:
                if rounding_generator is None:
                    raise ValueError("quantized neurons need a rounding generator")
                self.requantize_u = quant.batch_membrane_rounder(rounding_generator)
        else:
            self.threshold = theta + constants.exc.thresh  # [N]
        self.state_dtype = quant.state_dtype if quant is not None else torch.float32
        self.c, self.model, self.sim, self.tracker = constants, model, sim, tracker
        self.ops = OpCounts()
        # sparse products of ~10k rows stay cache-resident; larger ones cost up to 5× more per row
        self.rows_per_block = rows_per_block
        # the fused kernel covers tinySNN's direct inhibition with float32 membranes and no range tracking
        self.compiled = (sim.integrator is Integrator.compiled and model.topology is Topology.tinysnn
                         and self.requantize_u is None and tracker is None)

    def present(self, images: torch.Tensor, max_rate_hz: float, generator: torch.Generator) -> torch.Tensor:
        """Spike counts [B, N] for ``images`` [B, I] at the given max rate."""
        probability = spike_probability(images, max_rate_hz, self.sim.dt_ms)
        events = poisson_events(probability, self.sim.steps, generator)
        return self.run(events)

    def run(self, events: SpikeEvents) -> torch.Tensor:
        batch, n = events.streams, self.c.n_neurons
        device = self.weights.device
        layer = _BatchState(u=torch.zeros(batch, n, device=device, dtype=self.state_dtype),
                            last_spike=torch.full((batch, n), NEVER, device=device),
                            counts=torch.zeros(batch, n, device=device),
                            inhibition=make_inhibition(self.model, self.c, (batch, n), device))
        time_block = max(1, self.rows_per_block // batch)
        if self.compiled:  # whole kernel calls per block: one compiled kernel serves the run
            time_block = INFERENCE_KERNEL_STEPS * max(1, time_block // INFERENCE_KERNEL_STEPS)
            layer.arriving = torch.zeros(layer.inhibition.delay, batch, n, device=device)  # type: ignore[union-attr]
        for start in range(0, events.steps, time_block):
            stop = min(start + time_block, events.steps)
            # fixed-point membranes integrate in float64, where weight sums plus inhibition are exact
            currents = self._block_current(events, start, stop).to(self.state_dtype)
            (self._advance_compiled if self.compiled else self._advance_steps)(layer, currents, start)
        self.ops.presentations += batch
        self.ops.input_spikes += events.row.numel()
        self.ops.exc_spikes += int(layer.counts.sum())
        self.ops.inh_spikes += layer.inhibition.spike_count
        return layer.counts

    def _advance_steps(self, layer: "_BatchState", currents: torch.Tensor, start: int) -> None:
        """The step path over a block of steps with X→E ``currents`` [steps, B, N] (consumed)."""
        exc = self.c.exc
        for step in range(start, start + currents.shape[0]):
            current = currents[step - start]
            inh = layer.inhibition.current(step)
            if inh is not None:
                current.add_(inh)
            spikes = integrate_(layer.u, current, layer.last_spike, self.threshold, step, exc,
                                requantize=self.requantize_u)
            if self.tracker is not None:
                self.tracker.update(layer.u)
            reset_(layer.u, layer.last_spike, spikes, step, exc)
            layer.counts.add_(spikes)
            if bool(spikes.any()):
                layer.inhibition.exc_spiked(step, spikes)

    def _advance_compiled(self, layer: "_BatchState", currents: torch.Tensor, start: int) -> None:
        """The same block in fused kernels of INFERENCE_KERNEL_STEPS steps (θ frozen: θ_plus = 0)."""
        for first in range(0, currents.shape[0], INFERENCE_KERNEL_STEPS):
            # V_th = self.threshold + 0 and θ_plus = 0
            layer.u, layer.last_spike, _, counts, layer.arriving = run_lif_window(
                layer.u, layer.last_spike, self.threshold, layer.arriving, currents[first:first + INFERENCE_KERNEL_STEPS],
                start + first, self.c.exc, thresh=0.0, theta_plus=0.0, w_inh=layer.inhibition.weight)  # type: ignore[union-attr]
            layer.counts.add_(counts)

    def _block_current(self, events: SpikeEvents, start: int, stop: int) -> torch.Tensor:
        """X→E current of steps [start, stop) for all images: one sparse product, [stop−start, B, N]."""
        batch, n_inputs = events.streams, self.c.n_inputs
        lo, hi = torch.searchsorted(events.time, torch.tensor([start, stop], device=events.time.device)).tolist()
        time, stream, row = events.time[lo:hi], events.stream[lo:hi], events.row[lo:hi]
        current = spike_matrix_product((time - start) * batch + stream, row - stream * n_inputs,
                                       (stop - start) * batch, self.weights)
        return current.view(stop - start, batch, -1)


def spike_matrix_product(slots: torch.Tensor, rows: torch.Tensor, n_slots: int, weights: torch.Tensor) -> torch.Tensor:
    """[n_slots, N]: for each slot, the sum of the weight rows its input spikes select.

    ``slots`` (non-decreasing) and ``rows`` list one spike each; the spikes form a CSR matrix
    [n_slots, rows of weights] multiplied with ``weights`` — no gathered copy of the rows, and
    each slot's rows are summed in event order, as a sequential index_add would.
    """
    crow = torch.zeros(n_slots + 1, dtype=torch.long, device=slots.device)
    crow[1:] = torch.bincount(slots, minlength=n_slots).cumsum(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its stable product
        warnings.simplefilter("ignore", UserWarning)
        spikes = torch.sparse_csr_tensor(crow, rows, torch.ones_like(rows, dtype=weights.dtype),
                                         size=(n_slots, weights.shape[0]))
    return spikes @ weights


def make_training_simulator(params: NetworkParams, constants: NetworkConstants, rule: LearningRule,
                            model: ModelConfig, sim: SimConfig, generators: list[torch.Generator],
                            quant: ReplicaPlans | None = None) -> TrainingSimulator:
    """The kernel that fits the rule: windowed for tinySNN's rule, per-step for spike-driven STDP."""
    if isinstance(rule, AdaptivePotentiation):
        return WindowedTrainingSimulator(params, constants, rule, model, sim, generators, quant)
    return TrainingSimulator(params, constants, rule, model, sim, generators, quant)
