"""The fused LIF window (tinysnn.kernels) on small synthetic tensors, without compiling it."""

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from tinysnn import kernels
from tinysnn.inhibition import DirectInhibition
from tinysnn.neurons import NEVER, LIFConstants, lif_step_


def test_eager_window_equals_the_step_path_with_direct_inhibition():
    """lif_window without compilation: the same u, last spikes, θ, counts and pending inhibition as
    lif_step_ with DirectInhibition, step by step, across two consecutive windows."""
    c = LIFConstants(decay=0.9, log_decay=-0.105, thresh=1.0, reset=-0.5, refrac_steps=2)
    g = torch.Generator().manual_seed(0)
    currents = torch.rand(12, 3, 5, generator=g) * 0.9
    theta_plus, w_inh = 0.25, 0.3

    u, last_spike, theta = torch.zeros(3, 5), torch.full((3, 5), NEVER), torch.zeros(3, 5)
    inhibition, counts = DirectInhibition(w_inh, delay=2), torch.zeros(3, 5)
    for step in range(12):
        current = currents[step].clone()
        arriving = inhibition.current(step)
        if arriving is not None:
            current.add_(arriving)
        spikes = lif_step_(u, current, last_spike, theta + c.thresh, step, c)
        theta.add_(spikes, alpha=theta_plus)
        counts.add_(spikes)
        if spikes.any():
            inhibition.exc_spiked(step, spikes)
    assert counts.sum() > 5 and (counts > 1).any()

    state = (torch.zeros(3, 5), torch.full((3, 5), NEVER), torch.zeros(3, 5), torch.zeros(2, 3, 5))
    window_counts = []
    for first in (0, 7):  # windows of 7 and 5 steps
        window = currents[first:first + 7]
        *state4, count, arriving_next = kernels.lif_window(
            *state[:3], state[3], window, torch.tensor(float(first)), c.decay, c.thresh, c.reset,
            c.refrac_steps, theta_plus, w_inh)
        state = (*state4, arriving_next)
        window_counts.append(count)
    assert torch.equal(state[0], u) and torch.equal(state[1], last_spike) and torch.equal(state[2], theta)
    assert torch.equal(sum(window_counts), counts)
    for k, step in enumerate((12, 13)):  # inhibition from the last two steps, still on its way
        expected = inhibition.current(step)
        assert torch.equal(state[3][k], expected if expected is not None else torch.zeros(3, 5))


def test_a_missing_compiler_names_the_fix(monkeypatch):
    def fails(*args):
        raise BackendCompilerFailed(fails, RuntimeError("No working C++ compiler found"), None)

    monkeypatch.setattr(kernels, "compiled_lif_window", lambda: fails)
    with pytest.raises(kernels.CompilerUnavailable, match="use sim.integrator=step"):
        kernels.run_lif_window()
