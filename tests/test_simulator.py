"""The training and inference kernels on small synthetic networks."""

import copy

import pytest
import torch

from tinysnn.config import Integrator, LearningConfig, ModelConfig, PreTrace, Rule, SimConfig, Topology
from tinysnn.encoding import SpikeEvents, poisson_events, spike_probability
from tinysnn.learning import EtaSchedule, PairSTDP, build_rule
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.quant import FP32Quantizer
from tinysnn.runtime import replica_generators
from tinysnn.sim import (
    InferenceSimulator,
    TrainingProgress,
    TrainingSimulator,
    collect_counts,
    make_training_simulator,
    start_training,
    train_epochs,
    train_image,
)

N_INPUTS, N_NEURONS = 16, 6


def small_model(topology: Topology = Topology.diehl_cook) -> ModelConfig:
    return ModelConfig(topology=topology, n_inputs=N_INPUTS, n_neurons=N_NEURONS, weight_norm_total=6.0,
                       theta_plus_mv=0.5)


def images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, N_INPUTS, generator=g) * 255 * (torch.rand(n, N_INPUTS, generator=g) < 0.6)).to(torch.uint8)


LEARNING = {
    "pair_stdp": LearningConfig(nu_pre=0.01, nu_post=0.05),
    "sl_stdp": LearningConfig(rule=Rule.sl_stdp, nu_post=0.05, nu_depression=0.02),
    "adaptive": LearningConfig(rule=Rule.adaptive, nu_post=0.05, n_th=2),
    "adaptive_windows": LearningConfig(rule=Rule.adaptive, nu_post=0.05, update_window_ms=15.0,
                                       pre_trace=PreTrace.mean),
}


def train(seed: int, replicas: int, data: torch.Tensor, topology: Topology = Topology.diehl_cook,
          learning: str = "pair_stdp", integrator: Integrator = Integrator.step):
    model = small_model(topology)
    sim = SimConfig(presentation_ms=60, max_rate_hz=200.0, retry_rate_step_hz=100.0, integrator=integrator)
    network = NetworkConstants.build(model, sim)
    generators = replica_generators(seed, replicas, torch.device("cpu"))
    params = init_params(model, generators, torch.device("cpu"))
    rule = build_rule(LEARNING[learning], model, sim)
    simulator = make_training_simulator(params, network, rule, sim, generators, FP32Quantizer())
    eta = LEARNING[learning].nu_post  # constant η_post
    results = [train_image(simulator, image.expand(replicas, -1), eta) for image in data]
    return params, torch.stack([counts for counts, _ in results]), [presentations for _, presentations in results]


@pytest.mark.parametrize("learning", sorted(LEARNING))
@pytest.mark.parametrize("topology", list(Topology))
def test_replicas_equal_separate_runs(topology, learning):
    data = images(12)
    params, counts, _ = train(seed=3, replicas=3, data=data, topology=topology, learning=learning)
    assert counts.sum() > 0
    for r in range(3):
        alone, alone_counts, _ = train(seed=3 + r, replicas=1, data=data, topology=topology, learning=learning)
        assert torch.equal(params.weights[r], alone.weights[0])
        assert torch.equal(params.theta[r], alone.theta[0])
        assert torch.equal(counts[:, r], alone_counts[:, 0])


def test_params_of_some_replicas_copies_them_and_of_a_slice_views_them():
    """A retry's restricted simulator takes a copy of its replicas, in the order asked for."""
    params = NetworkParams(weights=torch.rand(4, 3, 2, generator=torch.Generator().manual_seed(0)),
                           theta=torch.arange(8.0).view(4, 2))
    part = params.of([2, 0])
    assert torch.equal(part.weights, torch.stack([params.weights[2], params.weights[0]]))
    assert torch.equal(part.theta, torch.stack([params.theta[2], params.theta[0]]))
    part.weights.zero_()
    assert params.weights[2].sum() > 0  # a copy
    params.of(slice(1, 3)).theta.zero_()
    assert params.theta[1:3].sum() == 0  # a view


def test_same_seed_same_result_and_other_seed_differs():
    data = images(6)
    a, _, _ = train(seed=1, replicas=1, data=data)
    b, _, _ = train(seed=1, replicas=1, data=data)
    c, _, _ = train(seed=2, replicas=1, data=data)
    assert torch.equal(a.weights, b.weights) and torch.equal(a.theta, b.theta)
    assert not torch.equal(a.weights, c.weights)


def test_learning_moves_weights_and_keeps_bounds_and_normalisation():
    params, counts, presentations = train(seed=0, replicas=1, data=images(10))
    w = params.weights[0]
    sim = SimConfig()
    # the retry rule: an image ends with at least min_spikes spikes unless every retry was used
    for total, runs in zip(counts.sum(-1).flatten().tolist(), presentations):
        assert total >= sim.min_spikes or runs == sim.max_retries + 1
    assert max(presentations) > 1  # this small network does need retries
    assert w.min() >= 0 and w.max() <= 1
    assert torch.allclose(w.sum(0), torch.full((N_NEURONS,), 6.0), atol=1e-4)
    assert params.theta.sum() > 0  # θ grew with the spikes


def test_training_kernel_without_learning_matches_inference_kernel():
    """Frozen weights on a dyadic grid make every sum exact, so both kernels must agree spike for spike."""
    for topology in Topology:
        model, sim = small_model(topology), SimConfig(presentation_ms=80)
        constants = NetworkConstants.build(model, sim)
        g = torch.Generator().manual_seed(5)
        weights = (torch.randint(0, 9, (N_INPUTS, N_NEURONS), generator=g) / 8.0).float()  # within [w_min, w_max]
        theta = (torch.randint(0, 8, (N_NEURONS,), generator=g) / 8.0).float()
        probability = spike_probability(images(1, seed=9), 900.0, sim.dt_ms)
        events = poisson_events(probability, sim.steps, torch.Generator().manual_seed(11))

        params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
        frozen = PairSTDP.build(LearningConfig(nu_pre=0.0, nu_post=0.0), model, sim)
        no_theta = NetworkConstants(**{**constants.__dict__, "theta_plus": 0.0})
        trainer = TrainingSimulator(params, no_theta, frozen, sim, [torch.Generator()], FP32Quantizer())
        train_counts = trainer.run(events, 0.0)
        infer_counts = InferenceSimulator(weights, theta, constants, sim).run(events)
        assert infer_counts.sum() > 5
        assert torch.equal(train_counts, infer_counts)
        assert torch.equal(params.weights[0], weights)

        windowed_params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
        frozen_windowed = build_rule(LearningConfig(rule=Rule.adaptive, nu_post=0.0, update_window_ms=7.0), model, sim)
        windowed = make_training_simulator(windowed_params, no_theta, frozen_windowed, sim, [torch.Generator()],
                                           FP32Quantizer())
        assert torch.equal(windowed.run(events, 0.0), infer_counts)


def test_inference_is_batch_consistent_given_the_same_spikes():
    model, sim = small_model(), SimConfig(presentation_ms=50)
    constants = NetworkConstants.build(model, sim)
    weights = (torch.randint(0, 16, (N_INPUTS, N_NEURONS), generator=torch.Generator().manual_seed(2)) / 4.0)
    probability = spike_probability(images(4, seed=3), 300.0, sim.dt_ms)
    events = poisson_events(probability, sim.steps, torch.Generator().manual_seed(4))
    inference = InferenceSimulator(weights, torch.zeros(N_NEURONS), constants, sim, rows_per_block=8)
    batched = inference.run(events)
    dense = events.to_dense(N_INPUTS)
    for b in range(4):
        t, i = dense[:, b].nonzero(as_tuple=True)
        single = SpikeEvents(time=t, stream=torch.zeros_like(t), row=i, steps=sim.steps, streams=1)
        assert torch.equal(inference.run(single)[0], batched[b])


def test_direct_inhibition_reproduces_the_relaying_inhibitory_population():
    """With D&C's constants every inhibitory neuron relays its partner's spike one step later
    (22.5 mV ≥ its 20 mV threshold, and its 2 ms refractory period is shorter than the excitatory
    5 ms), so tinySNN's direct inhibition with the same 2-step delay yields the same network."""
    data = images(10)
    population, counts_population, _ = train(seed=4, replicas=1, data=data, topology=Topology.diehl_cook)
    direct, counts_direct, _ = train(seed=4, replicas=1, data=data, topology=Topology.tinysnn)
    assert counts_population.sum() > 0
    assert torch.equal(counts_population, counts_direct)
    assert torch.equal(population.weights, direct.weights)


@pytest.mark.parametrize("learning", sorted(LEARNING))
@pytest.mark.parametrize("topology", list(Topology))
def test_op_counts_match_what_happened(topology, learning):
    data = images(6)
    model, sim = small_model(topology), SimConfig(presentation_ms=60, max_rate_hz=200.0, retry_rate_step_hz=100.0)
    network = NetworkConstants.build(model, sim)
    generators = replica_generators(0, 2, torch.device("cpu"))
    params = init_params(model, generators, torch.device("cpu"))
    simulator = make_training_simulator(params, network, build_rule(LEARNING[learning], model, sim), sim,
                                        generators, FP32Quantizer())
    for image in data:
        train_image(simulator, image.expand(2, -1), LEARNING[learning].nu_post)
    for r in range(2):  # each replica's counts relate as its own events do
        ops = simulator.ops.of([r])
        assert ops.presentations == ops.normalizations >= len(data)
        assert ops.exc_spikes > 0 and ops.input_spikes > 0
        if topology is Topology.tinysnn:
            assert ops.inh_spikes == 0
        else:
            assert 0 < ops.inh_spikes <= ops.exc_spikes  # each inhibitory neuron is driven by its partner only
        if learning == "pair_stdp":
            assert ops.column_updates == ops.exc_spikes  # one column per postsynaptic spike
            assert 0 < ops.row_updates <= ops.input_spikes
        elif learning == "sl_stdp":
            assert ops.column_updates == ops.exc_spikes and ops.row_updates == 0
        else:  # windowed: at most one update per spiking neuron and window
            assert 0 < ops.column_updates <= ops.exc_spikes and ops.row_updates == 0


def test_inference_op_counts():
    weights = torch.rand(N_INPUTS, N_NEURONS, generator=torch.Generator().manual_seed(0))
    model, sim = small_model(Topology.tinysnn), SimConfig(presentation_ms=60)
    inference = InferenceSimulator(weights, torch.zeros(N_NEURONS), NetworkConstants.build(model, sim), sim)
    probability = spike_probability(images(5), 200.0, sim.dt_ms)
    events = poisson_events(probability, sim.steps, torch.Generator().manual_seed(1))
    counts = inference.run(events)
    assert inference.ops.presentations == 5 and inference.ops.input_spikes == events.row.numel()
    assert inference.ops.exc_spikes == int(counts.sum()) > 0


def test_collect_counts_reports_each_batch_without_changing_the_counts():
    weights = torch.rand(N_INPUTS, N_NEURONS, generator=torch.Generator().manual_seed(0))
    model, sim = small_model(Topology.tinysnn), SimConfig(presentation_ms=60)
    constants = NetworkConstants.build(model, sim)
    data = images(7)
    done: list[int] = []
    counts, presentations = collect_counts(InferenceSimulator(weights, torch.zeros(N_NEURONS), constants, sim),
                                           data, sim, 3, torch.Generator().manual_seed(2), done.append)
    assert done == [3, 3, 1] and presentations >= 7
    one_batch, _ = collect_counts(InferenceSimulator(weights, torch.zeros(N_NEURONS), constants, sim),
                                  data, sim, 3, torch.Generator().manual_seed(2))
    assert torch.equal(counts, one_batch)


@pytest.mark.parametrize("learning", ["adaptive", "adaptive_windows"])
def test_closed_form_integrator_follows_the_step_path(learning):
    """Stretches between spikes in closed form (one matmul) give the step path's spikes, and so its
    weights and θ up to float32 rounding, with refractoriness and delayed inhibition inside stretches."""
    data = images(15, seed=4)
    reference, reference_counts, reference_presentations = train(5, 2, data, Topology.tinysnn, learning)
    closed, counts, presentations = train(5, 2, data, Topology.tinysnn, learning, Integrator.closed_form)
    assert reference_counts.sum() > 20 and (reference_counts > 1).any()  # refractory periods were exercised
    assert torch.equal(counts, reference_counts) and presentations == reference_presentations
    assert torch.allclose(closed.weights, reference.weights, atol=1e-6)
    assert torch.allclose(closed.theta, reference.theta, atol=1e-6)


@pytest.mark.compiles
def test_compiled_integrator_equals_the_step_path():
    """The fused window kernel does the step path's arithmetic branch-free: the same spikes,
    presentations (retries run restricted simulators of other sizes), weights and θ, bit for bit."""
    data = images(15, seed=4)
    reference, reference_counts, reference_presentations = train(5, 2, data, Topology.tinysnn, "adaptive_windows")
    fused, counts, presentations = train(5, 2, data, Topology.tinysnn, "adaptive_windows", Integrator.compiled)
    assert reference_counts.sum() > 20 and (reference_counts > 1).any()  # refractory periods were exercised
    assert max(reference_presentations) > 1  # and retries
    assert torch.equal(counts, reference_counts) and presentations == reference_presentations
    assert torch.equal(fused.weights, reference.weights)
    assert torch.equal(fused.theta, reference.theta)


@pytest.mark.compiles
def test_compiled_inference_equals_the_step_path():
    model = small_model(Topology.tinysnn)
    weights = torch.rand(N_INPUTS, N_NEURONS, generator=torch.Generator().manual_seed(6)) * 2.0
    theta = torch.rand(N_NEURONS, generator=torch.Generator().manual_seed(7))
    probability = spike_probability(images(5, seed=8), 300.0, 1.0)
    counts = {}
    for integrator in (Integrator.step, Integrator.compiled):
        sim = SimConfig(presentation_ms=45, integrator=integrator)  # 4 full kernel calls and a shorter one
        events = poisson_events(probability, sim.steps, torch.Generator().manual_seed(9))
        inference = InferenceSimulator(weights, theta, NetworkConstants.build(model, sim), sim, rows_per_block=100)
        assert inference.compiled is (integrator is Integrator.compiled)
        counts[integrator] = inference.run(events)
    assert counts[Integrator.step].sum() > 20
    assert torch.equal(counts[Integrator.compiled], counts[Integrator.step])


def _windowed_simulator(replicas: int = 2):
    model = small_model(Topology.tinysnn)
    sim = SimConfig(presentation_ms=60, max_rate_hz=200.0, retry_rate_step_hz=100.0)
    generators = replica_generators(0, replicas, torch.device("cpu"))
    params = init_params(model, generators, torch.device("cpu"))
    rule = build_rule(LEARNING["adaptive"], model, sim)
    return make_training_simulator(params, NetworkConstants.build(model, sim), rule, sim, generators, FP32Quantizer())


def test_a_training_pass_resumed_mid_way_equals_the_uninterrupted_one():
    """train_epochs continues a pass from its progress (TrainingProgress.restore: the log and the
    monitor's state()) and the simulator's (restore): the same parameters, log, k and op counts."""
    data, labels = images(10), torch.arange(10) % 3
    schedule = EtaSchedule.build(LEARNING["adaptive"])
    whole = _windowed_simulator()
    whole_log = train_epochs(whole, data, labels, 2, schedule, monitor_every=3)

    first, saved = _windowed_simulator(), {}

    def stop_after_13(progress: TrainingProgress) -> None:  # in the second epoch, mid monitor window
        if progress.log.images == 13:
            saved.update(log=copy.deepcopy(progress.log), monitor=progress.monitor.state(),
                         params=copy.deepcopy(first.params), ops=copy.deepcopy(first.ops),
                         k_counts=first.k_counts.clone(), generator_states=[g.get_state() for g in first.generators])
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_epochs(first, data, labels, 2, schedule, monitor_every=3, on_image=stop_after_13)
    second = _windowed_simulator()
    second.restore(saved["params"], saved["ops"], saved["k_counts"], saved["generator_states"], [])
    progress = start_training(second, 3, torch.device("cpu"))
    progress.restore(saved["log"], saved["monitor"])
    log = train_epochs(second, data, labels, 2, schedule, monitor_every=3, progress=progress)

    assert torch.equal(second.params.weights, whole.params.weights) and torch.equal(second.params.theta,
                                                                                     whole.params.theta)
    assert (log.images, log.presentations, log.running_accuracy) == (20, whole_log.presentations,
                                                                      whole_log.running_accuracy)
    assert len(log.running_accuracy) == 5 and torch.equal(log.spikes, whole_log.spikes)
    assert torch.equal(log.k_counts, whole_log.k_counts) and second.ops == whole.ops
