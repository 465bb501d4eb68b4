"""Memory accounting (paper Eq. 4) on a hand-counted tiny network."""

import pytest

from tinysnn.config import ModelConfig, Topology
from tinysnn.cost import BitWidths, memory_report


def test_tinysnn_accounting_by_hand():
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=4, n_neurons=3)
    report = memory_report(model, BitWidths(weights=8, v_mem=8, threshold=8))
    # 12 weights·8 + 1 inhibition strength·8 + 3 V_mem·8 + 3 V_th·8
    assert report.total_bits == 12 * 8 + 8 + 3 * 8 + 3 * 8 == 152
    assert report.fp32_bits == (12 + 1 + 3 + 3) * 32
    assert report.normalized == pytest.approx(152 / (19 * 32))
    assert report.dense_total_bits == (12 + 6 + 3 + 3) * 8  # 3·2 lateral weights stored densely
    # FP32 D&C of the same size: 12 + 1 (E→I) + 1 (I→E) + 3 + 3 (exc) + 3 V_mem + 1 V_th (inh)
    assert report.baseline_bits == 24 * 32
    assert report.to_dict()["saving_vs_fp32_baseline"] == pytest.approx(24 * 32 / 152)


def test_diehl_cook_qw_keeps_neurons_fp32():
    report = memory_report(ModelConfig(n_inputs=4, n_neurons=3), BitWidths(weights=8))
    names = {item.name: (item.count, item.bits) for item in report.items}
    assert names["X→E weights"] == (12, 8) and names["excitatory V_mem"] == (3, 32)
    assert names["inhibitory V_mem"] == (3, 32) and names["I→E weights"] == (1, 32)
    assert report.total_bits == 12 * 8 + (1 + 1 + 3 + 3 + 3 + 1) * 32


def test_fp32_is_its_own_reference():
    report = memory_report(ModelConfig())
    assert report.normalized == 1.0 and report.total_bits == report.baseline_bits


def test_mixed_widths_are_accounted_per_parameter():
    model = ModelConfig(topology=Topology.tinysnn, n_inputs=4, n_neurons=3)
    report = memory_report(model, BitWidths(weights=4, v_mem=12, threshold=8))
    names = {item.name: (item.count, item.bits) for item in report.items}
    assert names["X→E weights"] == (12, 4) and names["lateral inhibition E→E"] == (1, 12)
    assert names["excitatory V_mem"] == (3, 12) and names["excitatory V_th (u_th + θ)"] == (3, 8)
    assert report.total_bits == 12 * 4 + 12 + 3 * 12 + 3 * 8
