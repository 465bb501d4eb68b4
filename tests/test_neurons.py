import math

import torch

from tinysnn.config import LIFConfig
from tinysnn.neurons import NEVER, LIFConstants, integrate_, reset_


def lif_step_(u, current, last_spike, threshold, step, c) -> torch.Tensor:
    """One step as a simulator takes it: integrate, compare with the threshold, reset; the spikes."""
    integrate_(u, current, last_spike, step, c)
    spikes = u >= threshold
    reset_(u, last_spike, spikes, step, c)
    return spikes


def constants(**kw) -> LIFConstants:
    return LIFConstants.from_config(LIFConfig(**kw), dt_ms=1.0)


def test_constants_are_relative_to_rest():
    c = constants(rest_mv=-65, reset_mv=-60, thresh_mv=-52, tau_mem_ms=100, refrac_ms=5)
    assert c.thresh == 13.0 and c.reset == 5.0 and c.refrac_steps == 5
    assert math.isclose(c.decay, math.exp(-0.01))


def test_lif_integrates_leaks_and_fires_golden_values():
    # u ← α·u + I with α = e^-0.1 (τ = 10 ms); threshold 13 mV above rest, reset to rest
    c = constants(rest_mv=-65, reset_mv=-65, thresh_mv=-52, tau_mem_ms=10, refrac_ms=2)
    u = torch.zeros(1)
    last = torch.full((1,), NEVER)
    alpha = math.exp(-0.1)
    expected_u = 0.0
    trace = []
    for step in range(3):
        spikes = lif_step_(u, torch.tensor([5.0]), last, 13.0, step, c)
        expected_u = alpha * expected_u + 5.0
        trace.append((bool(spikes), float(u)))
    # 5, 9.524, 13.617 → fires at step 2 and resets to 0
    assert trace[0] == (False, 5.0)
    assert math.isclose(trace[1][1], alpha * 5 + 5, rel_tol=1e-6) and not trace[1][0]
    assert trace[2] == (True, 0.0) and float(last) == 2.0
    assert math.isclose(expected_u, 5 * (1 + alpha + alpha**2), rel_tol=1e-9) and expected_u >= 13


def test_refractory_period_ignores_input_for_refrac_steps():
    c = constants(rest_mv=-65, reset_mv=-65, thresh_mv=-52, tau_mem_ms=100, refrac_ms=2)
    u = torch.zeros(1)
    last = torch.full((1,), NEVER)
    fired = [bool(lif_step_(u, torch.tensor([20.0]), last, 13.0, step, c)) for step in range(6)]
    # spikes at 0, input ignored at 1 and 2, spike again at 3
    assert fired == [True, False, False, True, False, False]


def test_per_neuron_threshold_broadcasts():
    c = constants()
    u = torch.zeros(2, 3)
    last = torch.full((2, 3), NEVER)
    threshold = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    spikes = lif_step_(u, torch.full((2, 3), 2.0), last, threshold, 0, c)
    assert spikes.tolist() == [[True, True, False], [False, True, True]]
