"""tinySNN's adaptive potentiation and SL-STDP on hand-computed cases."""

import math

import pytest
import torch

from tinysnn.config import LearningConfig, LIFConfig, MaxN, ModelConfig, PreTrace, Rule, SimConfig, Topology
from tinysnn.encoding import SpikeEvents
from tinysnn.inhibition import DirectInhibition
from tinysnn.learning import SLSTDP, AdaptivePotentiation, EtaSchedule, LatestSpikes, build_rule, mean_trace, trace_at
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.quant import FP32Quantizer, Quantizer
from tinysnn.runtime import replica_generators
from tinysnn.sim import WindowedTrainingSimulator, make_training_simulator


def adaptive(**kw) -> AdaptivePotentiation:
    return AdaptivePotentiation.build(LearningConfig(rule=Rule.adaptive, **kw), ModelConfig(), SimConfig())


def update_(rule: AdaptivePotentiation, weights: torch.Tensor, window_counts: torch.Tensor, pre_trace: torch.Tensor,
            eta: float, quant: Quantizer | None = None) -> None:
    """A window's update as the windowed simulator applies it: weights [R, I, N]; window_counts [R, N];
    pre_trace x_pre [R, I]; the columns of neurons that spiked move with k·η_post of their replica,
    and ``quant`` stores them."""
    replica_idx, neuron_idx = (window_counts > 0).nonzero(as_tuple=True)
    k = rule.potentiation_factor(window_counts, window_counts)  # one window: the presentation so far
    cols = weights[replica_idx, :, neuron_idx]
    rule.post_update_(cols, pre_trace[replica_idx], (k[replica_idx] * eta)[:, None])
    if quant is not None:
        quant.store_slices_(cols, replica_idx)
    weights[replica_idx, :, neuron_idx] = cols


def test_potentiation_factor_is_ceil_of_max_count_over_n_th():
    presentation = torch.tensor([[0.0, 3.0, 11.0], [5.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    window = torch.tensor([[0.0, 1.0, 2.0], [5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # maxN 11 → k 3; maxN 5 → k 1; maxN 0 → k 0
    assert adaptive(n_th=5).potentiation_factor(presentation, window).tolist() == [3.0, 1.0, 0.0]
    assert adaptive(n_th=5, max_n=MaxN.window).potentiation_factor(presentation, window).tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("max_n,expected", [(MaxN.presentation, {1: 1, 2: 1, 3: 1, 4: 1}), (MaxN.window, {1: 4})])
def test_k_grows_within_a_presentation_as_the_paper_defines_it(max_n, expected):
    """One neuron driven above threshold at every step fires every 6 steps (5 refractory): spikes at
    0, 6, …, 36 of 40 steps, 2-2-2-1 in the four 12-step windows. With N_th = 2 the paper's maxN
    (the presentation so far: 2, 4, 6, 7) gives k = 1, 2, 3, 4; counted per window, k = 1 each time."""
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=20, n_neurons=1, theta_plus_mv=0.0)
    sim = SimConfig(presentation_ms=40)
    rule = AdaptivePotentiation.build(LearningConfig(rule=Rule.adaptive, n_th=2, update_window_ms=12.0,
                                                     max_n=max_n), model, sim)
    params = NetworkParams(torch.ones(1, 20, 1), torch.zeros(1, 1))
    simulator = make_training_simulator(params, NetworkConstants.build(model, sim), rule, sim,
                                        [torch.Generator()], FP32Quantizer())
    time = torch.arange(40).repeat_interleave(20)
    row = torch.arange(20).repeat(40)
    counts = simulator.run(SpikeEvents(time, torch.zeros_like(time), row, steps=40, streams=1), eta=0.01)
    assert counts.tolist() == [[7.0]]
    assert {k: int(n) for k, n in enumerate(simulator.k_counts[0].tolist()) if n} == expected


def test_only_neurons_that_spiked_move_with_soft_bound():
    rule = adaptive(n_th=2)
    weights = torch.tensor([[[0.5, 0.5], [0.9, 0.2], [0.0, 0.3]]])  # [R=1, I=3, N=2]
    counts = torch.tensor([[3.0, 0.0]])  # neuron 0 spiked 3× → k = ceil(3/2) = 2
    x_pre = torch.tensor([[1.0, 0.5, 0.0]])
    update_(rule, weights, counts, x_pre, eta=0.1)
    # Δw = k·η·x_pre·(w_max − w) = 0.2·x·(1 − w): 0.5 + 0.2·1·0.5, 0.9 + 0.2·0.5·0.1, 0 + 0
    assert torch.allclose(weights[0, :, 0], torch.tensor([0.6, 0.91, 0.0]))
    assert torch.equal(weights[0, :, 1], torch.tensor([0.5, 0.2, 0.3]))  # did not spike


def test_update_never_passes_w_max():
    rule = adaptive(n_th=1)
    weights = torch.full((1, 4, 1), 0.9)
    update_(rule, weights, torch.tensor([[40.0]]), torch.ones(1, 4), eta=0.5)  # k = 40, k·η = 20
    assert torch.all(weights <= 1.0)


def test_window_defaults_to_the_presentation_and_follows_config():
    assert adaptive().window_steps == SimConfig().steps
    assert adaptive(update_window_ms=50.0).window_steps == 50


def test_mean_trace_matches_per_step_definition():
    # input 0 fires at steps 2 and 4 inside window [2, 6); input 1 fired at step 0 before it
    decay_log = -1 / 20
    times, rows = torch.tensor([2, 4]), torch.tensor([0, 0])
    before = torch.tensor([float("-inf"), 0.0])
    got = mean_trace(2, 6, times, rows, 2, decay_log, before)
    d = math.exp(decay_log)
    want0 = (1 + d + 1 + d) / 4
    want1 = (d**2 + d**3 + d**4 + d**5) / 4
    assert torch.allclose(got, torch.tensor([want0, want1]))
    assert math.isclose(float(trace_at(5, times, rows, 2, decay_log)[0]), d, rel_tol=1e-6)


def test_latest_spikes_give_the_traces_of_a_rescan_window_after_window():
    """A presentation's windows in order: the latest spikes before each window and the traces at steps in
    it equal trace_at's rescans of every event up to there, bit for bit."""
    g = torch.Generator().manual_seed(0)
    steps, size, decay_log = 60, 12, -1 / 20
    fired = torch.rand(steps, size, generator=g) < 0.15
    times, rows = fired.nonzero(as_tuple=True)
    latest = LatestSpikes(size, torch.device("cpu"))
    checked = 0
    for start in range(0, steps, 10):
        lo = int(torch.searchsorted(times, start))
        before = latest.through(times, rows, lo)
        rescan = torch.full((size,), float("-inf")).scatter_reduce_(0, rows[:lo], times[:lo].float(), reduce="amax")
        assert torch.equal(before, rescan)
        for step in (start + 3, start + 9):  # two steps of the window, each with its own step's inputs
            end = int(torch.searchsorted(times, step, right=True))
            assert torch.equal(latest.trace_at(step, times, rows, end, decay_log),
                               trace_at(step, times[:end], rows[:end], size, decay_log))
            checked += 1
    assert checked == 12 and latest.passed > 0


def test_sl_stdp_sign_follows_trace_target():
    rule = SLSTDP.build(LearningConfig(rule=Rule.sl_stdp, nu_post=0.1, nu_depression=0.2, x_tar=0.4),
                        ModelConfig(), SimConfig())
    cols = torch.tensor([[0.5, 0.5, 0.5]])
    rule.post_update_(cols, torch.tensor([[1.0, 0.4, 0.0]]), 0.1)  # η_p = η_post = 0.1
    # +0.1·0.6·0.5 = +0.03; no change at the target; −0.2·0.4·0.5 = −0.04
    assert torch.allclose(cols, torch.tensor([[0.53, 0.5, 0.46]]))
    assert rule.post_decay is None  # no presynaptic-spike updates


def test_build_rule_maps_config_to_rule():
    model, sim = ModelConfig(), SimConfig()
    assert isinstance(build_rule(LearningConfig(rule=Rule.sl_stdp), model, sim), SLSTDP)
    assert isinstance(build_rule(LearningConfig(rule=Rule.adaptive), model, sim), AdaptivePotentiation)


def _windowed(model: ModelConfig, sim: SimConfig, learning: LearningConfig, weights: torch.Tensor):
    constants = NetworkConstants.build(model, sim)
    params = NetworkParams(weights=weights[None].clone(), theta=torch.zeros(1, model.n_neurons))
    rule = build_rule(learning, model, sim)
    return make_training_simulator(params, constants, rule, sim, [torch.Generator()], FP32Quantizer()), params


@pytest.mark.parametrize("max_n", list(MaxN))
def test_windowed_kernel_updates_once_per_window(max_n):
    exc = LIFConfig(thresh_mv=-64.5, refrac_ms=0.0)  # fires at u ≥ 0.5 mV, no refractory period
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=2, n_neurons=2, exc=exc, theta_plus_mv=0.0,
                        w_lateral_mv=0.0)
    sim = SimConfig(presentation_ms=20)
    learning = LearningConfig(rule=Rule.adaptive, nu_post=0.1, n_th=1, update_window_ms=10.0, max_n=max_n)
    weights = torch.tensor([[0.6, 0.2], [0.0, 0.7]])  # [I, N]
    simulator, params = _windowed(model, sim, learning, weights)
    assert isinstance(simulator, WindowedTrainingSimulator)
    # input 0 fires at steps 0 and 3 (neuron 0 fires twice), input 1 at step 12 (neuron 1 fires once)
    events = SpikeEvents(time=torch.tensor([0, 3, 12]), stream=torch.zeros(3, dtype=torch.long),
                         row=torch.tensor([0, 0, 1]), steps=20, streams=1)
    counts = simulator.run(events, learning.nu_post)
    assert counts.tolist() == [[2.0, 1.0]]
    d = math.exp(-1 / 20)
    # window 1 ends at step 9: k = ceil(2/1) = 2, x_pre = (d^6, 0): only neuron 0 moves
    w00 = 0.6 + 2 * 0.1 * d**6 * (1 - 0.6)
    # window 2 ends at step 19: x_pre = (d^16, d^7), only neuron 1 moves, with k = ceil(maxN / 1): the
    # presentation's maxN is still neuron 0's 2 spikes, the window's is neuron 1's 1 spike
    k = 2 if max_n is MaxN.presentation else 1
    w01 = 0.2 + k * 0.1 * d**16 * (1 - 0.2)
    w11 = 0.7 + k * 0.1 * d**7 * (1 - 0.7)
    assert torch.allclose(params.weights[0], torch.tensor([[w00, w01], [0.0, w11]]), atol=1e-6)


def test_tinysnn_model_holds_no_inhibitory_population_state():
    model = ModelConfig(topology=Topology.tinysnn, n_neurons=5)
    sim = SimConfig()
    gens = replica_generators(0, 1, torch.device("cpu"))
    params = init_params(model, gens, torch.device("cpu"))
    simulator = make_training_simulator(params, NetworkConstants.build(model, sim),
                                        build_rule(LearningConfig(rule=Rule.adaptive), model, sim), sim, gens,
                                        FP32Quantizer())
    assert isinstance(simulator.layer.inhibition, DirectInhibition)
    assert not [v for v in vars(simulator.layer.inhibition).values() if isinstance(v, torch.Tensor)]
    assert set(vars(params)) == {"weights", "theta"}


def test_adaptive_eta_anneals_geometrically():
    schedule = EtaSchedule.build(LearningConfig(rule=Rule.adaptive, nu_post=0.01, nu_post_final=0.0025))
    rates = [schedule.at(fraction) for fraction in (0.0, 0.5, 1.0)]
    assert rates == pytest.approx([0.01, 0.005, 0.0025])
    constant = EtaSchedule.build(LearningConfig(rule=Rule.adaptive, nu_post=0.01))
    assert constant.at(0.9) == 0.01


@pytest.mark.parametrize("pre_trace", [PreTrace.last, PreTrace.spike])
def test_spike_trace_pairs_each_neuron_with_the_inputs_before_its_spike(pre_trace):
    exc = LIFConfig(thresh_mv=-64.5, refrac_ms=0.0)  # fires at u ≥ 0.5 mV
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=3, n_neurons=2, exc=exc, theta_plus_mv=0.0,
                        w_lateral_mv=0.0)
    sim = SimConfig(presentation_ms=20)
    # k from each window's own counts (max_n=window) keeps the hand values about x_pre alone
    learning = LearningConfig(rule=Rule.adaptive, nu_post=0.1, n_th=1, update_window_ms=10.0, pre_trace=pre_trace,
                              max_n=MaxN.window)
    weights = torch.tensor([[0.6, 0.2], [0.0, 0.7], [0.0, 0.0]])  # input 2 drives nobody
    simulator, params = _windowed(model, sim, learning, weights)
    # neuron 0 fires at 0 and 3 (input 0); input 2 fires at 5, after it; neuron 1 fires at 12 (input 1)
    events = SpikeEvents(time=torch.tensor([0, 3, 5, 12]), stream=torch.zeros(4, dtype=torch.long),
                         row=torch.tensor([0, 0, 2, 1]), steps=20, streams=1)
    assert simulator.run(events, learning.nu_post).tolist() == [[2.0, 1.0]]
    d = math.exp(-1 / 20)
    w = params.weights[0]
    if pre_trace is PreTrace.spike:
        # neuron 0 at its last spike (step 3): x_pre = (1, 0, 0); input 2 came later and does not move
        assert torch.allclose(w[:, 0], torch.tensor([0.6 + 2 * 0.1 * 1.0 * 0.4, 0.0, 0.0]))
        # neuron 1 at step 12: x_pre = (d^9, 1, d^7)
        assert torch.allclose(w[:, 1], torch.tensor([0.2 + 0.1 * d**9 * 0.8, 0.7 + 0.1 * 0.3, 0.1 * d**7]))
    else:
        # at the window's end (step 9) input 2's later spike counts too: x_pre = (d^6, 0, d^4)
        assert torch.allclose(w[:, 0], torch.tensor([0.6 + 2 * 0.1 * d**6 * 0.4, 0.0, 2 * 0.1 * d**4]))


def test_spike_traces_of_neurons_that_fire_at_different_steps_of_one_window():
    """x_pre at spike when the updating neurons' last spikes fall on different steps of the window: each
    column takes its own step's traces."""
    exc = LIFConfig(thresh_mv=-64.5, refrac_ms=0.0)  # fires at u ≥ 0.5 mV
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=3, n_neurons=2, exc=exc, theta_plus_mv=0.0,
                        w_lateral_mv=0.0)
    learning = LearningConfig(rule=Rule.adaptive, nu_post=0.1, n_th=1, update_window_ms=10.0,
                              pre_trace=PreTrace.spike, max_n=MaxN.window)
    weights = torch.tensor([[0.6, 0.0], [0.0, 0.7], [0.0, 0.0]])
    simulator, params = _windowed(model, SimConfig(presentation_ms=10), learning, weights)
    # neuron 0 fires at step 0 (input 0), neuron 1 at step 3 (input 1); input 2 fires at step 2, between
    events = SpikeEvents(time=torch.tensor([0, 2, 3]), stream=torch.zeros(3, dtype=torch.long),
                         row=torch.tensor([0, 2, 1]), steps=10, streams=1)
    assert simulator.run(events, learning.nu_post).tolist() == [[1.0, 1.0]]
    d = math.exp(-1 / 20)
    w = params.weights[0]
    assert torch.allclose(w[:, 0], torch.tensor([0.6 + 0.1 * 1.0 * 0.4, 0.0, 0.0]))  # x_pre(0) = (1, 0, 0)
    assert torch.allclose(w[:, 1], torch.tensor([0.1 * d**3, 0.7 + 0.1 * 0.3, 0.1 * d]))  # x_pre(3) = (d³, 1, d)
