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

    u_w, last_spike_w, theta_w = torch.zeros(3, 5), torch.full((3, 5), NEVER), torch.zeros(3, 5)
    arriving, window_counts = torch.zeros(2, 3, 5), torch.zeros(3, 5)
    for first in (0, 7):  # windows of 7 and 5 steps
        u_w, last_spike_w, theta_w, count, arriving = kernels.lif_window(
            u_w, last_spike_w, theta_w, arriving, currents[first:first + 7], torch.tensor(float(first)), c.decay,
            c.thresh, c.reset, c.refrac_steps, theta_plus, w_inh)
        window_counts += count
    assert torch.equal(u_w, u) and torch.equal(last_spike_w, last_spike) and torch.equal(theta_w, theta)
    assert torch.equal(window_counts, counts)
    for k, step in enumerate((12, 13)):  # inhibition from spikes at steps 10 and 11, still on its way
        expected = inhibition.current(step)
        assert expected is not None and torch.equal(arriving[k], expected)


def test_a_missing_compiler_names_the_fix(monkeypatch):
    def fails(*args):
        raise BackendCompilerFailed(fails, RuntimeError("No working C++ compiler found"), None)

    monkeypatch.setattr(kernels, "compiled_lif_window", lambda: fails)
    c = LIFConstants(decay=0.9, log_decay=-0.105, thresh=1.0, reset=-0.5, refrac_steps=2)
    state = torch.zeros(1, 4)
    with pytest.raises(kernels.CompilerUnavailable, match="use sim.integrator=step"):
        kernels.run_lif_window(state, state, state, torch.zeros(2, 1, 4), torch.zeros(3, 1, 4), 0, c,
                               thresh=c.thresh, theta_plus=0.1, w_inh=0.3)
