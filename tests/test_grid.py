"""ITQ grids as one simulation: replicas with different precisions and roundings (tinysnn.quant.replicas)."""

import pytest
import torch

from tinysnn.config import ConfigError, LearningConfig, QuantConfig, QuantTarget, Rule, Scheme, Topology
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.protocol import present_with_retries
from tinysnn.quant import Rounding
from tinysnn.quant.replicas import ReplicaPlans
from tinysnn.quant.rounding import quantize
from tinysnn.runtime import replica_generators
from tinysnn.simulator import make_training_simulator

from .test_quant_sim import N_INPUTS, SIM, model, plan

CPU = torch.device("cpu")
VARIANTS = [(8, Rounding.stochastic), (6, Rounding.nearest), (4, Rounding.truncate), (4, Rounding.stochastic)]


def _train(plans, generators, m, learning, images) -> NetworkParams:
    params = init_params(m, generators, CPU)
    plans.replica_weights_(params.weights)
    if plans.quantizes_neurons:
        plans.replica_neurons_(params.theta)
    constants = NetworkConstants.build(m, SIM)
    simulator = make_training_simulator(params, constants, build_rule(learning, m, SIM), m, SIM, generators, plans)
    for image in images:
        present_with_retries(simulator, params, image.expand(params.replicas, -1), constants, m, SIM)
    return params


@pytest.mark.parametrize("target", [QuantTarget.w, QuantTarget.wn])
@pytest.mark.parametrize("topology,rule", [(Topology.tinysnn, Rule.adaptive), (Topology.diehl_cook, Rule.pair_stdp)])
def test_grid_replicas_equal_their_separate_runs(target, topology, rule):
    """Replicas of one simulation with different (bits, rounding) give bit-identical weights and θ
    to separate runs, for both kernels (windowed and per-step) and both targets."""
    m = model(topology)
    learning = LearningConfig(rule=rule, nu_post=0.05, nu_pre=0.01, update_window_ms=20.0)
    images = (torch.rand(4, 1, N_INPUTS, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    seeds = 2
    variants = [plan(bits, rounding, target, seed=100, replicas=seeds) for bits, rounding in VARIANTS]
    together = _train(ReplicaPlans.side_by_side(variants),
                      [g for _ in variants for g in replica_generators(7, seeds, CPU)], m, learning, images)
    assert not torch.equal(together.weights[0], together.weights[seeds])  # the variants do differ
    for v, (bits, rounding) in enumerate(VARIANTS):
        for s in range(seeds):
            alone_plan = plan(bits, rounding, target, seed=100 + s)
            alone = _train(ReplicaPlans.side_by_side([alone_plan]), replica_generators(7 + s, 1, CPU), m, learning,
                           images)
            r = v * seeds + s
            assert torch.equal(together.weights[r], alone.weights[0]), (bits, rounding, s)
            assert torch.equal(together.theta[r], alone.theta[0]), (bits, rounding, s)


@pytest.mark.parametrize("variants", [
    [(6, Rounding.nearest), (4, Rounding.truncate), (8, Rounding.stochastic)],  # per-replica parameters
    [(6, Rounding.stochastic), (6, Rounding.stochastic)],  # one shared format: plain numbers
    [(4, Rounding.truncate)],
])
def test_replica_rounding_equals_quantize_row_by_row(variants):
    """Each replica's row rounds like ``quantize`` with that replica's format, mode and generator."""
    plans = ReplicaPlans.side_by_side([plan(bits, rounding, QuantTarget.wn, seed=3 + k)
                                       for k, (bits, rounding) in enumerate(variants)])
    x = torch.linspace(-50, 60, 12 * len(variants), dtype=torch.float64).view(len(variants), 12)
    reference = [quantize(x[r], p.neuron_format, p.rounding, torch.Generator().manual_seed(3 + r))
                 for r, p in enumerate(plans.plans)]
    rounded = plans.replica_neurons_(x.clone())
    for r in range(len(variants)):
        assert torch.equal(rounded[r], reference[r])


def test_replica_constants_differ_only_where_the_grids_do():
    m = model()
    plans = ReplicaPlans.side_by_side([plan(16, Rounding.nearest), plan(4, Rounding.nearest)])
    constants = plans.constants(NetworkConstants.build(m, SIM))
    assert isinstance(constants.exc.thresh, torch.Tensor) and constants.exc.thresh.shape == (2, 1)
    expected = [p.constants(NetworkConstants.build(m, SIM)).exc.thresh for p in plans.plans]
    assert constants.exc.thresh.flatten().tolist() == expected
    same = ReplicaPlans.side_by_side([plan(16, Rounding.nearest), plan(16, Rounding.stochastic)])
    assert same.constants(NetworkConstants.build(m, SIM)).exc.thresh == expected[0]


def test_mixed_targets_in_one_simulation_are_refused():
    with pytest.raises(ValueError, match="qWN"):
        ReplicaPlans.side_by_side([plan(8, Rounding.nearest, QuantTarget.w), plan(8, Rounding.nearest)])


def test_grid_config_variants_and_errors():
    quant = QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 4],
                        grid_roundings=[Rounding.truncate, Rounding.stochastic])
    quant.check()
    assert [(q.bits, q.rounding) for q in quant.variants()] == [
        (8, Rounding.truncate), (8, Rounding.stochastic), (4, Rounding.truncate), (4, Rounding.stochastic)]
    assert all(not q.is_grid for q in quant.variants())
    with pytest.raises(ConfigError, match="only ITQ"):
        QuantConfig(scheme=Scheme.ptq, reference="ref", grid_bits=[8]).check()
    with pytest.raises(ConfigError, match="between 2 and 32"):
        QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 0]).check()
    with pytest.raises(ConfigError, match="twice"):
        QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 8]).check()
    with pytest.raises(ConfigError, match="quant.reference"):
        QuantConfig(scheme=Scheme.itq, grid_bits=[8]).check()
