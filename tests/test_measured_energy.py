"""Measured energy from RAPL-style counters (a fake powercap tree), and null where none exists."""

import torch

from tinysnn.cost.measured import EnergyMeter

CPU = torch.device("cpu")


def _domain(root, name, energy_uj, max_uj=None):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder


def test_rapl_packages_are_summed_and_wraps_are_undone(tmp_path):
    package0 = _domain(tmp_path, "intel-rapl:0", 5_000_000, max_uj=10_000_000)
    package1 = _domain(tmp_path, "intel-rapl:1", 1_000_000, max_uj=10_000_000)
    _domain(tmp_path, "intel-rapl:0:0", 0)  # a sub-domain (core) inside package 0: not counted again
    meter = EnergyMeter(CPU, rapl_root=tmp_path)
    with meter.phase("train"):
        (package0 / "energy_uj").write_text("9000000\n")  # +4 J
        (package1 / "energy_uj").write_text("500000\n")  # wrapped: +9.5 J
    with meter.phase("train"):  # a second visit adds to the phase
        (package0 / "energy_uj").write_text("9500000\n")  # +0.5 J
    report = meter.report({"train": 7})
    assert report["source"] == "rapl:intel-rapl:0+rapl:intel-rapl:1" and report["reason"] is None
    train = report["phases"]["train"]
    assert abs(train["joules"] - 14.0) < 1e-9
    assert abs(train["joules_per_image"] - 2.0) < 1e-9
    assert train["watts"] is not None and train["watts"] > 0


def test_no_counter_gives_null_and_a_reason(tmp_path):
    meter = EnergyMeter(CPU, rapl_root=tmp_path / "absent")
    with meter.phase("test"):
        pass
    report = meter.report({"test": 10})
    assert report["source"] is None and "RAPL" in report["reason"]
    assert report["phases"]["test"]["joules"] is None and report["phases"]["test"]["joules_per_image"] is None
    assert report["phases"]["test"]["seconds"] >= 0


def test_fork_starts_from_the_recorded_phases(tmp_path):
    package = _domain(tmp_path, "intel-rapl:0", 0)
    meter = EnergyMeter(CPU, rapl_root=tmp_path)
    with meter.phase("train"):
        (package / "energy_uj").write_text("2000000\n")
    variant = meter.fork()
    with variant.phase("test"):
        (package / "energy_uj").write_text("3000000\n")
    assert set(meter.report({})["phases"]) == {"train"}
    phases = variant.report({})["phases"]
    assert abs(phases["train"]["joules"] - 2.0) < 1e-9 and abs(phases["test"]["joules"] - 1.0) < 1e-9


def test_a_split_phase_records_so_far_and_goes_on_measuring(tmp_path):
    """A training saved mid-way carries its measurement: ``split`` records the phase so far, and the
    phase's end adds the rest, as one unbroken phase would."""
    package = _domain(tmp_path, "intel-rapl:0", 0)
    meter = EnergyMeter(CPU, rapl_root=tmp_path)
    with meter.phase("train") as phase:
        (package / "energy_uj").write_text("1500000\n")
        phase.split()
        assert abs(meter.phases["train"]["joules"] - 1.5) < 1e-9
        (package / "energy_uj").write_text("4000000\n")
    assert abs(meter.phases["train"]["joules"] - 4.0) < 1e-9
