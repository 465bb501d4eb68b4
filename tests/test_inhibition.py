import torch

from tinysnn.config import ModelConfig, SimConfig
from tinysnn.inhibition import DirectInhibition, InhibitoryPopulation
from tinysnn.network import NetworkConstants


def test_direct_inhibition_three_neurons():
    inh = DirectInhibition(weight=10.0, delay=2)
    inh.exc_spiked(3, torch.tensor([[True, False, True]]))
    assert inh.current(4) is None
    # every neuron loses 10 mV per *other* neuron that spiked
    assert inh.current(5).tolist() == [[-10.0, -20.0, -10.0]]
    assert inh.current(6) is None


def test_inhibitory_population_relays_with_two_step_delay():
    model = ModelConfig(n_neurons=3)
    c = NetworkConstants.build(model, SimConfig())
    pop = InhibitoryPopulation((1, 3), c.inh, w_exc_inh=22.5, w_inh_exc=120.0, device=torch.device("cpu"))
    pop.exc_spiked(0, torch.tensor([[False, True, False]]))
    assert pop.current(0) is None
    assert pop.current(1) is None  # the inhibitory partner fires at step 1 (22.5 mV ≥ 20 mV)
    assert pop.current(2).tolist() == [[-120.0, 0.0, -120.0]]


def test_inhibitory_neuron_below_threshold_decays_in_closed_form():
    model = ModelConfig(n_neurons=1)
    c = NetworkConstants.build(model, SimConfig())
    # w_EI = 12 mV: two inputs 10 steps apart: 12·e^(−10/10) + 12 = 16.4 < 20 → no spike;
    # a third input 1 step later: 16.41·e^(−0.1) + 12 = 26.85 ≥ 20 → spike
    pop = InhibitoryPopulation((1, 1), c.inh, w_exc_inh=12.0, w_inh_exc=50.0, device=torch.device("cpu"))
    for step in (0, 10, 11):
        pop.exc_spiked(step, torch.tensor([[True]]))
        pop.current(step + 1)
    assert torch.allclose(pop.u_anchor, torch.tensor([[c.inh.reset]]))
    assert float(pop.last_spike) == 12.0


def test_inhibitory_refractory_period_blocks_input():
    model = ModelConfig(n_neurons=2)
    c = NetworkConstants.build(model, SimConfig())
    pop = InhibitoryPopulation((1, 2), c.inh, w_exc_inh=22.5, w_inh_exc=120.0, device=torch.device("cpu"))
    fired = []
    for step in range(4):
        pop.exc_spiked(step, torch.tensor([[True, False]]))
        pop.current(step + 1)
        fired.append(pop.current(step + 2) is not None)
    # fires at 1, refractory at 2 and 3 (2 ms), fires again at 4
    assert fired == [True, False, False, True]
