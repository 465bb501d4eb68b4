"""Model selection (reward, constraints, Pareto fronts) and the report, on hand-made candidates."""

import csv
import json

import pytest

from tinysnn.config import ConfigError
from tinysnn.report import write_report
from tinysnn.select import (Candidate, SelectionConfig, choose, load_candidates, main, pareto_front, parse_args,
                            ranked, reward, violations)


def cand(name: str, accuracy: float, memory_norm: float, bits: int | None = 8, inference_uj: float | None = 10.0,
         training_uj: float | None = 20.0, dataset: str = "mnist", scheme: str = "ptq", target: str = "w",
         rounding: str = "nearest") -> Candidate:
    return Candidate(path=name, dataset=dataset, topology="tinysnn", scheme=scheme, bits=bits, target=target,
                     rounding=rounding, train_images=0, accuracy=accuracy, memory_bytes=memory_norm * 1_000_000,
                     memory_norm=memory_norm, inference_uj=inference_uj, training_uj=training_uj)


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


def test_pareto_front_keeps_only_undominated_models():
    front = pareto_front(ALL, lambda c: c.memory_norm)
    assert [c.path for c in front] == ["q4", "q8", "fp32"]  # q4bad: same memory as q4, less accurate
    assert [c.path for c in pareto_front(ALL, lambda c: c.inference_uj)] == ["q4bad", "q4", "q8", "fp32"]
    assert pareto_front([cand("x", 0.5, 0.5, inference_uj=None)], lambda c: c.inference_uj) == []


def test_overrides_are_parsed_and_checked(tmp_path):
    folders, config = parse_args([str(tmp_path), "selection.mu=0.3", "selection.max_memory_kb=100"])
    assert folders == [tmp_path] and config.mu == 0.3 and config.max_memory_kb == 100
    with pytest.raises(ConfigError, match="selection.mu"):
        parse_args([str(tmp_path), "selection.mu=-1"])
    with pytest.raises(ConfigError, match="unknown override"):
        parse_args([str(tmp_path), "mu=1"])
    with pytest.raises(ConfigError, match="invalid selection override"):
        parse_args([str(tmp_path), "selection.nonsense=1"])
    with pytest.raises(ConfigError, match="at least one sweep folder"):
        parse_args(["selection.mu=1"])


def _metrics(accuracy: float, bits: int | None, target: str = "w", dataset: str = "mnist") -> dict:
    return {"dataset": dataset, "topology": "tinysnn",
            "quant": {"active": bits is not None, "scheme": "ptq" if bits else "none", "bits": bits,
                      "target": target, "rounding": "nearest", "reference": None},
            "train": {"images": 0}, "accuracy": {"all_activity": accuracy, "proportion": accuracy},
            "memory": {"total_bytes": 1000.0 * (bits or 32), "normalized": (bits or 32) / 32},
            "energy_pj_per_image": {"train": None, "inference": {"total": 1e6 * (bits or 32)}}}


def test_select_cli_and_report_from_run_folders(tmp_path, capsys):
    for name, m in {"a": _metrics(0.9, None), "b": _metrics(0.88, 8), "c": _metrics(0.5, 4, "wn"),
                    "d": _metrics(0.7, 8, dataset="fashion_mnist")}.items():
        (tmp_path / "sweep" / name).mkdir(parents=True)
        (tmp_path / "sweep" / name / "metrics.json").write_text(json.dumps(m))
    assert main([str(tmp_path / "sweep"), "selection.mu=0.1"]) == 0
    printed = capsys.readouterr().out
    assert "## mnist: 3 models" in printed and "**Chosen:** tinysnn PTQ 8-bit qW nearest" in printed
    assert "| 0.5 |" in printed  # the μ sweep

    candidates = load_candidates([tmp_path / "sweep"])
    written = write_report(candidates, SelectionConfig(), tmp_path / "report", figures=False)
    rows = list(csv.DictReader((tmp_path / "report" / "runs.csv").open()))
    assert len(rows) == 4 and {r["bits"] for r in rows} == {"FP32", "8", "4"}
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## fashion_mnist" in summary and "| 8 | qW | 7.8 | 8.00 | 4.00× | 4.00× |" in summary
    assert [p.name for p in written] == ["runs.csv", "summary.md"]
    assert main([str(tmp_path / "missing")]) == 2
