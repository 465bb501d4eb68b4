"""The compiled kernels against the step path on quantized networks (qWN training windows and
inference, an ITQ grid of mixed formats, qW), and ``sim.integrator=auto``'s choice."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tinysnn.checkpoint import load_checkpoint
from tinysnn.config import Integrator, LearningConfig, QuantTarget, Rule, Scheme
from tinysnn.learning import build_rule
from tinysnn.network import NetworkConstants, NetworkParams, init_params
from tinysnn.pipeline import run
from tinysnn.quant import FixedPointQuantizer, FP32Quantizer, QuantSpec, Rounding
from tinysnn.runtime import replica_generators
from tinysnn.sim import InferenceSimulator, lif_window, make_training_simulator, train_image, weight_store
from tinysnn.sim import auto as auto_module
from tinysnn.sim.auto import PAYS_AFTER, choose_integrator

from .conftest import requires_mnist
from .test_quant_sim import N_INPUTS, SIM, events, model, spec, trained_network
from .test_train_real import config

CPU = torch.device("cpu")
#: 5 ms update windows (10 steps): the kernel unrolls a window's steps, and a 20 ms window's
#: kernel takes several times as long to build, for no more of the arithmetic tested
LEARNING = LearningConfig(rule=Rule.adaptive, nu_post=0.05, update_window_ms=5.0)
#: images with fewer than 20 spikes are presented again: retries run restricted simulators
RETRYING = dataclasses.replace(SIM, min_spikes=20)


def grid_simulator(specs: list[QuantSpec], integrator: Integrator):
    """A training simulator of replicas with ``specs`` (input generators of seeds 7 + r, rounding
    generators of seeds 100 + r), presenting again below 20 spikes."""
    sim = dataclasses.replace(RETRYING, integrator=integrator)
    m = model()
    quant = FixedPointQuantizer(specs, replica_generators(100, len(specs), CPU))
    generators = replica_generators(7, len(specs), CPU)
    params = init_params(m, generators, CPU)
    quant.store_weights_(params.weights)
    quant.store_theta_(params.theta)
    return make_training_simulator(params, NetworkConstants.build(m, sim), build_rule(LEARNING, m, sim), sim,
                                   generators, quant)


def train_on_images(simulator, images: int) -> list[tuple[torch.Tensor, int]]:
    """Every replica trained on the same ``images`` random images; the counts and presentations per image."""
    data = (torch.rand(images, N_INPUTS, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    return [train_image(simulator, image.expand(simulator.params.replicas, -1), LEARNING.nu_post) for image in data]


def train(specs: list[QuantSpec], integrator: Integrator, images: int = 6):
    """Train replicas with ``specs`` on the same images; returns the parameters, the counts and
    presentations per image, and the rounding generators' states."""
    simulator = grid_simulator(specs, integrator)
    results = train_on_images(simulator, images)
    return simulator.params, results, [g.get_state() for g in simulator.quant.generators]


def assert_same_training(specs: list[QuantSpec]) -> None:
    reference, reference_results, reference_states = train(specs, Integrator.step)
    fused, results, fused_states = train(specs, Integrator.compiled)
    assert sum(float(counts.sum()) for counts, _ in reference_results) > 20 * len(specs)
    assert max(presentations for _, presentations in reference_results) > 1  # retries
    for (counts, presentations), (expected, expected_presentations) in zip(results, reference_results):
        assert torch.equal(counts, expected) and presentations == expected_presentations
    assert torch.equal(fused.weights, reference.weights) and torch.equal(fused.theta, reference.theta)
    assert all(torch.equal(a, b) for a, b in zip(fused_states, reference_states))  # the same draws, in order


@pytest.mark.compiles
@pytest.mark.parametrize("rounding", list(Rounding))
def test_qwn_training_windows_equal_the_step_path(rounding):
    """u rounded every step, θ after every spike, stochastic rounding's U drawn ahead: the step
    path's spikes, retries, weights, θ and rounding generators, bit for bit."""
    assert_same_training([spec(8, rounding)])


@pytest.mark.compiles
def test_itq_grid_of_mixed_formats_equals_the_step_path():
    """One simulation of replicas on different grids (per-row thresholds, w_inh and grids), mixed
    roundings and per-parameter widths; retries run subsets of them."""
    assert_same_training([spec(8, Rounding.stochastic), spec(6, Rounding.nearest), spec(4, Rounding.truncate),
                          spec(8, Rounding.stochastic, bits_by_param={"w": 4, "v_mem": 12, "theta": 6})])


def infer(quant_spec: QuantSpec, integrator: Integrator) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of 24 images on a fixed network (blocks of 10 steps), and the rounding generator's state."""
    weights, theta, network = trained_network()
    params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
    FixedPointQuantizer([quant_spec], [torch.Generator()]).store_weights_(params.weights)
    rounding = torch.Generator().manual_seed(5)
    simulator = InferenceSimulator(params.weights[0], params.theta[0], network,
                                   dataclasses.replace(SIM, integrator=integrator),
                                   quant=FixedPointQuantizer([quant_spec], [rounding]), rows_per_block=200)
    assert simulator.compiled is (integrator is Integrator.compiled)
    return simulator.run(events(24)), rounding.get_state()


@pytest.mark.compiles
@pytest.mark.parametrize("target", list(QuantTarget))
@pytest.mark.parametrize("rounding", list(Rounding))
def test_quantized_inference_counts_equal_the_step_path(target, rounding):
    """qWN: the fixed-point kernel, U for a batch's u drawn for each block of steps; qW: the FP32 kernel."""
    counts, state = infer(spec(8, rounding, target), Integrator.step)
    fused, fused_state = infer(spec(8, rounding, target), Integrator.compiled)
    assert counts.sum() > 100
    assert torch.equal(fused, counts) and torch.equal(fused_state, state)


@pytest.mark.compiles
def test_qw_itq_grid_equals_the_step_path():
    """qW keeps FP32 membranes: the FP32 kernel, with the weights rounded at each window's end."""
    assert_same_training([spec(8, Rounding.stochastic, QuantTarget.w), spec(4, Rounding.nearest, QuantTarget.w)])


# --- sim.integrator=auto ----------------------------------------------------------------------

QWN = FixedPointQuantizer([spec(8, Rounding.stochastic)], [torch.Generator()])


@pytest.fixture
def compiler(monkeypatch):
    """A machine where torch.compile finds its compiler, whatever this one has."""
    monkeypatch.setattr(auto_module, "compiler_available", lambda device_type: True)


@pytest.mark.parametrize("quant", [FP32Quantizer(), QWN], ids=["fp32", "qwn"])
@pytest.mark.parametrize("training", [True, False])
def test_auto_compiles_tinysnn_passes_long_enough_to_pay(compiler, quant, training):
    long = PAYS_AFTER[(quant.quantizes_neurons, training)]

    def choose(images, applies=True, requested=Integrator.auto):
        return choose_integrator(requested, applies, quant, images, training, CPU)

    assert choose(long) is Integrator.compiled
    assert choose(long - 1) is Integrator.step and choose(None) is Integrator.step  # short, or not yet known
    assert choose(long, applies=False) is Integrator.step  # the baseline's network, or an observer
    for explicit in (Integrator.step, Integrator.closed_form, Integrator.compiled):
        assert choose(0, requested=explicit) is explicit


def test_auto_steps_where_draws_ahead_would_differ(compiler, monkeypatch):
    """A CUDA generator's stream depends on how it is cut into draws: qWN with stochastic rounding steps there."""
    monkeypatch.setattr(FixedPointQuantizer, "draws_ahead", property(lambda self: False))
    assert choose_integrator(Integrator.auto, True, QWN, 10**9, True, CPU) is Integrator.step
    assert choose_integrator(Integrator.auto, True, FP32Quantizer(), 10**9, True, CPU) is Integrator.compiled


def test_auto_without_a_compiler_steps_with_one_warning(monkeypatch):
    def missing():
        raise RuntimeError("No working C++ compiler found")

    monkeypatch.setattr("torch._inductor.cpp_builder.get_cpp_compiler", missing)
    auto_module.compiler_available.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="running the step path") as caught:
            for _ in range(3):
                assert choose_integrator(Integrator.auto, True, QWN, 10**9, True, CPU) is Integrator.step
        assert len(caught) == 1
    finally:
        auto_module.compiler_available.cache_clear()


def test_plan_resolves_auto_and_retries_inherit_it(compiler):
    """Simulators step until told a pass's length (train_epochs and collect_counts tell them)."""
    m = model()
    generators = replica_generators(0, 2, CPU)
    sim = dataclasses.replace(SIM, integrator=Integrator.auto)
    simulator = make_training_simulator(init_params(m, generators, CPU), NetworkConstants.build(m, sim),
                                        build_rule(LEARNING, m, sim), sim, generators, FP32Quantizer())
    assert simulator.sim.integrator is Integrator.step
    simulator.plan(PAYS_AFTER[(False, True)])
    assert simulator.sim.integrator is Integrator.compiled
    assert simulator.restricted([1]).sim.integrator is Integrator.compiled
    simulator.plan(1)
    assert simulator.sim.integrator is Integrator.step

    weights, theta, network = trained_network()
    inference = InferenceSimulator(weights, theta, network, sim)
    assert not inference.compiled
    inference.plan(PAYS_AFTER[(False, False)])
    assert inference.compiled
    observed = InferenceSimulator(weights, theta, network, sim, observe=lambda u: None)
    observed.plan(10**9)
    assert not observed.compiled  # the kernel has no observer


# --- whole runs on real MNIST ------------------------------------------------------------------

#: a short tinySNN run: 100 neurons, 100 images to train, label, validate and test; 5 ms update
#: windows (10 steps), whose kernels build in a fraction of the 25 ms window's time
SHORT = ["experiment=tinysnn_mnist", "model.n_neurons=100", "run.n_train=100", "run.n_label=100", "run.n_test=100",
         "run.n_val=100", "learning.update_window_ms=5"]


@pytest.fixture(scope="session")  # not module: xdist workers interleave modules (see test_optimize.study)
def fp32_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FP32 run the quantized ones take their ranges (and PTQ its weights) from."""
    out = tmp_path_factory.mktemp("fp32")
    run(config(*SHORT, "sim.integrator=step"), out)
    return out


@pytest.mark.slow
@requires_mnist
# one run per path through the kernels (the window and inference tests above cover every rounding
# and target): FP32, PTQ qWN inference, ITQ qWN with draws made ahead, ITQ qW with FP32 membranes
@pytest.mark.parametrize("quant", [None, (Scheme.ptq, QuantTarget.wn, Rounding.nearest),
                                   (Scheme.itq, QuantTarget.wn, Rounding.stochastic),
                                   (Scheme.itq, QuantTarget.w, Rounding.truncate)],
                         ids=lambda q: "fp32" if q is None else "-".join(v.value for v in q))
@pytest.mark.compiles
def test_auto_gives_the_step_paths_runs(tmp_path, monkeypatch, fp32_reference, quant):
    """Runs that relied on the default ``step`` now get ``auto``: with every pass long enough to
    compile, the same checkpoint (weights, θ, labels, input generators) and accuracies."""
    overrides = list(SHORT)
    if quant is not None:
        scheme, target, rounding = quant
        overrides += [f"scheme={scheme.value}", "precision=q8", f"target={target.value}", f"rounding={rounding.value}",
                      f"quant.reference={fp32_reference}"]
    run(config(*overrides, "sim.integrator=step"), tmp_path / "step")
    monkeypatch.setattr(auto_module, "PAYS_AFTER", dict.fromkeys(PAYS_AFTER, 0))
    kernels = []
    compiled = lif_window.run_compiled

    def counted(kernel, *args):
        kernels.append(kernel)
        return compiled(kernel, *args)

    monkeypatch.setattr(lif_window, "run_compiled", counted)
    run(config(*overrides, "sim.integrator=auto"), tmp_path / "auto")
    neurons = quant is not None and quant[1] is QuantTarget.wn
    assert (lif_window.lif_window_fixed_point if neurons else lif_window.lif_window) in kernels
    # ITQ training renormalises and stores its weights in the fused kernel; nothing else rounds weights there
    itq = quant is not None and quant[0] is Scheme.itq
    assert (weight_store.normalize_on_grid_ in kernels) is itq
    step, auto = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("step", "auto"))
    for key in ("weights", "theta", "assignments", "proportions"):
        assert torch.equal(auto[key], step[key]), key
    assert all(torch.equal(a, b) for a, b in zip(auto["rng_states"], step["rng_states"]))
    step_metrics, auto_metrics = (json.loads((tmp_path / name / "metrics.json").read_text())
                                  for name in ("step", "auto"))
    for key in ("accuracy", "per_replica"):
        assert auto_metrics[key] == step_metrics[key]
    # the record says what auto resolved to, pass by pass: PTQ trains nothing, and an FP32 run's
    # label pass records the ranges through an observer, which only the step path calls
    trains, fp32 = quant is None or quant[0] is Scheme.itq, quant is None
    passes = ("train", "label", "val", "test")
    assert [auto_metrics[p]["integrator"] for p in passes] == ["compiled" if trains else None,
                                                                "step" if fp32 else "compiled", "compiled", "compiled"]
    assert [step_metrics[p]["integrator"] for p in passes] == ["step" if trains else None] + ["step"] * 3
