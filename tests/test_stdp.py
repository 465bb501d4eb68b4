import math

import torch

from tinysnn.config import LearningConfig, ModelConfig, SimConfig
from tinysnn.learning import PairSTDP, trace_at

LEARNING = LearningConfig(nu_pre=0.1, nu_post=0.5)


def rule() -> PairSTDP:
    return PairSTDP.build(LEARNING, ModelConfig(), SimConfig())


def test_depression_at_pre_spike_with_floor():
    rows = torch.tensor([[0.5, 0.01, 0.3]])
    post_trace = torch.tensor([[1.0, 0.5, 0.0]])
    rule().pre_update_(rows, post_trace)
    # Δw = −η_pre·x_post: 0.5−0.1, 0.01−0.05 → clamped at w_min 0, unchanged where x_post = 0
    assert torch.allclose(rows, torch.tensor([[0.4, 0.0, 0.3]]))


def test_potentiation_at_post_spike_with_ceiling():
    cols = torch.tensor([[0.2, 0.9, 0.0]])
    pre_trace = torch.tensor([[0.5, 1.0, 0.0]])
    rule().post_update_(cols, pre_trace, LEARNING.nu_post)  # η_post = 0.5
    # Δw = +η_post·x_pre: 0.2+0.25, 0.9+0.5 → clamped at w_max 1
    assert torch.allclose(cols, torch.tensor([[0.45, 1.0, 0.0]]))


def test_trace_is_exponential_since_last_spike():
    # input 0 fired at steps 2 and 5, input 1 at 1, input 2 never; read at step 7 with τ = 20 ms
    times = torch.tensor([1, 2, 5])
    rows = torch.tensor([1, 0, 0])
    x = trace_at(7, times, rows, size=3, decay_log=-1 / 20)
    assert math.isclose(float(x[0]), math.exp(-2 / 20), rel_tol=1e-6)
    assert math.isclose(float(x[1]), math.exp(-6 / 20), rel_tol=1e-6)
    assert float(x[2]) == 0.0


def test_trace_equals_one_at_the_spike_step():
    x = trace_at(4, torch.tensor([4]), torch.tensor([0]), size=1, decay_log=-0.05)
    assert float(x[0]) == 1.0
