"""The fused LIF window (tinysnn.sim.lif_window) on small synthetic tensors, without compiling it."""

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from tinysnn.config import Topology
from tinysnn.inhibition import DirectInhibition
from tinysnn.network import DeviceConstants, NetworkConstants
from tinysnn.neurons import NEVER, LIFConstants
from tinysnn.quant import FP32Quantizer
from tinysnn.sim import lif_window as kernels
from tinysnn.sim.layer import ExcitatoryLayer


def test_eager_window_equals_the_step_path_with_direct_inhibition():
    """lif_window without compilation: the same u, last spikes, θ, counts and pending inhibition as
    the reference step (ExcitatoryLayer.step_ with DirectInhibition), step by step, across two
    consecutive windows."""
    c = LIFConstants(decay=0.9, log_decay=-0.105, thresh=1.0, reset=-0.5, refrac_steps=2)
    g = torch.Generator().manual_seed(0)
    currents = torch.rand(12, 3, 5, generator=g) * 0.9
    theta_plus, w_inh = 0.25, 0.3

    network = NetworkConstants(topology=Topology.tinysnn, exc=c, inh=c, theta_plus=theta_plus,
                               theta_decay_per_step_log=0.0, n_inputs=4, n_neurons=5, w_exc_inh=0.0, w_inh=w_inh,
                               lateral_delay_steps=2, weight_norm_total=1.0)
    layer = ExcitatoryLayer(DeviceConstants.fp32(network), 3, FP32Quantizer(), torch.device("cpu"))
    assert isinstance(layer.inhibition, DirectInhibition)
    theta = torch.zeros(3, 5)
    for step in range(12):
        spikes = layer.step_(currents[step].clone(), step, theta + c.thresh)
        if spikes is not None:
            theta.add_(spikes, alpha=theta_plus)
    u, last_spike, counts, inhibition = layer.u, layer.last_spike, layer.counts, layer.inhibition
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
