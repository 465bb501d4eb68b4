"""ITQ grids as one simulation: replicas with different precisions and roundings (tinysnn.quant.quantizer)."""

import pytest
import torch

from tinysnn.config import ConfigError, LearningConfig, QuantConfig, QuantTarget, Rule, Scheme, Topology
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.ops import ReplicaOps
from tinysnn.quant import FixedPointQuantizer, Rounding
from tinysnn.quant.rounding import quantize
from tinysnn.runtime import replica_generators
from tinysnn.sim import make_training_simulator, train_image

from .test_quant_sim import N_INPUTS, SIM, model, spec

CPU = torch.device("cpu")
VARIANTS = [(8, Rounding.stochastic), (6, Rounding.nearest), (4, Rounding.truncate), (4, Rounding.stochastic)]


def _train(quant, generators, m, learning, images) -> tuple[NetworkParams, ReplicaOps]:
    params = init_params(m, generators, CPU)
    quant.store_weights_(params.weights)
    quant.store_theta_(params.theta)  # qWN only
    network = NetworkConstants.build(m, SIM)
    simulator = make_training_simulator(params, network, build_rule(learning, m, SIM), SIM, generators, quant)
    for image in images:
        train_image(simulator, image.expand(params.replicas, -1), learning.nu_post)
    return params, simulator.ops


@pytest.mark.parametrize("target", [QuantTarget.w, QuantTarget.wn])
@pytest.mark.parametrize("topology,rule", [(Topology.tinysnn, Rule.adaptive), (Topology.diehl_cook, Rule.pair_stdp)])
def test_grid_replicas_equal_their_separate_runs(target, topology, rule):
    """Replicas of one simulation with different (bits, rounding) give bit-identical weights and θ
    to separate runs, and count the same operations (retries and skipped silent presentations
    included), for both kernels (windowed and per-step) and both targets."""
    m = model(topology)
    learning = LearningConfig(rule=rule, nu_post=0.05, nu_pre=0.01, update_window_ms=20.0)
    images = (torch.rand(4, 1, N_INPUTS, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    seeds = 2
    # variant v's seeds s are replicas v·seeds + s, rounding with the generator of seed 100 + s
    variants = [spec(bits, rounding, target) for bits, rounding in VARIANTS]
    grid = FixedPointQuantizer([variant for variant in variants for _ in range(seeds)],
                               [g for _ in variants for g in replica_generators(100, seeds, CPU)])
    together, together_ops = _train(grid, [g for _ in variants for g in replica_generators(7, seeds, CPU)], m,
                                    learning, images)
    assert not torch.equal(together.weights[0], together.weights[seeds])  # the variants do differ
    for v, (bits, rounding) in enumerate(VARIANTS):
        for s in range(seeds):
            alone_quant = FixedPointQuantizer([spec(bits, rounding, target)], replica_generators(100 + s, 1, CPU))
            alone, alone_ops = _train(alone_quant, replica_generators(7 + s, 1, CPU), m, learning, images)
            r = v * seeds + s
            assert torch.equal(together.weights[r], alone.weights[0]), (bits, rounding, s)
            assert torch.equal(together.theta[r], alone.theta[0]), (bits, rounding, s)
            assert together_ops.of([r]) == alone_ops.of(), (bits, rounding, s)


@pytest.mark.parametrize("variants", [
    [(6, Rounding.nearest), (4, Rounding.truncate), (8, Rounding.stochastic)],  # per-replica parameters
    [(6, Rounding.stochastic), (6, Rounding.stochastic)],  # one shared format: plain numbers
    [(4, Rounding.truncate)],
])
@pytest.mark.parametrize("store", ["store_membrane_", "store_theta_"])
def test_replica_rounding_equals_quantize_row_by_row(variants, store):
    """Each replica's row of u or θ rounds like ``quantize`` with that replica's format, mode and generator."""
    specs = [spec(bits, rounding, QuantTarget.wn) for bits, rounding in variants]
    quant = FixedPointQuantizer(specs, [torch.Generator().manual_seed(3 + k) for k in range(len(variants))])
    x = torch.linspace(-50, 60, 12 * len(variants), dtype=torch.float64).view(len(variants), 12)
    kind = "membrane_format" if store == "store_membrane_" else "threshold_format"
    reference = [quantize(x[r], getattr(s, kind), s.rounding, torch.Generator().manual_seed(3 + r))
                 for r, s in enumerate(specs)]
    rounded = x.clone()
    getattr(quant, store)(rounded)
    for r in range(len(variants)):
        assert torch.equal(rounded[r], reference[r])


def test_replica_constants_differ_only_where_the_grids_do():
    network = NetworkConstants.build(model(), SIM)
    specs = [spec(16, Rounding.nearest), spec(4, Rounding.nearest)]
    device = FixedPointQuantizer(specs, replica_generators(0, 2, CPU)).device_constants(network)
    expected = [s.device_constants(network) for s in specs]
    for name in ("u_th", "w_inh"):
        value = getattr(device, name)
        assert isinstance(value, torch.Tensor) and value.shape == (2, 1)
        assert value.flatten().tolist() == [getattr(d, name) for d in expected]
    same = FixedPointQuantizer([spec(16, Rounding.nearest), spec(16, Rounding.stochastic)],
                               replica_generators(0, 2, CPU)).device_constants(network)
    assert same.u_th == expected[0].u_th and same.w_inh == expected[0].w_inh


def test_mixed_targets_in_one_simulation_are_refused():
    with pytest.raises(ValueError, match="qWN"):
        FixedPointQuantizer([spec(8, Rounding.nearest, QuantTarget.w), spec(8, Rounding.nearest)],
                            replica_generators(0, 2, CPU))


def test_grid_config_variants_and_errors():
    quant = QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 4],
                        grid_roundings=[Rounding.truncate, Rounding.stochastic])
    quant.check()
    assert [(q.bits, q.rounding) for q in quant.variants()] == [
        (8, Rounding.truncate), (8, Rounding.stochastic), (4, Rounding.truncate), (4, Rounding.stochastic)]
    assert all(not q.is_grid for q in quant.variants())
    with pytest.raises(ConfigError, match="only ITQ"):
        QuantConfig(scheme=Scheme.ptq, reference="ref", grid_bits=[8]).check()
    with pytest.raises(ConfigError, match="between 2 and 24"):
        QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 0]).check()
    with pytest.raises(ConfigError, match="twice"):
        QuantConfig(scheme=Scheme.itq, reference="ref", grid_bits=[8, 8]).check()
    with pytest.raises(ConfigError, match="quant.reference"):
        QuantConfig(scheme=Scheme.itq, grid_bits=[8]).check()
