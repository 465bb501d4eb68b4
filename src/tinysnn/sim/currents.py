"""X→E input currents from input spike events: per step and stream, the sum of the weight rows of
the inputs that fired (one builder for training windows and inference blocks)."""

from __future__ import annotations

import warnings

import torch

from ..encoding import SpikeEvents


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


def step_currents(events: SpikeEvents, lo: int, hi: int, start: int, stop: int, weights: torch.Tensor, *,
                  shared: bool, gather_up_to: int = -1) -> torch.Tensor:
    """[stop − start, S, N]: the X→E current of steps [start, stop) of every stream.

    ``lo:hi`` are the events of those steps. ``weights`` is [I, N], shared by every stream
    (``shared``: the images of an inference batch), or [S·I, N], one block per stream (the
    replicas of a training simulation). Up to ``gather_up_to`` events the rows are gathered and
    summed by slot, which is cheaper than building the sparse matrix; both sum in event order.
    """
    streams = events.streams
    time, stream, row = events.time[lo:hi], events.stream[lo:hi], events.row[lo:hi]
    slots = (time - start) * streams + stream
    if shared:
        row = row - stream * weights.shape[0]
    n_slots = (stop - start) * streams
    if hi - lo > gather_up_to:
        current = spike_matrix_product(slots, row, n_slots, weights)
    else:
        current = torch.zeros(n_slots, weights.shape[1], device=weights.device)
        current.index_add_(0, slots, weights.index_select(0, row))
    return current.view(stop - start, streams, -1)
