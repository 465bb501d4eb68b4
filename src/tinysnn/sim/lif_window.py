"""tinySNN's excitatory layer over a run of steps as one fused kernel (``sim.integrator=compiled``).

The reference step (``tinysnn.sim.layer.ExcitatoryLayer.step_``: ``neurons.integrate_``/``reset_``
plus ``inhibition.DirectInhibition``) launches
five to ten small tensor operations per step and branches on whether anyone fired; at 400
neurons each launch costs more than its arithmetic. ``lif_window`` does the same arithmetic
branch-free, in the same order and dtype, for every step of a window: a neuron that did not
fire takes the ``where`` branch that leaves it unchanged, inhibition from a step without spikes
is (0 − 0)·w_inh = 0, and adding +0 changes no current. ``torch.compile`` (inductor) unrolls the
window into one C++ (or Triton) kernel, so a 25-step window costs one call instead of ~150.
Only elementwise operations and a sum of 0/1 spike indicators (exact in any order) are involved,
so the compiled kernel gives the step path's spikes, u, θ and weights bit for bit (tested).

On a fixed-point device (qWN, ``lif_window_fixed_point``) the quantizer stores u after every step
and θ after every spike on their grids; the kernel rounds at the same places with ``rounded``
(the rounding kernel's exact steps, out of place). Stochastic rounding takes its U from slots
drawn before the window (``FixedPointQuantizer.draw_ahead``) in the order the step path draws
them: each step's u the next slot of its row, a spike's θ the one after.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from ..neurons import LIFConstants
from ..quant.rounding import Grid, rounded

#: one number for every stream, or a [S, 1] tensor (an ITQ grid's replicas on different grids)
Scalar = float | torch.Tensor


def lif_window(u: torch.Tensor, last_spike: torch.Tensor, theta: torch.Tensor, inhibition: torch.Tensor,
               currents: torch.Tensor, first_step: torch.Tensor, decay: float, thresh: Scalar, reset: float,
               refrac_steps: int, theta_plus: float, w_inh: Scalar) -> tuple[torch.Tensor, ...]:
    """Advance S streams of N LIF neurons with direct lateral inhibition over ``W = len(currents)`` steps.

    u, last_spike [S, N]: membrane (relative to rest) and step of each neuron's last spike;
    theta [S, N] or [N]: adaptive threshold θ, raised by θ_plus at each spike (θ_plus = 0: frozen);
    inhibition [d, S, N]: lateral inhibition arriving at steps first_step … first_step + d − 1
    (d = the inhibition delay); currents [W, S, N]: X→E current per step; first_step: 0-dim float.

    Returns (u, last_spike, θ, spike counts [S, N] of the window, inhibition [d, S, N] arriving
    at the d steps after the window).
    """
    steps = currents.shape[0]
    arriving = list(inhibition.unbind(0))
    counts = torch.zeros_like(u)
    for i in range(steps):
        step = first_step + i
        current = currents[i] + arriving[i]
        current = torch.where(last_spike >= step - refrac_steps, 0.0, current)  # refractory: input ignored
        u = u * decay + current  # u ← α·u + I
        spikes = u >= theta + thresh  # V_th = u_th + θ
        u = torch.where(spikes, reset, u)
        last_spike = torch.where(spikes, step, last_spike)
        fired = spikes.to(u.dtype)
        theta = theta + fired * theta_plus  # θ ← θ + θ_plus at each spike
        counts = counts + fired
        arriving.append((fired - fired.sum(-1, keepdim=True)) * w_inh)  # −w_inh·(Σ_k s_k − s_j), d steps later
    return u, last_spike, theta, counts, torch.stack(arriving[steps:])


def lif_window_fixed_point(u: torch.Tensor, last_spike: torch.Tensor, theta: torch.Tensor,
                           inhibition: torch.Tensor, currents: torch.Tensor, first_step: torch.Tensor, decay: float,
                           thresh: torch.Tensor, reset: float, refrac_steps: int, theta_plus: float,
                           w_inh: torch.Tensor, membrane: Grid, threshold: Grid | None,
                           offsets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``lif_window`` on a fixed-point device (qWN): u [S, N] float64, where α_q·u + I is exact.

    membrane: u's grid (``FixedPointQuantizer.kernel_grid``); u ← round(α_q·u + I) at every step.
    threshold: θ's grid, where V_th = u_th + θ saturates and θ ← round(θ + θ_plus) after a spike;
    None for frozen θ (inference): ``theta`` is then V_th itself, ``thresh`` and ``theta_plus`` unused.
    offsets: the roundings' o [S, K, N] by slot (``DrawnAhead.offsets``: stochastic rounding's
    U, the grid's o for the other rows); each rounding of row s takes its next slot.
    thresh (u_th) and w_inh: [S, 1] or [1, 1] float32 — tensors, as the grids' parameters are: a
    number would be baked into the build, which would then be rebuilt for every format.

    Returns ``lif_window``'s five tensors and the slots each row used [S, 1].
    """
    steps = currents.shape[0]
    arriving = list(inhibition.unbind(0))
    counts = torch.zeros_like(u, dtype=torch.float32)
    slot = torch.zeros(u.shape[0], 1, device=u.device)
    for i in range(steps):
        step = first_step + i
        current = currents[i].to(u.dtype) + arriving[i]
        current = torch.where(last_spike >= step - refrac_steps, 0.0, current)  # refractory: input ignored
        u = rounded(u * decay + current, membrane, _at_slot(offsets, slot))  # u ← round(α_q·u + I)
        slot = slot + 1
        if threshold is None:
            v_th = theta
        else:  # V_th = u_th + θ, saturated to the threshold's format
            v_th = (theta + thresh).clamp(threshold.lowest(), threshold.highest())
        spikes = u >= v_th
        u = torch.where(spikes, reset, u)
        last_spike = torch.where(spikes, step, last_spike)
        fired = spikes.to(torch.float32)
        if threshold is not None:
            # θ ← round(θ + θ_plus) at each spike; a θ on its grid rounds to itself with any o, so
            # rounding every row changes only the ones that spiked, which draw the slot after u's
            theta = rounded(theta + fired * theta_plus, threshold, _at_slot(offsets, slot))
            slot = slot + fired.amax(-1, keepdim=True)
        counts = counts + fired
        arriving.append((fired - fired.sum(-1, keepdim=True)) * w_inh)  # −w_inh·(Σ_k s_k − s_j), d steps later
    return u, last_spike, theta, counts, torch.stack(arriving[steps:]), slot


def _at_slot(offsets: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """Each row's offsets [S, N] at its ``slot`` [S, 1] of ``offsets`` [S, K, N]."""
    index = slot.long().unsqueeze(-1).expand(-1, 1, offsets.shape[-1])
    return offsets.gather(1, index).squeeze(1)


#: specialisations of one kernel a process may build (dynamo's default is 8)
RECOMPILE_LIMIT = 64


@functools.cache
def compiled(kernel: Callable[..., tuple[torch.Tensor, ...]]) -> Callable[..., tuple[torch.Tensor, ...]]:
    """``kernel`` compiled once per process (inductor; recompiles per window length and stream count).

    The C++ wrapper calls the kernel without going through Python and memory planning allocates
    its intermediate buffers as one block: together a third of the cost of a plain call at 400 neurons.
    Each (window length, stream count, dtype) is one specialisation, and one process meets many
    (training R, retry subsets, a last short window, inference blocks, ITQ grids): dynamo's default
    limit of 8 per function would end a long run with ``Unsupported`` under ``fullgraph=True``.
    """
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(kernel, fullgraph=True, options={"cpp_wrapper": True, "memory_planning": True})


class CompilerUnavailable(RuntimeError):
    """torch.compile could not build the kernel (no C++ compiler on CPU, no Triton on CUDA)."""


def run_compiled(kernel: Callable[..., tuple[torch.Tensor, ...]], *args: object) -> tuple[torch.Tensor, ...]:
    """``kernel`` compiled, on ``args``; a clear error when this machine cannot compile it."""
    # imported here, not at the top: importing dynamo costs seconds, and a process that only steps never needs it
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        return compiled(kernel)(*args)
    except BackendCompilerFailed as error:  # e.g. "No working C++ compiler found"
        raise CompilerUnavailable(
            f"sim.integrator=compiled could not compile its kernel ({error}); it needs torch.compile's "
            "inductor backend (a C++ compiler such as g++ on CPU, Triton on CUDA); use sim.integrator=step"
        ) from error


def run_lif_window(u: torch.Tensor, last_spike: torch.Tensor, theta: torch.Tensor, inhibition: torch.Tensor,
                   currents: torch.Tensor, first_step: int, c: LIFConstants, *, thresh: Scalar, theta_plus: float,
                   w_inh: Scalar) -> tuple[torch.Tensor, ...]:
    """The compiled ``lif_window`` with neuron constants ``c`` (its u_th replaced by ``thresh``), from
    step ``first_step``."""
    return run_compiled(lif_window, u, last_spike, theta, inhibition, currents,
                        torch.tensor(float(first_step), device=u.device), c.decay, thresh, c.reset, c.refrac_steps,
                        theta_plus, w_inh)


def run_fixed_point_window(u: torch.Tensor, last_spike: torch.Tensor, theta: torch.Tensor, inhibition: torch.Tensor,
                           currents: torch.Tensor, first_step: int, c: LIFConstants, *, thresh: Scalar,
                           theta_plus: float, w_inh: Scalar, membrane: Grid, threshold: Grid | None,
                           offsets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The compiled ``lif_window_fixed_point`` with the device's constants ``c`` (α_q, u_reset), from
    step ``first_step``."""
    def per_row(value: Scalar) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float32, device=u.device).view(-1, 1)

    return run_compiled(lif_window_fixed_point, u, last_spike, theta, inhibition, currents,
                        torch.tensor(float(first_step), device=u.device), c.decay, per_row(thresh), c.reset,
                        c.refrac_steps, theta_plus, per_row(w_inh), membrane, threshold, offsets)
