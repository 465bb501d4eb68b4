"""Presentations a fixed-point membrane provably sleeps through: their outcome is known without simulating them.

On a fixed-point membrane with deterministic rounding (qWN, truncate or nearest), u starts a
presentation at rest, u = 0, and every step stores u ← floor((α_q·u + I_t)/ε + o)·ε. While
u = 0 and 0 ≤ I_t < (1 − o)·ε (``Quantizer.rest_current_limit``), u stays exactly 0; with every
threshold V_th = u_th + θ > 0 no neuron fires, so no inhibition arrives, θ does not rise and no
weight is updated. Such a presentation ends with no spike, u at rest, θ and the weights as they
were, and its input spikes drawn and counted — the simulators' outcome, bit for bit.

The current of neuron n at step t sums the weights w_jn ≥ 0 of the inputs j that fired then, so
B_t = Σ_j max_n w_jn bounds it; B_t below the limit at every step proves a replica's (training)
or an image's (inference) presentation silent. A training replica whose B_t is close is checked
against its exact currents, and so is each compiled training window where every replica rests
(``WindowedTrainingSimulator._rests_through``).

Why it matters: at 4 bits a qWN membrane's step ε is 32 mV against ≈ 1 mV per input spike, so
such networks never fire, and D&C's retry rule presents each image to them six times.
"""

from __future__ import annotations

import torch

from ..encoding import SpikeEvents
from ..ops import OpCounts, ReplicaOps
from .currents import spike_matrix_product

#: a training replica whose bound B_t exceeds its limit by less than this factor is checked against its
#: exact currents (one sparse product): at the raised rates of retries B_t, a sum of row maxima, is loose
EXACT_WITHIN = 4.0

#: a float32 sum of at most 784 non-negative weights (an input fires at most once a step) exceeds
#: its exact value by less than this factor, in any order: (1 + 2^−24)^784 < 1 + 2^−14 (and two
#: sums of the same currents, in different orders, differ by less)
SUM_MARGIN = 1.0 + 2.0 ** -10


def largest_step_bound(events: SpikeEvents, row_max: torch.Tensor, *, shared: bool) -> torch.Tensor:
    """[S] (float64): each stream's largest B_t = Σ_j max_n w_jn over the inputs j that fired at step t.

    row_max (float64): max_n w_jn, [S·I] one block per stream (the replicas of a training
    simulation), or [I] for one network ``shared`` by every stream (the images of an inference batch).
    """
    rows = events.row - events.stream * row_max.numel() if shared else events.row
    bound = torch.zeros(events.streams * events.steps, dtype=torch.float64, device=row_max.device)
    bound.index_add_(0, events.stream * events.steps + events.time, row_max[rows])
    return bound.view(events.streams, events.steps).amax(1)


def silent_streams(events: SpikeEvents, row_max: torch.Tensor, rest_limit: torch.Tensor, *,
                   shared: bool) -> torch.Tensor:
    """bool [S]: the streams of ``events`` whose every step's B_t is below ``rest_limit`` [S] (with
    ``SUM_MARGIN``; ``largest_step_bound``)."""
    return largest_step_bound(events, row_max, shared=shared) * SUM_MARGIN < rest_limit


def silent_replicas(events: SpikeEvents, weights: torch.Tensor, threshold: torch.Tensor,
                    rest_limit: torch.Tensor) -> torch.Tensor:
    """bool [R]: the replicas of a training simulation that ``events`` (R streams) provably leave silent.

    weights [R, I, N] (non-negative), threshold [R, N]: V_th as the device holds it, rest_limit [R]:
    ``Quantizer.rest_current_limit`` (−inf where no presentation can be proven silent).
    """
    replicas, n_inputs, _ = weights.shape
    candidates = (rest_limit > 0) & (threshold.amin(1) > 0)
    if not bool(candidates.any()):
        return candidates
    row_max = torch.zeros(replicas, n_inputs, dtype=torch.float64, device=weights.device)
    for r in candidates.nonzero().flatten().tolist():  # only where it can prove anything
        row_max[r] = weights[r].amax(1)
    bound = largest_step_bound(events, row_max.view(-1), shared=False)
    silent = candidates & (bound * SUM_MARGIN < rest_limit)
    unsure = candidates & ~silent & (bound < EXACT_WITHIN * rest_limit)
    if bool(unsure.any()):
        silent |= unsure & (largest_current(events, weights, unsure) * SUM_MARGIN < rest_limit)
    return silent


def largest_current(events: SpikeEvents, weights: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """[R] (float64): the largest step current any neuron of each replica in ``which`` [R] gets from
    ``events`` with ``weights`` [R, I, N] (one sparse product for them all); 0 for the others."""
    replicas, _, n = weights.shape
    chosen = which.nonzero().flatten()
    local = torch.full((replicas,), -1, dtype=torch.long, device=weights.device)
    local[chosen] = torch.arange(chosen.numel(), device=weights.device)
    keep = which[events.stream]
    slots = events.time[keep] * chosen.numel() + local[events.stream[keep]]  # time-major: non-decreasing
    current = spike_matrix_product(slots, events.row[keep], events.steps * chosen.numel(), weights.view(-1, n))
    largest = torch.zeros(replicas, dtype=torch.float64, device=weights.device)
    largest[chosen] = current.view(events.steps, chosen.numel(), n).amax((0, 2)).double()
    return largest


def provable_row_max(weights: torch.Tensor, threshold: torch.Tensor, rest_limit: torch.Tensor | None
                     ) -> torch.Tensor | None:
    """max_n w_jn [I] (float64) of a frozen network (weights [I, N], threshold [N]) whose
    presentations can be proven silent (a deterministic grid, every V_th > 0); None where none can."""
    if rest_limit is None or not bool((rest_limit > 0).all()) or not bool((threshold > 0).all()):
        return None
    return weights.amax(1).double()


def count_skipped_(ops: OpCounts | ReplicaOps, events: SpikeEvents, silent: torch.Tensor) -> None:
    """Count the presentations of the streams ``silent`` [S] that were not simulated: each was presented
    and its input spikes drawn; it made no spike."""
    ops.count_("presentations", silent.long())
    ops.count_("input_spikes", events.per_stream() * silent)
