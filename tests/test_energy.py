"""The operation-count energy model on hand-counted cases."""

import pytest

from tinysnn.cost.energy import EnergyInputs, add_pj, energy_per_image, mul_pj, sram_pj_per_bit

ZERO = dict(presentations=0, input_spikes=0, exc_spikes=0, inh_spikes=0, column_updates=0, row_updates=0,
            normalizations=0)


def inputs(bits: int, training: bool = False, topology: str = "tinysnn", device: str = "event", images: int = 1,
           **ops) -> EnergyInputs:
    return EnergyInputs({**ZERO, **ops}, images, steps=10, n_inputs=4, n_neurons=3, topology=topology,
                        weight_bits=bits, neuron_bits=bits, training=training, device=device)


def test_table_values():
    assert add_pj(32) == 0.9 and mul_pj(32) == 3.7  # FP32
    assert add_pj(8) == pytest.approx(0.025) and mul_pj(8) == pytest.approx(3.1 / 16)
    assert sram_pj_per_bit(8 * 1024 * 8) == 0.16 and sram_pj_per_bit(1024 * 1024 * 8) == 1.56
    assert 0.16 < sram_pj_per_bit(16 * 1024 * 8) < 0.31


def test_one_image_by_hand():
    e = energy_per_image(inputs(8, presentations=1, input_spikes=5, exc_spikes=2))
    assert e["synaptic"] == pytest.approx(5 * 3 * add_pj(8))  # 5 input spikes × 3 neurons
    assert e["neuron"] == pytest.approx(10 * 3 * (mul_pj(8) + 3 * add_pj(8)))  # 10 steps × 3 neurons
    assert e["inhibition"] == pytest.approx(2 * 2 * add_pj(8))  # 2 spikes × 2 other neurons
    assert e["learning"] == 0.0
    state = 10 * 3 * 2 * 8 * sram_pj_per_bit(2 * 3 * 8)
    assert e["memory"] == pytest.approx(15 * 8 * sram_pj_per_bit(12 * 8) + state)
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))


@pytest.mark.parametrize("device", ["event", "timestepped"])
def test_an_image_costs_all_its_presentations(device):
    """An image presented three times (two retries) costs the three presentations; two images
    presented once each cost half of their two presentations each."""
    once = dict(presentations=1, input_spikes=5, exc_spikes=2)
    thrice = {key: 3 * value for key, value in once.items()}
    one = energy_per_image(inputs(8, device=device, **once))["total"]
    assert energy_per_image(inputs(8, device=device, **thrice))["total"] == pytest.approx(3 * one)
    twice = {key: 2 * value for key, value in once.items()}
    assert energy_per_image(inputs(8, device=device, images=2, **twice))["total"] == pytest.approx(one)


def test_training_adds_learning_and_lower_precision_costs_less():
    ops = dict(presentations=2, input_spikes=40, exc_spikes=6, column_updates=4, normalizations=2)
    fp32 = energy_per_image(inputs(32, training=True, images=2, **ops))
    q8 = energy_per_image(inputs(8, training=True, images=2, **ops))
    assert fp32["learning"] > 0 and q8["total"] < fp32["total"] / 4
    infer = energy_per_image(inputs(32, images=2, **ops))
    assert infer["learning"] == 0 and infer["total"] < fp32["total"]


def test_timestepped_device_reads_every_weight_at_every_step():
    e = energy_per_image(inputs(8, device="timestepped", presentations=1, input_spikes=5, exc_spikes=2))
    assert e["synaptic"] == pytest.approx(10 * 4 * 3 * add_pj(8))  # 10 steps × 4 inputs × 3 neurons
    assert e["inhibition"] == pytest.approx(10 * 3 * add_pj(8))  # uniform strength: N subtractions a step
    state = 10 * 3 * 2 * 8 * sram_pj_per_bit(2 * 3 * 8)
    assert e["memory"] == pytest.approx(10 * 12 * 8 * sram_pj_per_bit(12 * 8) + state)


def test_timestepped_baseline_pays_its_dense_inhibitory_population():
    ops = dict(presentations=1, input_spikes=5, exc_spikes=2, inh_spikes=2)
    event = energy_per_image(inputs(32, topology="diehl_cook", **ops))
    dense = energy_per_image(inputs(32, topology="diehl_cook", device="timestepped", **ops))
    inhibitory_neurons = 10 * 3 * (mul_pj(32) + 2 * add_pj(32))
    assert event["inhibition"] == pytest.approx((2 + 2 * 2) * add_pj(32) + inhibitory_neurons)
    # E→I (3) and I→E (3 × 2) products at each of 10 steps
    assert dense["inhibition"] == pytest.approx(10 * (3 + 6) * add_pj(32) + inhibitory_neurons)
    tiny = energy_per_image(inputs(32, device="timestepped", **ops))
    assert dense["total"] > tiny["total"]


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="event or timestepped"):
        energy_per_image(inputs(8, device="analog", presentations=1))
