"""Model selection (reward, constraints, Pareto fronts) and the report, on hand-made candidates."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tinysnn.config import ConfigError, SelectionConfig, register_configs
from tinysnn.record import Candidate, counted_images, load_candidates, read_record
from tinysnn.report import write_report
from tinysnn.selection import choose, pareto_front, ranked, reward, violations
from tinysnn.train import summary


def cand(name: str, accuracy: float, memory_norm: float, bits: int | None = 8, inference_uj: float | None = 10.0,
         training_uj: float | None = 20.0, dataset: str = "mnist", scheme: str = "ptq", target: str = "w",
         rounding: str = "nearest", test_accuracy: float | None = None) -> Candidate:
    """``accuracy`` is the validation accuracy selection weighs; the test accuracy is reported only."""
    return Candidate(path=name, dataset=dataset, topology="tinysnn", scheme=scheme, bits=bits, target=target,
                     rounding=rounding, train_images=0, accuracy=accuracy if test_accuracy is None else test_accuracy,
                     memory_bytes=memory_norm * 1_000_000, memory_norm=memory_norm, inference_uj=inference_uj,
                     training_uj=training_uj, val_accuracy=accuracy)


FP32 = cand("fp32", 0.90, 1.0, bits=None, inference_uj=100.0)
Q8 = cand("q8", 0.89, 0.25, inference_uj=20.0)
Q4 = cand("q4", 0.80, 0.125, bits=4, inference_uj=12.0)
Q4_BAD = cand("q4bad", 0.50, 0.125, bits=4, inference_uj=11.0, target="wn")
ALL = [FP32, Q8, Q4, Q4_BAD]


def test_reward_is_accuracy_minus_mu_times_normalised_memory():
    assert reward(Q8, 0.0) == pytest.approx(0.89)
    assert reward(Q8, 0.4) == pytest.approx(0.89 - 0.4 * 0.25)
    assert reward(FP32, 1.0) == pytest.approx(-0.10)


def test_choice_moves_to_smaller_models_as_mu_grows():
    config = SelectionConfig()
    assert choose(ALL, config, mu=0.0) is FP32  # accuracy only
    assert choose(ALL, config, mu=0.1) is Q8  # 0.865 vs FP32 0.80 and Q4 0.7875
    assert choose(ALL, config, mu=1.0) is Q4  # 0.675 vs Q8 0.64
    assert [c.path for c in ranked(ALL, 1.0)][:2] == ["q4", "q8"]


def test_constraints_exclude_and_can_leave_nothing():
    assert choose(ALL, SelectionConfig(mu=0.0, max_memory_kb=200_000 / 1024)) is Q4  # only the 4-bit models fit
    assert violations(FP32, SelectionConfig(max_inference_uj=50.0)) == ["inference energy"]
    assert choose(ALL, SelectionConfig(mu=0.0, min_accuracy=0.85, max_inference_uj=50.0)) is Q8
    unmeasured = cand("unmeasured", 0.95, 0.1, training_uj=None)
    assert violations(unmeasured, SelectionConfig(max_training_uj=100.0)) == ["training energy"]
    assert choose(ALL, SelectionConfig(min_accuracy=0.99)) is None


def test_the_choice_is_made_on_validation_accuracy_never_on_test():
    lucky = cand("lucky", 0.85, 0.25, test_accuracy=0.95)  # best on test, worse on validation
    steady = cand("steady", 0.88, 0.25, test_accuracy=0.87)
    assert choose([lucky, steady], SelectionConfig(mu=0.0)) is steady
    unvalidated = Candidate(path="old", dataset="mnist", topology="tinysnn", scheme="ptq", bits=8, target="w",
                            rounding="nearest", train_images=0, accuracy=0.99, memory_bytes=1.0, memory_norm=0.01,
                            inference_uj=1.0, training_uj=1.0)
    assert violations(unvalidated, SelectionConfig()) == ["no validation split"]
    assert choose([unvalidated, steady], SelectionConfig(mu=0.0)) is steady
    assert choose([unvalidated], SelectionConfig()) is None


def test_a_mixed_width_model_is_named_by_its_widths():
    """Two 6-bit qWN records differ only in bits_by_param; their names must tell them apart."""
    records = Path(__file__).resolve().parents[1] / "docs/runs/headline/ptq/mnist"
    uniform, mixed = load_candidates([records / "wn-q6", records / "wn-w6-v10-th8"])
    assert uniform.name == "tinysnn PTQ 6-bit qWN nearest"
    assert mixed.name == "tinysnn PTQ 6-bit qWN, v_mem 10-bit, theta 8-bit nearest"
    # the line tinysnn.train prints after the run names it the same way
    printed = summary(read_record(Path(mixed.path) / "metrics.json"))
    assert "ptq 6-bit qWN, v_mem 10-bit, theta 8-bit nearest:" in printed
    uniform_by_param = load_candidates([records / "wn-0"])[0]  # bits_by_param {w: 8, v_mem: 8, theta: 8}
    assert uniform_by_param.name == "tinysnn PTQ 8-bit qWN nearest"


def test_pareto_front_keeps_only_undominated_models():
    front = pareto_front(ALL, lambda c: c.memory_norm)
    assert [c.path for c in front] == ["q4", "q8", "fp32"]  # q4bad: same memory as q4, less accurate
    assert [c.path for c in pareto_front(ALL, lambda c: c.inference_uj)] == ["q4bad", "q4", "q8", "fp32"]
    assert pareto_front([cand("x", 0.5, 0.5, inference_uj=None)], lambda c: c.inference_uj) == []


def _compose(*overrides: str):
    register_configs()
    with initialize_config_module("tinysnn.conf", version_base="1.3"):
        return OmegaConf.to_object(compose("select", overrides=list(overrides)))


def test_overrides_are_composed_and_checked(tmp_path):
    config = _compose(f"sweeps=[{tmp_path}]", "selection.mu=0.3", "selection.max_memory_kb=100")
    assert config.sweeps == [str(tmp_path)] and config.selection.mu == 0.3 and config.selection.max_memory_kb == 100
    with pytest.raises(ConfigError, match="selection.mu"):
        _compose(f"sweeps=[{tmp_path}]", "selection.mu=-1")
    with pytest.raises(ConfigError, match="sweeps"):
        _compose("selection.mu=1")
    with pytest.raises(Exception, match="nonsense"):
        _compose(f"sweeps=[{tmp_path}]", "selection.nonsense=1")


def _command(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _metrics(accuracy: float, bits: int | None, target: str = "w", dataset: str = "mnist") -> dict:
    return {"dataset": dataset, "topology": "tinysnn",
            "quant": {"active": bits is not None, "scheme": "ptq" if bits else "none", "bits": bits,
                      "target": target, "rounding": "nearest", "reference": None},
            "train": {"images": 0}, "accuracy": {"all_activity": accuracy, "proportion": accuracy},
            "val": {"images": 100, "accuracy": {"all_activity": accuracy, "proportion": accuracy}},
            "memory": {"total_bytes": 1000.0 * (bits or 32), "normalized": (bits or 32) / 32},
            "energy_per": "image", "energy_pj_per_image": {"train": None, "inference": {"total": 1e6 * (bits or 32)}}}


@pytest.mark.parametrize("grid", [None, {"replicas": 6}])
def test_records_priced_per_presentation_are_read_per_image(tmp_path, grid):
    """A record written before energy was priced per image (no ``energy_per``) holds the price of one
    presentation: selection reads it times the presentations per image (retries included)."""
    old = {**_metrics(0.9, 4), "replicas": 2, "grid": grid,
           "train": {"images": 10}, "test": {"images": 50},
           "ops": {"train": {"presentations": 10 * 2 * 1.5 * (3 if grid else 1)}, "test": {"presentations": 300}},
           "energy_pj_per_image": {"train": {"total": 2e6}, "inference": {"total": 4e6}}}
    del old["energy_per"]
    new = {**old, "energy_per": "image"}
    for name, record in (("old", old), ("new", new)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(record))
    by_name = {Path(c.path).name: c for c in load_candidates([tmp_path])}
    # 300 test presentations of 2 × 50 images; 1.5 training presentations per image of each replica
    assert by_name["old"].inference_uj == pytest.approx(4.0 * 3) and by_name["new"].inference_uj == 4.0
    assert by_name["old"].training_uj == pytest.approx(2.0 * 1.5) and by_name["new"].training_uj == 2.0
    # the images the counts were made on: an older grid record's training counts are the whole grid's
    assert counted_images(old, "train") == 10 * (6 if grid else 2) and counted_images(new, "train") == 10 * 2
    assert counted_images(old, "test") == counted_images(new, "test") == 50 * 2


def test_select_cli_and_report_from_run_folders(tmp_path):
    for name, m in {"a": _metrics(0.9, None), "b": _metrics(0.88, 8), "c": _metrics(0.5, 4, "wn"),
                    "d": _metrics(0.7, 8, dataset="fashion_mnist")}.items():
        (tmp_path / "sweep" / name).mkdir(parents=True)
        (tmp_path / "sweep" / name / "metrics.json").write_text(json.dumps(m))
    selected = _command("tinysnn.selection", f"sweeps=[{tmp_path / 'sweep'}]", "selection.mu=0.1", cwd=tmp_path)
    assert selected.returncode == 0, selected.stderr
    printed = selected.stdout
    assert "## mnist: 3 models" in printed and "**Chosen:** tinysnn PTQ 8-bit qW nearest" in printed
    assert "| 0.5 |" in printed  # the μ sweep

    candidates = load_candidates([tmp_path / "sweep"])
    written = write_report(candidates, SelectionConfig(), tmp_path / "report", figures=False)
    rows = list(csv.DictReader((tmp_path / "report" / "runs.csv").open()))
    assert len(rows) == 4 and {r["bits"] for r in rows} == {"FP32", "8", "4"}
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## fashion_mnist" in summary and "| 8 | qW | 7.8 | 8.00 | 4.00× | 4.00× |" in summary
    assert [p.name for p in written] == ["runs.csv", "summary.md"]
    missing = _command("tinysnn.selection", f"sweeps=[{tmp_path / 'missing'}]", cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "sweep"]  # no Hydra output folders left behind


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / "sweep" / "a").mkdir(parents=True)
    (tmp_path / "sweep" / "a" / "metrics.json").write_text('{"dataset": "mni')
    damaged = _command("tinysnn.report", f"sweeps=[{tmp_path / 'sweep'}]", f"out={tmp_path / 'r'}")
    assert damaged.returncode == 2 and "metrics.json is not valid JSON" in damaged.stderr
    assert "Traceback" not in damaged.stderr
