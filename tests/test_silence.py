"""Presentations a fixed-point membrane provably sleeps through (tinysnn.sim.silence): the proof's
premises, and a training that skips them equals one that simulates them, bit for bit."""

import dataclasses

import pytest
import torch

from tinysnn.config import Integrator, QuantTarget
from tinysnn.encoding import merge_events, poisson_events, spike_probability
from tinysnn.network import NetworkParams
from tinysnn.quant import FixedPointQuantizer, FP32Quantizer, Rounding
from tinysnn.runtime import replica_generators
from tinysnn.sim import (
    InferenceSimulator,
    collect_counts,
    inference,
    silence,
    windowed,
)

from .test_compiled import LEARNING, RETRYING, assert_same_training, grid_simulator, train_on_images
from .test_quant_sim import N_INPUTS, SIM, spec, trained_network

CPU = torch.device("cpu")


def test_rest_limit_is_the_current_a_deterministic_rounding_leaves_at_zero():
    specs = [spec(4, Rounding.truncate), spec(4, Rounding.nearest), spec(4, Rounding.stochastic)]
    step = specs[0].membrane_format.step
    assert step == 8.0  # Q6.-3: u up to 40 mV in 4 bits
    limit = FixedPointQuantizer(specs, replica_generators(0, 3, CPU)).rest_current_limit()
    assert limit.tolist() == [step, step / 2, float("-inf")]
    # the premise: u = 0 stores 0 for any current below the limit, and moves at the limit
    for s, bound in zip(specs[:2], limit.tolist()):
        u = torch.tensor([[0.0, bound * (1 - 2**-20), bound]], dtype=torch.float64)
        FixedPointQuantizer([s], [torch.Generator()]).store_membrane_(u)
        assert u.tolist() == [[0.0, 0.0, step]]
    assert FixedPointQuantizer([spec(4, Rounding.nearest, target=QuantTarget.w)],
                               [torch.Generator()]).rest_current_limit() is None
    assert FP32Quantizer().rest_current_limit() is None


def test_silent_replicas_need_every_steps_current_below_the_limit_and_a_positive_threshold():
    steps = 4
    # stream 0: inputs 0 and 1 at step 2; stream 1: input 0 at steps 0 and 1; stream 2: nothing
    time, stream, pixel = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0, 0, 1])
    events = merge_events([], [], 3, 2, steps, CPU)
    events = dataclasses.replace(events, time=time, stream=stream, row=stream * 2 + pixel)
    weights = torch.tensor([[3.0, 1.0], [0.5, 2.5]]).expand(3, 2, 2).clone()  # row maxima 3 and 2.5
    threshold = torch.full((3, 2), 10.0)

    def silent(limit: float, threshold: torch.Tensor = threshold) -> list[bool]:
        limits = torch.full((3,), limit, dtype=torch.float64)
        return silence.silent_replicas(events, weights, threshold, limits).tolist()

    # stream 0's worst step: bound 3 + 2.5 = 5.5, exact currents 3 + 0.5 and 1 + 2.5; stream 1's: 3
    # (two steps of 3 do not add up)
    assert silent(5.6) == [True, True, True]  # the bound proves it
    assert silent(5.5) == [True, True, True]  # the bound does not, the exact currents do
    assert silent(3.5) == [False, True, True]
    assert silent(3.0) == [False, False, True]
    assert silence.largest_current(events, weights, torch.tensor([True, True, False])).tolist() == [3.5, 3.0, 0.0]
    zero_threshold = threshold.clone()
    zero_threshold[2, 1] = 0.0  # u = 0 reaches a zero threshold
    assert silent(5.6, zero_threshold) == [True, True, False]
    no_proof = torch.tensor([5.6, float("-inf"), 5.6], dtype=torch.float64)  # stochastic rounding
    assert silence.silent_replicas(events, weights, threshold, no_proof).tolist() == [True, False, True]


def test_events_of_some_streams_are_those_streams_merged():
    g = torch.Generator().manual_seed(3)
    probability = spike_probability((torch.rand(4, N_INPUTS, generator=g) * 255).to(torch.uint8), 300.0, SIM.dt_ms)
    parts = [poisson_events(probability[r:r + 1], SIM.steps, g) for r in range(4)]
    every = merge_events(parts, [0, 1, 2, 3], 4, N_INPUTS, SIM.steps, CPU)
    some = every.of_streams([1, 3], N_INPUTS)
    expected = merge_events([parts[1], parts[3]], [0, 1], 2, N_INPUTS, SIM.steps, CPU)
    for field in ("time", "stream", "row"):
        assert torch.equal(getattr(some, field), getattr(expected, field))
    assert (some.steps, some.streams) == (SIM.steps, 2)


#: 4-bit membranes (ε = 8 mV against ≤ 0.9 mV per input spike) sleep through most presentations,
#: nearest (limit 4 mV) less often than truncate; 8-bit and stochastic rounding never skip
GRID = [spec(4, Rounding.truncate), spec(4, Rounding.nearest), spec(8, Rounding.nearest),
        spec(4, Rounding.stochastic), spec(6, Rounding.truncate)]


def train(integrator: Integrator, images: int = 8):
    """The GRID's replicas trained on the same images with retries: the simulator, counts, every generator's state."""
    simulator = grid_simulator(GRID, integrator)
    results = train_on_images(simulator, images)
    return simulator, results, [g.get_state() for g in [*simulator.generators, *simulator.quant.generators]]


def assert_equal_trainings(a, b) -> None:
    """Two ``train`` results: the same counts, presentations, weights, θ, op and k counts and generator states."""
    (sim_a, results_a, states_a), (sim_b, results_b, states_b) = a, b
    for (counts, presentations), (expected, expected_presentations) in zip(results_a, results_b):
        assert torch.equal(counts, expected) and presentations == expected_presentations
    assert torch.equal(sim_a.params.weights, sim_b.params.weights)
    assert torch.equal(sim_a.params.theta, sim_b.params.theta)
    assert sim_a.ops == sim_b.ops and torch.equal(sim_a.k_counts, sim_b.k_counts)
    assert all(torch.equal(x, y) for x, y in zip(states_a, states_b))


def test_skipping_silent_presentations_changes_nothing(monkeypatch):
    """Weights, θ, spike counts, presentations, op and k counts and every generator's state equal a
    training that simulates every presentation, with and without the exact currents' proofs; and
    the skip did happen, to some replicas, not all, the exact currents proving more."""
    skipped = []

    def counting(*args):
        silent = silence.silent_replicas(*args)
        skipped.append(silent)
        return silent

    monkeypatch.setattr(windowed, "silent_replicas", counting)
    fast = train(Integrator.step)
    skipped_per_replica = torch.stack([s for s in skipped if s.numel() == len(GRID)]).sum(0)
    assert skipped_per_replica[0] > 0 and skipped_per_replica[2:4].sum() == 0
    assert any(0 < int(s.sum()) < s.numel() for s in skipped)  # some presentations simulate only part
    with_exact = int(torch.cat(skipped).sum())

    skipped.clear()
    monkeypatch.setattr(silence, "EXACT_WITHIN", 0.0)  # the row-max bound alone
    bound_only = train(Integrator.step)
    assert 0 < int(torch.cat(skipped).sum()) < with_exact

    monkeypatch.setattr(windowed, "silent_replicas", lambda events, *_: torch.zeros(events.streams, dtype=torch.bool))
    full = train(Integrator.step)
    assert sum(float(counts.sum()) for counts, _ in full[1]) > 20 * len(GRID)  # the others fire
    assert_equal_trainings(fast, full)
    assert_equal_trainings(bound_only, full)


@pytest.mark.parametrize("rounding", [Rounding.truncate, Rounding.nearest])
def test_a_replica_proven_silent_does_not_fire(rounding):
    """The proof against the simulation itself: each presentation marked silent, simulated, makes no spike."""
    simulator = grid_simulator([spec(4, rounding)] * 6, Integrator.step)
    params, quant = simulator.params, simulator.quant
    images = (torch.rand(6, N_INPUTS, generator=torch.Generator().manual_seed(5)) * 255).to(torch.uint8)
    proven = 0
    rates = (SIM.max_rate_hz / 8, SIM.max_rate_hz / 4, SIM.max_rate_hz, SIM.max_rate_hz + 3 * SIM.retry_rate_step_hz)
    for rate in rates:
        events = simulator.encode(images, rate)
        silent = silence.silent_replicas(events, params.weights, quant.threshold(params.theta, simulator.device),
                                         quant.rest_current_limit())
        counts = simulator._simulate(events, LEARNING.nu_post)
        assert counts[silent].sum() == 0
        proven += int(silent.sum())
    assert 0 < proven < 6 * len(rates)


def evaluate(rounding: Rounding, brightness: int):
    """Counts of 40 images (pixels below ``brightness``; batches of 16, retries) on a fixed 4-bit qWN
    network; its simulator and input generator's state."""
    weights, theta, network = trained_network()
    quant_spec = spec(4, rounding)
    params = NetworkParams(weights=weights[None].clone(), theta=theta[None].clone())
    FixedPointQuantizer([quant_spec], [torch.Generator()]).store_weights_(params.weights)
    sim = dataclasses.replace(RETRYING, integrator=Integrator.step)
    simulator = InferenceSimulator(params.weights[0], params.theta[0], network, sim,
                                   quant=FixedPointQuantizer([quant_spec], [torch.Generator()]), rows_per_block=200)
    images = (torch.rand(40, N_INPUTS, generator=torch.Generator().manual_seed(4)) * brightness).to(torch.uint8)
    generator = torch.Generator().manual_seed(6)
    counts, presentations = collect_counts(simulator, images, sim, 16, generator)
    return counts, presentations, simulator, generator.get_state()


#: nearest's limit is half truncate's: dimmer images, for some to be proven silent and some to fire
@pytest.mark.parametrize("rounding, brightness", [(Rounding.truncate, 128), (Rounding.nearest, 64)])
def test_inference_skipping_silent_images_changes_nothing(monkeypatch, rounding, brightness):
    """An evaluation pass's counts, presentations, op counts and input generator equal those of a
    pass that simulates every image; and some images were skipped, not all."""
    skipped = []

    def counting(*args, **kwargs):
        silent = silence.silent_streams(*args, **kwargs)
        skipped.append(silent)
        return silent

    monkeypatch.setattr(inference, "silent_streams", counting)
    counts, presentations, simulator, state = evaluate(rounding, brightness)
    assert 0 < int(torch.cat(skipped).sum()) < presentations
    monkeypatch.setattr(inference, "silent_streams",
                        lambda events, *_, **__: torch.zeros(events.streams, dtype=torch.bool))
    full_counts, full_presentations, full, full_state = evaluate(rounding, brightness)
    assert full_counts.sum() > 40  # the others fire
    assert torch.equal(counts, full_counts) and presentations == full_presentations
    assert simulator.ops == full.ops and torch.equal(state, full_state)


def test_stochastic_or_observed_inference_never_skips():
    weights, theta, network = trained_network()
    for quant, observe in [(FixedPointQuantizer([spec(4, Rounding.stochastic)], [torch.Generator()]), None),
                           (FixedPointQuantizer([spec(4, Rounding.truncate)], [torch.Generator()]), lambda u: None),
                           (FP32Quantizer(), None)]:
        assert InferenceSimulator(weights, theta, network, SIM, quant=quant, observe=observe).row_max is None
    assert InferenceSimulator(weights, theta, network, SIM,
                              quant=FixedPointQuantizer([spec(4, Rounding.truncate)], [torch.Generator()])
                              ).row_max is not None


@pytest.mark.compiles
def test_compiled_windows_that_rest_are_skipped_as_the_step_path_simulates_them(monkeypatch):
    """The compiled path also skips single windows that leave every replica at rest (all rounding
    deterministically): its training equals the step path's, which simulates every window."""
    rested = []

    def counting(self, currents):
        rests = rests_through(self, currents)
        rested.append(rests)
        return rests

    rests_through = windowed.WindowedTrainingSimulator._rests_through
    monkeypatch.setattr(windowed.WindowedTrainingSimulator, "_rests_through", counting)
    assert_same_training([spec(4, Rounding.truncate), spec(6, Rounding.truncate), spec(8, Rounding.nearest),
                          spec(4, Rounding.nearest)])  # four replicas: the kernels the mixed-format grid builds
    assert 0 < sum(rested) < len(rested)
