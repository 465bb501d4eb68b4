"""The fused LIF windows (tinysnn.sim.lif_window), FP32 and fixed point, and the rounding they draw
ahead, on small synthetic tensors, without compiling them."""

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from tinysnn.config import Topology
from tinysnn.inhibition import DirectInhibition
from tinysnn.network import DeviceConstants, NetworkConstants
from tinysnn.neurons import NEVER, LIFConstants
from tinysnn.quant import FixedPoint, FixedPointQuantizer, FP32Quantizer, QuantSpec, Rounding
from tinysnn.quant.rounding import rounded
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

    monkeypatch.setattr(kernels, "compiled", lambda kernel: fails)
    c = LIFConstants(decay=0.9, log_decay=-0.105, thresh=1.0, reset=-0.5, refrac_steps=2)
    state = torch.zeros(1, 4)
    with pytest.raises(kernels.CompilerUnavailable, match="use sim.integrator=step"):
        kernels.run_lif_window(state, state, state, torch.zeros(2, 1, 4), torch.zeros(3, 1, 4), 0, c,
                               thresh=c.thresh, theta_plus=0.1, w_inh=0.3)


# --- the fixed-point window (qWN) ------------------------------------------------------------

W8 = FixedPoint(8, 8, False)


def fixed_point_specs() -> list[QuantSpec]:
    """Three replicas on different grids and roundings: per-row kernel grids, U drawn for one row."""
    return [QuantSpec(W8, FixedPoint(8, 4, True), FixedPoint(8, 5, False), Rounding.stochastic, 16),
            QuantSpec(W8, FixedPoint(6, 2, True), FixedPoint(6, 3, False), Rounding.nearest, 16),
            QuantSpec(W8, FixedPoint(8, 4, True), FixedPoint(8, 5, False), Rounding.truncate, 16)]


def fixed_point_quantizer(specs: list[QuantSpec] | None = None) -> FixedPointQuantizer:
    specs = specs if specs is not None else fixed_point_specs()
    return FixedPointQuantizer(specs, [torch.Generator().manual_seed(40 + r) for r in range(len(specs))])


def states(quant: FixedPointQuantizer) -> list[torch.Tensor]:
    return [g.get_state() for g in quant.generators]


@pytest.mark.parametrize("kind", ["membrane", "threshold"])
def test_kernel_rounding_equals_the_quantizers(kind):
    """``rounded`` with drawn-ahead offsets: store_membrane_ / store_theta_'s values and draws, row by row."""
    dtype = torch.float64 if kind == "membrane" else torch.float32
    steps = torch.tensor([1 / 16, 1 / 4, 1 / 16], dtype=dtype).view(3, 1)
    # grid points, halves (ties), arbitrary values and values beyond either end of the formats
    x = torch.cat([torch.arange(-6, 6, dtype=dtype).expand(3, -1) * steps * 3,
                   (torch.arange(-6, 6, dtype=dtype).expand(3, -1) + 0.5) * steps,
                   torch.linspace(-40, 40, 30, dtype=dtype).expand(3, -1)], 1)
    stored, kernel = fixed_point_quantizer(), fixed_point_quantizer()
    expected = x.clone()
    getattr(stored, "store_membrane_" if kind == "membrane" else "store_theta_")(expected)
    offsets = kernel.draw_ahead(x.shape, slots=1, used=1).offsets[:, 0]
    assert torch.equal(rounded(x, kernel.kernel_grid(kind, x), offsets), expected)
    assert all(torch.equal(a, b) for a, b in zip(states(stored), states(kernel)))


@pytest.mark.parametrize("replicas", [1, 3])
def test_drawn_slots_are_the_step_paths_draws_and_settle_where_it_stops(replicas):
    """Slot k of row r holds the k-th rounding's U (a quantizer of one replica draws the whole
    tensor); ``settle_`` leaves each generator after the slots its row used."""
    quant = fixed_point_quantizer(fixed_point_specs()[:replicas])
    rows = 4 if replicas == 1 else replicas
    drawn = quant.draw_ahead(torch.Size((rows, 5)), slots=13, used=4)
    used = [9] if replicas == 1 else [9, 4, 13]
    drawn.settle_(used)
    reference = fixed_point_quantizer(fixed_point_specs()[:replicas])
    if replicas == 1:
        expected = torch.stack([torch.rand(rows, 5, generator=reference.generators[0]) for _ in range(13)], 1)
        assert torch.equal(drawn.offsets, expected)
    else:
        assert torch.equal(drawn.offsets[0], torch.stack([torch.rand(5, generator=reference.generators[0])
                                                          for _ in range(13)]))
        assert (drawn.offsets[1] == 0.5).all() and (drawn.offsets[2] == 0.0).all()  # nearest, truncate: o
    settled = fixed_point_quantizer(fixed_point_specs()[:replicas])
    torch.rand(used[0] * (rows if replicas == 1 else 1) * 5, generator=settled.generators[0])
    assert all(torch.equal(a, b) for a, b in zip(states(quant), states(settled)))


def test_eager_fixed_point_window_equals_the_step_path():
    """lif_window_fixed_point without compilation, three replicas on different grids (one rounding
    stochastically): the reference step's u, last spikes, θ, counts and pending inhibition, with the
    quantizer storing u every step and θ after spikes, and the rounding generators where its draws left them."""
    c = LIFConstants(decay=0.9, log_decay=-0.105, thresh=1.0, reset=-0.5, refrac_steps=2)
    theta_plus, n = 0.25, 5
    network = NetworkConstants(topology=Topology.tinysnn, exc=c, inh=c, theta_plus=theta_plus,
                               theta_decay_per_step_log=0.0, n_inputs=4, n_neurons=n, w_exc_inh=0.0, w_inh=0.3,
                               lateral_delay_steps=2, weight_norm_total=1.0)
    currents = torch.rand(12, 3, n, generator=torch.Generator().manual_seed(0)) * 0.9

    stepped = fixed_point_quantizer()
    device = stepped.device_constants(network)
    layer = ExcitatoryLayer(device, 3, stepped, torch.device("cpu"))
    theta = torch.zeros(3, n)
    for step in range(12):  # TrainingSimulator._excitatory_step
        spikes = layer.step_(currents[step].clone(), step, stepped.threshold(theta, device))
        if spikes is not None:
            theta.add_(spikes, alpha=theta_plus)
            stepped.store_theta_(theta, spikes)
    assert layer.counts.sum() > 5 and (layer.counts > 1).any()

    fused = fixed_point_quantizer()
    u, last_spike = torch.zeros(3, n, dtype=torch.float64), torch.full((3, n), NEVER)
    theta_w, arriving, counts = torch.zeros(3, n), torch.zeros(2, 3, n), torch.zeros(3, n)
    membrane, threshold = fused.kernel_grid("membrane", u), fused.kernel_grid("threshold", theta_w)
    for first in (0, 7):  # windows of 7 and 5 steps
        window = currents[first:first + 7]
        drawn = fused.draw_ahead(u.shape, slots=2 * len(window), used=len(window))
        u, last_spike, theta_w, count, arriving, used = kernels.lif_window_fixed_point(
            u, last_spike, theta_w, arriving, window, torch.tensor(float(first)), device.exc.decay,
            torch.as_tensor(device.u_th).view(-1, 1), device.exc.reset, c.refrac_steps, theta_plus,
            torch.as_tensor(device.w_inh).view(-1, 1), membrane, threshold, drawn.offsets)
        drawn.settle_([int(s) for s in used.flatten().tolist()])
        counts += count
    assert torch.equal(u, layer.u) and torch.equal(last_spike, layer.last_spike) and torch.equal(theta_w, theta)
    assert torch.equal(counts, layer.counts)
    pending = [layer.inhibition.current(step) for step in (12, 13)]  # from spikes at steps 10 and 11
    assert any(p is not None for p in pending)
    for k, expected in enumerate(pending):
        assert torch.equal(arriving[k], expected if expected is not None else torch.zeros(3, n))
    assert all(torch.equal(a, b) for a, b in zip(states(stepped), states(fused)))
