"""Quantization wired into the simulators: specs, quantizers, ITQ, PTQ, export and the integer-only evaluation."""

import pytest
import torch

from tinysnn.config import (
    ConfigError,
    LearningConfig,
    ModelConfig,
    QuantConfig,
    QuantTarget,
    Rule,
    Scheme,
    SimConfig,
    Topology,
    VRange,
)
from tinysnn.encoding import poisson_events, spike_probability
from tinysnn.evaluation import assign_labels, predict_all_activity
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.quant import FixedPoint, FixedPointQuantizer, QuantSpec, Rounding
from tinysnn.quant.export import export_model, load_export
from tinysnn.quant.integer import integer_counts
from tinysnn.quant.observe import Interval, MembraneTracker, Ranges
from tinysnn.runtime import replica_generators
from tinysnn.sim import InferenceSimulator, make_training_simulator, train_image

from .test_learning_rules import update_

N_INPUTS, N_NEURONS = 64, 12
SIM = SimConfig(presentation_ms=80, max_rate_hz=200.0, retry_rate_step_hz=100.0)
RANGES = Ranges(weights=Interval(0.0, 0.9), theta=Interval(0.0, 20.0), v_th=Interval(13.0, 33.0),
                v_mem=Interval(-900.0, 40.0))


def model(topology=Topology.tinysnn) -> ModelConfig:
    return ModelConfig(topology=topology, n_inputs=N_INPUTS, n_neurons=N_NEURONS, weight_norm_total=20.0,
                       theta_plus_mv=0.3, w_lateral_mv=25.0, w_inh_exc_mv=25.0)


def spec(bits: int, rounding: Rounding, target: QuantTarget = QuantTarget.wn,
         v_range: VRange = VRange.spiking, bits_by_param: dict[str, int] | None = None) -> QuantSpec:
    quant = QuantConfig(scheme=Scheme.itq, bits=bits, rounding=rounding, target=target, reference="unused",
                        v_range=v_range, bits_by_param=bits_by_param or {})
    quant.check()
    return QuantSpec.build(quant, RANGES)


def quantizer(s: QuantSpec, seed: int = 0, replicas: int = 1) -> FixedPointQuantizer:
    """``replicas`` replicas of ``s``, rounding with the generators of seeds seed, seed + 1, …"""
    return FixedPointQuantizer([s] * replicas, replica_generators(seed, replicas, torch.device("cpu")))


def trained_network(topology=Topology.tinysnn):
    """A network that fires: random weights scaled up, θ spread over neurons."""
    g = torch.Generator().manual_seed(0)
    weights = torch.rand(N_INPUTS, N_NEURONS, generator=g) * 0.9
    theta = torch.rand(N_NEURONS, generator=g) * 20
    return weights, theta, NetworkConstants.build(model(topology), SIM)


def events(batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(batch, N_INPUTS, generator=g) * 255).to(torch.uint8)
    return poisson_events(spike_probability(images, SIM.max_rate_hz, SIM.dt_ms), SIM.steps, g)


def on_grid(x: torch.Tensor, fmt: FixedPoint) -> bool:
    scaled = x.double() / fmt.step
    return bool(torch.equal(scaled, scaled.round())) and bool((x >= fmt.min_value).all() & (x <= fmt.max_value).all())


def test_spec_formats_come_from_the_ranges():
    s8 = spec(8, Rounding.nearest)
    assert s8.weight_format.name == "UQ0.8"
    # u must reach the largest threshold: max(40, 33) needs 6 integer bits, signed
    assert s8.membrane_format is not None and s8.membrane_format.name == "Q6.1"
    assert s8.threshold_format is not None and s8.threshold_format.name == "UQ6.2"  # V_th ≤ 33, unsigned
    assert spec(8, Rounding.nearest, v_range=VRange.observed).membrane_format.name == "Q10.-3"  # |−900| < 2^10
    qw = spec(8, Rounding.nearest, target=QuantTarget.w)
    assert qw.membrane_format is None and qw.threshold_format is None


def test_each_parameter_takes_its_own_width():
    mixed = spec(8, Rounding.nearest, bits_by_param={"w": 4, "v_mem": 12, "theta": 6})
    assert (mixed.weight_format.name, mixed.membrane_format.name, mixed.threshold_format.name) == (
        "UQ0.4", "Q6.5", "UQ6.0")
    widths = mixed.widths()
    assert (widths.weights, widths.v_mem, widths.threshold) == (4, 12, 6)
    assert spec(8, Rounding.nearest, bits_by_param={"theta": 12}).membrane_format.total_bits == 8  # the rest: bits
    for bad, message in [({"u": 8}, "unknown parameter"), ({"w": 30}, "between 2 and 24")]:
        with pytest.raises(ConfigError, match=message):
            spec(8, Rounding.nearest, bits_by_param=bad)
    with pytest.raises(ConfigError, match="qW keeps"):
        spec(8, Rounding.nearest, target=QuantTarget.w, bits_by_param={"theta": 8})


def test_device_constants_lie_on_the_grid():
    s = spec(6, Rounding.truncate)  # membrane Q6.-1: step 2; threshold UQ6.0: step 1
    _, _, network = trained_network()
    device = s.device_constants(network)
    assert device.u_th == 13.0 and device.exc.reset == 0.0  # u_th on the threshold grid
    assert device.exc.decay * 2**16 == round(network.exc.decay * 2**16)
    assert device.w_inh == 26.0  # w_lateral = 25 on the membrane grid → nearest even, ties up


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("bits,by_param", [(6, None), (8, None), (16, None), (8, {"w": 4, "v_mem": 12, "theta": 6}),
                                           (8, {"v_mem": 6, "theta": 12})])
def test_integer_only_export_reproduces_the_quantized_simulator(tmp_path, rounding, bits, by_param):
    weights, theta, network = trained_network()
    s = spec(bits, rounding, bits_by_param=by_param)
    params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
    training = quantizer(s)
    training.store_weights_(params.weights)
    training.store_theta_(params.theta)
    spikes = events(24)
    simulator = InferenceSimulator(params.weights[0], params.theta[0], network, SIM,
                                   quant=FixedPointQuantizer([s], [torch.Generator().manual_seed(5)]))
    counts = simulator.run(spikes)
    assert counts.sum() > 20  # the network is active, so the comparison means something
    assignment = assign_labels(counts, torch.arange(24) % 10)
    export_model(tmp_path / "export.pt", params, s, network, SIM.steps, assignment.labels[None])
    exported = load_export(tmp_path / "export.pt")
    assert exported["weights"].dtype == (torch.uint8 if s.weight_format.total_bits <= 8 else torch.uint16)
    integer = integer_counts(exported, spikes, rounding_generator=torch.Generator().manual_seed(5))
    assert integer.dtype == torch.int64
    assert torch.equal(integer.float(), counts)
    labels = exported["assignments"][0]
    assert torch.equal(predict_all_activity(integer.float(), assignment),
                       predict_all_activity(counts, assignment)) and torch.equal(labels, assignment.labels)


def test_integer_evaluation_refuses_what_it_cannot_run(tmp_path):
    weights, theta, network = trained_network()
    params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
    s = spec(8, Rounding.nearest, target=QuantTarget.w)
    export_model(tmp_path / "w.pt", params, s, network, SIM.steps, torch.zeros(1, N_NEURONS, dtype=torch.long))
    with pytest.raises(ValueError, match="qWN"):
        integer_counts(load_export(tmp_path / "w.pt"), events(2))


def test_wide_fixed_point_behaves_like_fp32():
    weights, theta, network = trained_network()
    wide = QuantSpec(FixedPoint(24, 24, False), FixedPoint(24, 14, True), FixedPoint(24, 16, False),
                     Rounding.nearest, 30)
    spikes = events(32)
    fp32 = InferenceSimulator(weights, theta, network, SIM).run(spikes)
    fixed = InferenceSimulator(weights, theta, network, SIM,
                               quant=FixedPointQuantizer([wide], [torch.Generator()])).run(spikes)
    assert fp32.sum() > 50
    assert (fixed - fp32).abs().sum() <= 0.01 * fp32.sum()


@pytest.mark.parametrize("target", list(QuantTarget))
@pytest.mark.parametrize("learning", [LearningConfig(rule=Rule.adaptive, nu_post=0.05, update_window_ms=20.0),
                                      LearningConfig(nu_pre=0.01, nu_post=0.05)], ids=["adaptive", "pair"])
def test_itq_keeps_parameters_on_the_grid(target, learning):
    m = model(Topology.tinysnn if learning.rule is Rule.adaptive else Topology.diehl_cook)
    s = spec(8, Rounding.stochastic, target=target)
    generators = replica_generators(0, 1, torch.device("cpu"))
    params = init_params(m, generators, torch.device("cpu"))
    training = quantizer(s)
    training.store_weights_(params.weights)
    network = NetworkConstants.build(m, SIM)
    simulator = make_training_simulator(params, network, build_rule(learning, m, SIM), SIM, generators, training)
    image = (torch.rand(1, N_INPUTS, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    before = params.weights.clone()
    for _ in range(3):
        train_image(simulator, image, learning.nu_post)
    assert not torch.equal(before, params.weights)
    assert on_grid(params.weights, s.weight_format)
    if target is QuantTarget.wn:
        assert params.theta.sum() > 0 and on_grid(params.theta, s.threshold_format)
        assert on_grid(simulator.layer.u, s.membrane_format)


def test_stochastic_rounding_lets_sub_lsb_updates_survive():
    """η·x_pre·(w_max − w) far below one LSB: nearest rounds every update away, stochastic keeps the mean."""
    m = model()
    learning = LearningConfig(rule=Rule.adaptive, nu_post=1e-3)
    rule = build_rule(learning, m, SIM)
    start = torch.full((1, N_INPUTS, N_NEURONS), 0.5)
    counts = torch.zeros(1, N_NEURONS)
    counts[0, :4] = 1
    pre = torch.full((1, N_INPUTS), 1.0)
    results = {}
    for rounding in (Rounding.nearest, Rounding.stochastic):
        weights, quant = start.clone(), quantizer(spec(8, rounding))
        for _ in range(200):
            update_(rule, weights, counts, pre, learning.nu_post, quant)
        results[rounding] = weights
    assert torch.equal(results[Rounding.nearest], start)  # 0.0005 per update < ε/2 = 0.002
    exact = 0.5 * (1 - 1e-3) ** 200  # distance to w_max after 200 soft-bounded steps
    moved = 1 - results[Rounding.stochastic][0, :, :4]
    assert abs(float(moved.mean()) - exact) < 0.01
    assert torch.equal(results[Rounding.stochastic][0, :, 4:], start[0, :, 4:])


def test_stochastic_itq_replicas_equal_separate_runs():
    m = model()
    learning = LearningConfig(rule=Rule.adaptive, nu_post=0.05, update_window_ms=20.0)
    image = (torch.rand(1, N_INPUTS, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)

    def train(seed: int, replicas: int) -> NetworkParams:
        generators = replica_generators(seed, replicas, torch.device("cpu"))
        quant = quantizer(spec(8, Rounding.stochastic), seed=seed + 100, replicas=replicas)
        params = init_params(m, generators, torch.device("cpu"))
        quant.store_weights_(params.weights)
        network = NetworkConstants.build(m, SIM)
        simulator = make_training_simulator(params, network, build_rule(learning, m, SIM), SIM, generators, quant)
        for _ in range(3):
            train_image(simulator, image.expand(replicas, -1), learning.nu_post)
        return params

    together = train(4, 2)
    for r in range(2):
        alone = train(4 + r, 1)
        assert torch.equal(together.weights[r], alone.weights[0]) and torch.equal(together.theta[r], alone.theta[0])


def test_end_presentation_requantizes_normalised_weights():
    m = model()
    s = spec(6, Rounding.truncate, target=QuantTarget.wn)
    generators = replica_generators(0, 1, torch.device("cpu"))
    params = init_params(m, generators, torch.device("cpu"))
    params.theta.fill_(10.3)
    assert not on_grid(params.weights, s.weight_format) and not on_grid(params.theta, s.threshold_format)
    rule = build_rule(LearningConfig(rule=Rule.adaptive), m, SIM)
    simulator = make_training_simulator(params, NetworkConstants.build(m, SIM), rule, SIM, generators, quantizer(s))
    simulator.end_presentation()  # θ decays and weights are renormalised, then stored on the grid
    assert on_grid(params.weights, s.weight_format) and on_grid(params.theta, s.threshold_format)


def test_membrane_tracker_and_ranges_round_trip():
    tracker = MembraneTracker()
    tracker.update(torch.tensor([[1.0, -3.0], [2.0, 0.0]]))
    tracker.update(torch.tensor([[5.0, -1.0], [0.0, 0.0]]))
    assert tracker.interval() == Interval(-3.0, 5.0)
    assert Ranges.from_dict(RANGES.to_dict()) == RANGES
    with pytest.raises(ValueError, match="malformed"):
        Ranges.from_dict({"weights": {"low": 0}})


@pytest.mark.parametrize("overrides,key", [
    ({"bits": 0, "scheme": Scheme.ptq, "reference": "x"}, "quant.bits"),
    ({"bits": 8}, "quant.bits"),  # scheme none
    ({"bits": 8, "scheme": Scheme.itq}, "quant.reference"),
    ({"scheme": Scheme.ptq}, "quant.reference"),
])
def test_impossible_quant_configs_are_named(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        QuantConfig(**overrides).check()
