"""Training with a spike-driven rule (pair STDP, SL-STDP): one presentation for R replicas.

Per step, the X→E current is the sum of the weight rows of the inputs that fired (event-driven
gather, ~6 rows per step on MNIST instead of a dense 784×N product); the excitatory layer takes
the reference step (``tinysnn.sim.layer``); STDP touches only the rows of inputs that fired and
the columns of neurons that fired. Each replica learns one image at a time from its own input
stream; the quantizer stores weights after every update and θ after every change.
"""

from __future__ import annotations

from itertools import accumulate

import torch

from ..config import Integrator, SimConfig
from ..encoding import SpikeEvents, spike_probability, stream_events
from ..learning import LatestSpikes, LearningRule
from ..network import NetworkConstants, NetworkParams, decay_theta_, normalize_weights_
from ..ops import ReplicaOps
from ..quant import Quantizer
from .layer import ExcitatoryLayer


class TrainingSimulator:
    """Presents one image to each of R replicas (each its own input stream and generator)."""

    #: [R, k_max + 1]: updates per replica and adaptive factor k (rules with k only)
    k_counts: torch.Tensor | None = None

    def __init__(self, params: NetworkParams, network: NetworkConstants, rule: LearningRule, sim: SimConfig,
                 generators: list[torch.Generator], quant: Quantizer) -> None:
        self.params, self.network, self.rule, self.sim, self.quant = params, network, rule, sim, quant
        self.generators = generators
        self.device = quant.device_constants(network)
        replicas, n = params.replicas, network.n_neurons
        torch_device = params.weights.device
        self.layer = ExcitatoryLayer(self.device, replicas, quant, torch_device)
        self.post_trace = torch.zeros(replicas, n, device=torch_device)
        #: replicas whose x_post is live (their rows change at presynaptic spikes)
        self.post_live = torch.zeros(replicas, dtype=torch.bool, device=torch_device)
        #: the step each replica's x_post became live (its row updates count from there)
        self.live_from = torch.zeros(replicas, dtype=torch.long, device=torch_device)
        self.no_current = torch.zeros(replicas, n, device=torch_device)
        self.threshold = quant.threshold(params.theta, self.device)
        self.ops = ReplicaOps(replicas, torch_device)

    def restricted(self, replicas: list[int]) -> "TrainingSimulator":
        """A simulator of only ``replicas``: copies of their parameters, their own generators and rounding.

        Replicas never interact, so a retry that concerns a few replicas runs on this smaller
        simulation (then ``write_back``) at the cost of those few instead of all R.
        """
        return type(self)(self.params.of(replicas), self.network, self.rule, self.sim,
                          [self.generators[r] for r in replicas], self.quant.restricted(replicas))

    def write_back(self, part: "TrainingSimulator", replicas: list[int]) -> None:
        """Take the parameters and op counts of ``part = self.restricted(replicas)`` after it ran."""
        self.params.weights[replicas] = part.params.weights
        self.params.theta[replicas] = part.params.theta
        self.ops.add_rows_(replicas, part.ops)

    def restore(self, params: NetworkParams, ops: ReplicaOps, k_counts: torch.Tensor | None,
                generator_states: list[torch.Tensor], rounding_states: list[torch.Tensor]) -> None:
        """Put the simulation back where a training stopped: its parameters, op and k counts, and the
        states of its input and stochastic-rounding generators."""
        self.params.weights.copy_(params.weights)
        self.params.theta.copy_(params.theta)
        self.ops.table.copy_(ops.table)
        if self.k_counts is not None:
            assert k_counts is not None
            self.k_counts.copy_(k_counts)
        for generator, state in zip([*self.generators, *self.quant.generators],
                                    [*generator_states, *rounding_states], strict=True):
            generator.set_state(state)

    def k_counts_so_far(self) -> torch.Tensor | None:
        """A copy of ``k_counts`` for the training log (None for rules without k)."""
        return self.k_counts.clone() if self.k_counts is not None else None

    def plan(self, images: int) -> None:
        """Told that a pass of ``images`` images per replica follows: ``sim.integrator=auto`` chooses
        its integrator for it (the spike-driven rules have only the step path)."""

    @property
    def integrator(self) -> Integrator:
        """The integrator windows advance with now (``auto`` resolved; the spike-driven rules step)."""
        return Integrator.step

    def encode(self, images: torch.Tensor, max_rate_hz: float) -> SpikeEvents:
        """Input events of every replica (each draws from its own generator)."""
        return stream_events(spike_probability(images, max_rate_hz, self.sim.dt_ms), self.sim.steps, self.generators)

    def present(self, images: torch.Tensor, max_rate_hz: float, eta: float) -> torch.Tensor:
        """Simulate one presentation of ``images`` [R, I] (one per replica) with η_post ``eta``;
        returns spike counts [R, N]."""
        return self.run(self.encode(images, max_rate_hz), eta)

    def end_presentation(self) -> None:
        """θ decays and weights are renormalised; the device stores both."""
        decay_theta_(self.params.theta, self.sim.steps, self.network)
        self._normalize_and_store_weights()
        self.quant.store_theta_(self.params.theta)
        self.ops.count_each_("normalizations")

    def _normalize_and_store_weights(self) -> None:
        """Each neuron's incoming weights scaled to sum to the normalisation total, then stored (every replica)."""
        normalize_weights_(self.params.weights, self.network.weight_norm_total)
        self.quant.store_weights_(self.params.weights)

    def _start_presentation(self, events: SpikeEvents) -> None:
        """Reset the per-presentation state (θ and weights persist) and count the presentation."""
        self.ops.count_each_("presentations")
        self.ops.count_("input_spikes", events.per_stream())
        self.layer.reset()
        self.threshold = self.quant.threshold(self.params.theta, self.device)

    def _excitatory_step(self, step: int, current: torch.Tensor) -> torch.Tensor | None:
        """The reference step with X→E ``current`` [R, N] (consumed); on spikes θ rises.

        Returns the bool spikes [R, N] when any neuron fired, else None.
        """
        spikes = self.layer.step_(current, step, self.threshold)
        if spikes is not None:
            self._raise_theta(spikes)
        return spikes

    def _raise_theta(self, spikes: torch.Tensor) -> None:
        """θ ← θ + θ_plus at each spike; the thresholds follow."""
        self.params.theta.add_(spikes, alpha=self.network.theta_plus)
        self.quant.store_theta_(self.params.theta, spikes)
        self.threshold = self.quant.threshold(self.params.theta, self.device)

    def run(self, events: SpikeEvents, eta: float) -> torch.Tensor:
        rule, params, n_inputs = self.rule, self.params, self.network.n_inputs
        n_rows = params.replicas * n_inputs
        weights = params.weights
        weights_flat = weights.view(n_rows, self.network.n_neurons)
        post_trace = self.post_trace
        post_trace.zero_()
        self.post_live.zero_()
        self._start_presentation(events)

        per_step = events.counts_per_step()
        rows_by_step = torch.split(events.row, per_step)
        streams_by_step = torch.split(events.stream, per_step)
        events_until = list(accumulate(per_step))
        latest_inputs = LatestSpikes(n_rows, weights.device)  # x_pre at a spike without rescanning the events
        # x_post only feeds presynaptic-spike updates, and is zero until the first excitatory spike
        post_trace_live = False

        for step in range(events.steps):
            rows_idx, streams = rows_by_step[step], streams_by_step[step]
            rows = weights_flat.index_select(0, rows_idx)
            spikes = self._excitatory_step(step, self.no_current.index_add(0, streams, rows))
            if post_trace_live:
                post_trace.mul_(rule.post_decay)
            if spikes is not None and rule.post_decay is not None:
                post_trace.masked_fill_(spikes, 1.0)
                post_trace_live = True
                fired = spikes.any(1)
                self.live_from.masked_fill_(fired & ~self.post_live, step)
                self.post_live |= fired
            if post_trace_live and rows_idx.numel():
                rule.pre_update_(rows, post_trace.index_select(0, streams))  # type: ignore[attr-defined]
                # a replica's rows change (and draw rounding noise) only once its own x_post is live
                self.quant.store_slices_(rows, streams, self.post_live)
                weights_flat.index_copy_(0, rows_idx, rows)
            if spikes is not None:
                end = events_until[step]
                latest_inputs.through(events.time, events.row, end)
                pre_trace = latest_inputs.trace_at(step, events.time, events.row, end, rule.pre_decay_log)
                replica_idx, neuron_idx = spikes.nonzero(as_tuple=True)
                cols = weights[replica_idx, :, neuron_idx]  # [k, I]
                self.ops.count_at_("column_updates", replica_idx)
                rule.post_update_(cols, pre_trace.view(params.replicas, n_inputs)[replica_idx], eta)
                self.quant.store_slices_(cols, replica_idx)
                weights[replica_idx, :, neuron_idx] = cols
        if post_trace_live:
            self._count_row_updates(events)
        return self._finish_presentation(self.layer.counts)

    def _count_row_updates(self, events: SpikeEvents) -> None:
        """A replica's rows are updated at each of its input spikes from the step its x_post became live."""
        live = self.post_live[events.stream] & (events.time >= self.live_from[events.stream])
        self.ops.count_("row_updates", torch.bincount(events.stream[live], minlength=self.params.replicas))

    def _finish_presentation(self, counts: torch.Tensor) -> torch.Tensor:
        """Count the presentation's spikes ``counts`` [R, N]; return a copy."""
        self.ops.count_("exc_spikes", counts.sum(1, dtype=torch.int64))
        inh_spikes = self.layer.inhibition.spike_counts
        if inh_spikes is not None:
            self.ops.count_("inh_spikes", inh_spikes)
        return counts.clone()
