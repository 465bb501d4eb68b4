"""Integer-only evaluation of a qWN export with direct lateral inhibition (tinySNN's network).

Everything is an int64 code: the membrane code c (u = c·ε_V), weight codes (w = c_w·ε_w), reset
and inhibition on the membrane grid, thresholds on their own grid (V_th = c_th·ε_T), and the decay
A (α_q = A·2^−f). One step, with n_V, n_w the fractional bits of the membrane and weight formats
and s = max(f, n_w − n_V):

    x·2^s = A·c·2^(s−f) + Σc_w·2^(s−n_w+n_V) − inh·2^s      (x = u_new / ε_V, exact)
    truncate: c ← x·2^s >> s;  nearest: c ← (x·2^s + 2^(s−1)) >> s;
    stochastic: c ← (x·2^s·2^(t−s) + r·2^(t−24)) >> t,  t = max(s, 24), r = floor(U·2^24)

then saturation to the membrane format, spikes where c·2^(m−n_V) ≥ c_th·2^(m−n_T) with
m = max(n_V, n_T) (both grids aligned, exact), reset, refractory as in the simulator.
The stochastic U comes from the same float32 draws as the simulator's (same generator, same
order), so on the same input spikes the spike counts — hence the predictions — are identical.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import Rounding
from ..encoding import SpikeEvents
from .formats import FixedPoint

_U_BITS = 24  # torch.rand float32 carries 24 random bits


def integer_counts(export: dict[str, Any], events: SpikeEvents, replica: int = 0,
                   rounding_generator: torch.Generator | None = None) -> torch.Tensor:
    """Spike counts [B, N] (int64) of ``events`` through replica ``replica`` of a qWN tinySNN export."""
    if "membrane_format" not in export:
        raise ValueError("integer-only evaluation needs a qWN export (quant.target=wn): a qW export keeps FP32 "
                         "neuron state")
    if export["topology"] != "tinysnn":
        raise ValueError("integer-only evaluation covers direct lateral inhibition (model=tinysnn) only")
    rounding = Rounding(export["rounding"])
    if rounding is Rounding.stochastic and rounding_generator is None:
        raise ValueError("stochastic rounding needs the rounding generator the simulator used")
    membrane = FixedPoint(**export["membrane_format"])
    threshold_format = FixedPoint(**export["threshold_format"])
    weight = FixedPoint(**export["weight_format"])
    weights = export["weights"][replica].to(torch.int64)  # [I, N]
    # u and V_th compared on the finer of their grids: u·2^(m−n_V) ≥ V_th·2^(m−n_T)
    finest = max(membrane.frac_bits, threshold_format.frac_bits)
    v_th = export["v_th"][replica].to(torch.int64) * 2 ** (finest - threshold_format.frac_bits)
    u_scale = 2 ** (finest - membrane.frac_bits)
    decay, f = int(export["decay"]), int(export["decay_frac_bits"])
    reset, inhibition, delay = int(export["reset"]), int(export["inhibition"]), int(export["lateral_delay_steps"])
    refrac = int(export["refrac_steps"])
    s = max(f, weight.frac_bits - membrane.frac_bits)
    t = max(s, _U_BITS)
    weight_shift = s - weight.frac_bits + membrane.frac_bits

    batch, n_inputs, n = events.streams, weights.shape[0], weights.shape[1]
    u = torch.zeros(batch, n, dtype=torch.int64)
    last_spike = torch.full((batch, n), -(10**9), dtype=torch.int64)
    counts = torch.zeros(batch, n, dtype=torch.int64)
    scheduled: dict[int, torch.Tensor] = {}
    per_step = torch.bincount(events.time, minlength=events.steps).tolist()
    streams_by_step = torch.split(events.stream, per_step)
    rows_by_step = torch.split(events.row - events.stream * n_inputs, per_step)
    for step in range(events.steps):
        synaptic = torch.zeros(batch, n, dtype=torch.int64)
        synaptic.index_add_(0, streams_by_step[step], weights.index_select(0, rows_by_step[step]))
        x = synaptic * 2**weight_shift
        inhibited = scheduled.pop(step, None)
        if inhibited is not None:
            x -= inhibited * (inhibition * 2**s)
        x.masked_fill_(last_spike >= step - refrac, 0)  # refractory: input ignored
        x += decay * u * 2 ** (s - f)
        if rounding is Rounding.truncate:
            u = x >> s
        elif rounding is Rounding.nearest:
            u = (x + 2 ** (s - 1)) >> s
        else:
            assert rounding_generator is not None
            noise = torch.rand((batch, n), generator=rounding_generator, dtype=torch.float32)
            r = (noise.double() * 2**_U_BITS).to(torch.int64)
            u = (x * 2 ** (t - s) + r * 2 ** (t - _U_BITS)) >> t
        u.clamp_(membrane.min_code, membrane.max_code)
        spikes = u * u_scale >= v_th
        u.masked_fill_(spikes, reset)
        last_spike.masked_fill_(spikes, step)
        counts += spikes
        if bool(spikes.any()):
            # each spike inhibits every other neuron: Σ_k s_k − s_j
            scheduled[step + delay] = spikes.sum(1, keepdim=True) - spikes.long()
    return counts
