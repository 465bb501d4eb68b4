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
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch._dynamo.exc import BackendCompilerFailed

from ..neurons import LIFConstants

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


@functools.cache
def compiled_lif_window() -> Callable[..., tuple[torch.Tensor, ...]]:
    """``lif_window`` compiled once per process (inductor; recompiles per window length and stream count).

    The C++ wrapper calls the kernel without going through Python and memory planning allocates
    its intermediate buffers as one block: together a third of the cost of a plain call at 400 neurons.
    """
    return torch.compile(lif_window, fullgraph=True, options={"cpp_wrapper": True, "memory_planning": True})


class CompilerUnavailable(RuntimeError):
    """torch.compile could not build the kernel (no C++ compiler on CPU, no Triton on CUDA)."""


def run_lif_window(u: torch.Tensor, last_spike: torch.Tensor, theta: torch.Tensor, inhibition: torch.Tensor,
                   currents: torch.Tensor, first_step: int, c: LIFConstants, *, thresh: Scalar, theta_plus: float,
                   w_inh: Scalar) -> tuple[torch.Tensor, ...]:
    """The compiled ``lif_window`` with neuron constants ``c`` (its u_th replaced by ``thresh``), from
    step ``first_step``; a clear error when this machine cannot compile it."""
    args = (u, last_spike, theta, inhibition, currents, torch.tensor(float(first_step), device=u.device),
            c.decay, thresh, c.reset, c.refrac_steps, theta_plus, w_inh)
    try:
        return compiled_lif_window()(*args)
    except BackendCompilerFailed as error:  # e.g. "No working C++ compiler found"
        raise CompilerUnavailable(
            f"sim.integrator=compiled could not compile its kernel ({error}); it needs torch.compile's "
            "inductor backend (a C++ compiler such as g++ on CPU, Triton on CUDA); use sim.integrator=step"
        ) from error
