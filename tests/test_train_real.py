"""End-to-end runs on real MNIST (marked slow; need `make data`)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from tinysnn import conf
from tinysnn.checkpoint import load_checkpoint
from tinysnn.config import register_configs, validate
from tinysnn.pipeline import load_splits, run, run_grid

from .conftest import requires_mnist

CONF = Path(conf.__file__).resolve().parent
pytestmark = [pytest.mark.slow, requires_mnist]
register_configs()


#: the validation split of a test run, unless the test sets its own: validating on the default
#: 1,000 images took half the time of a small run
TEST_VAL = "run.n_val=100"


def config(*overrides: str):
    own_val = any(override.startswith("run.n_val=") for override in overrides)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return validate(compose(config_name="config",
                                overrides=["run.progress=false", *overrides, *([] if own_val else [TEST_VAL])]))


def test_short_training_is_far_above_chance(tmp_path):
    cfg = config("model.n_neurons=100", "run.n_train=1000", "run.n_label=1000", "run.n_test=1000")
    metrics = run(cfg, tmp_path)
    assert metrics["train"]["images"] == 1000
    # chance is 10%; 100 neurons after 1,000 images reach ~60%
    assert metrics["accuracy"]["all_activity"] > 0.45
    assert metrics["accuracy"]["proportion"] > 0.45


def test_same_seed_gives_identical_metrics_and_weights(tmp_path):
    overrides = ["model.n_neurons=20", "run.n_train=60", "run.n_label=100", "run.n_test=100", "sim.presentation_ms=100"]
    a = run(config(*overrides), tmp_path / "a")
    b = run(config(*overrides), tmp_path / "b")
    run(config(*overrides, "seed=1"), tmp_path / "c")
    for key in ("accuracy", "per_replica"):
        assert a[key] == b[key]
    wa, wb, wc = (load_checkpoint(tmp_path / n / "checkpoint.pt")["weights"] for n in "abc")
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_entry_point_from_another_directory(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinysnn.train", "run=smoke", "model.n_neurons=30", "run.n_train=50",
           "run.n_label=100", "run.n_test=100", "run.replicas=2", "run.progress=false", TEST_VAL,
           f"hydra.run.dir={out}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TINYSNN_DATA": str(Path(__file__).resolve().parents[1] / "data")})
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["per_replica"]) == 2
    assert metrics["choices"]["model"] == "diehl_cook" and metrics["choices"]["run"] == "smoke"
    assert len(metrics["per_replica"][0]["confusion"]["all_activity"]) == 10
    checkpoint = load_checkpoint(out / "checkpoint.pt")  # weights_only=True inside
    assert checkpoint["weights"].shape == (2, 784, 30) and checkpoint["theta"].shape == (2, 30)
    assert checkpoint["config"]["model"]["n_neurons"] == 30
    assert (out / "receptive_fields.png").stat().st_size > 1000
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("override,message", [
    ("sim.max_rate_hz=-1", "sim.max_rate_hz"),
    ("run.n_test=20000", "run.n_test"),
])
def test_entry_point_rejects_bad_values_clearly(tmp_path, override, message):
    cmd = [sys.executable, "-m", "tinysnn.train", override, f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("model", ["diehl_cook", "tinysnn"])
@pytest.mark.parametrize("learning", ["pair_stdp", "sl_stdp", "adaptive"])
def test_every_model_learning_combination_runs(tmp_path, model, learning):
    cfg = config(f"model={model}", f"learning={learning}", "model.n_neurons=20", "run.n_train=30",
                 "run.n_label=50", "run.n_test=50", "sim.presentation_ms=100")
    metrics = run(cfg, tmp_path)
    assert metrics["topology"] == model and metrics["rule"] == learning
    assert metrics["train"]["spikes_per_image"] > 0
    assert 0.0 <= metrics["accuracy"]["all_activity"] <= 1.0


def test_ptq_and_itq_from_an_fp32_reference(tmp_path):
    """FP32 records its ranges; PTQ quantizes its checkpoint without training; ITQ trains in fixed point."""
    base = ["model=tinysnn", "learning=adaptive", "model.n_neurons=50", "run.n_train=300", "run.n_label=300",
            "run.n_test=300"]
    fp32 = run(config(*base), tmp_path / "fp32")
    ranges = fp32["ranges"]
    assert ranges["weights"]["high"] <= 1.0 and ranges["v_mem"]["low"] < 0 < ranges["v_th"]["low"]
    assert fp32["accuracy"]["all_activity"] > 0.4

    reference = f"quant.reference={tmp_path / 'fp32'}"
    ptq16 = run(config(*base, "scheme=ptq", "precision=q16", "target=wn", reference), tmp_path / "ptq16")
    assert ptq16["train"]["images"] == 0 and ptq16["quant"]["formats"]["membrane"].startswith("Q")
    assert abs(ptq16["accuracy"]["all_activity"] - fp32["accuracy"]["all_activity"]) <= 0.03
    ptq_checkpoint = load_checkpoint(tmp_path / "ptq16" / "checkpoint.pt")
    step = ptq16["quant"]["weight_step"]
    assert torch.equal(ptq_checkpoint["weights"] / step, (ptq_checkpoint["weights"] / step).round())
    assert (tmp_path / "ptq16" / "export.pt").is_file()

    ptq2 = run(config(*base, "scheme=ptq", "precision=q4", "target=wn", "rounding=truncate", reference),
               tmp_path / "ptq4")
    assert ptq2["quant"]["formats"]["weights"] == "UQ0.4"

    itq = run(config(*base, "scheme=itq", "precision=q8", "rounding=stochastic", reference), tmp_path / "itq")
    assert itq["train"]["images"] == 300 and itq["accuracy"]["all_activity"] > 0.3
    assert "ranges" not in itq  # ranges describe FP32 runs only


def test_ranges_cli_reproduces_the_recorded_ranges(tmp_path):
    out = tmp_path / "fp32"
    run(config("model.n_neurons=20", "run.n_train=50", "run.n_label=100", "run.n_test=50"), out)
    recorded = json.loads((out / "metrics.json").read_text())
    metrics = dict(recorded)
    del metrics["ranges"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    result = subprocess.run([sys.executable, "-m", "tinysnn.ranges", f"runs=[{out}]"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["ranges"] == recorded["ranges"]


def test_quantized_run_without_reference_is_a_clear_error(tmp_path):
    cmd = [sys.executable, "-m", "tinysnn.train", "scheme=itq", "precision=q8", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "quant.reference" in result.stderr and "Traceback" not in result.stderr


def test_ptq_sweep_runs_in_parallel_with_the_joblib_launcher(tmp_path):
    """One --multirun line over the quant groups, two jobs at a time, each a complete run."""
    fp32 = tmp_path / "fp32"
    run(config("model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_train=50", "run.n_label=100",
               "run.n_test=50"), fp32)
    cmd = [sys.executable, "-m", "tinysnn.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
           "model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_label=100", "run.n_test=50",
           "run.progress=false", "eval_threads=1", "scheme=ptq", "precision=q8", "target=w,wn", TEST_VAL,
           f"quant.reference={fp32}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    files = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert sorted(json.loads(p.read_text())["quant"]["target"] for p in files) == ["w", "wn"]
    # the same sweep again: both jobs finished, so both are skipped and nothing is rewritten
    stamps = [p.stat().st_mtime_ns for p in files]
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped (finished earlier)") == 2
    assert [p.stat().st_mtime_ns for p in files] == stamps


def test_itq_grid_in_one_simulation_equals_separate_runs(tmp_path):
    """An ITQ grid (2 widths × 2 roundings, qWN) trains as one 4-replica simulation; each variant's
    folder holds the metrics and weights of its separate run."""
    base = ["model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_train=40", "run.n_label=100",
            "run.n_test=100"]
    run(config(*base), tmp_path / "fp32")
    itq = [*base, "scheme=itq", "target=wn", f"quant.reference={tmp_path / 'fp32'}"]
    grid = run_grid(config(*itq, "quant.grid_bits=[8,6]", "quant.grid_roundings=[nearest,stochastic]"),
                    tmp_path / "grid")
    assert sorted(grid) == ["q6_nearest", "q6_stochastic", "q8_nearest", "q8_stochastic"]
    for folder in ("q8_stochastic", "q6_nearest"):
        bits, rounding = folder[1:].split("_")
        alone = run(config(*itq, f"quant.bits={bits}", f"quant.rounding={rounding}"), tmp_path / folder)
        assert grid[folder]["accuracy"] == alone["accuracy"]
        # what the variant's own replicas did, not the whole grid
        assert grid[folder]["ops"]["train"] == alone["ops"]["train"]
        assert grid[folder]["energy_pj_per_image"]["train"] == alone["energy_pj_per_image"]["train"]
        assert grid[folder]["grid"]["replicas"] == 4 and grid[folder]["quant"]["bits"] == int(bits)
        together = load_checkpoint(tmp_path / "grid" / folder / "checkpoint.pt")
        separate = load_checkpoint(tmp_path / folder / "checkpoint.pt")
        assert torch.equal(together["weights"], separate["weights"])
        assert torch.equal(together["theta"], separate["theta"])


@pytest.mark.parametrize("quant", [[], ["scheme=itq", "precision=q8", "rounding=stochastic", "target=wn"]],
                         ids=["fp32", "itq_wn_stochastic"])
def test_replica_r_equals_the_separate_run_with_seed_plus_r(tmp_path, quant):
    """Training, labelling and testing: replica 1 of seeds 3–4 is the run with seed 4, in every
    recorded number and parameter."""
    base = ["model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_train=30", "run.n_label=100",
            "run.n_test=100"]
    if quant:
        run(config(*base, "seed=3"), tmp_path / "fp32")
        base += [*quant, f"quant.reference={tmp_path / 'fp32'}"]
    together = run(config(*base, "seed=3", "run.replicas=2"), tmp_path / "together")
    alone = run(config(*base, "seed=4"), tmp_path / "alone")
    assert together["per_replica"][1] == alone["per_replica"][0]
    assert together["per_replica"][0] != together["per_replica"][1]  # the seeds do differ
    a = load_checkpoint(tmp_path / "together" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "alone" / "checkpoint.pt")
    for key in ("weights", "theta", "assignments", "proportions"):
        assert torch.equal(a[key][1], b[key][0]), key


def test_sweep_on_submitit_local_then_select_and_report(tmp_path):
    """The SLURM launcher's code path through submitit's local executor, then the selection and the
    report of that sweep."""
    tiny = ["model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_label=100", "run.n_test=50"]
    fp32 = tmp_path / "fp32"
    run(config(*tiny, "run.n_train=50"), fp32)
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "tinysnn.train", "-m", "hydra/launcher=submitit_local",
           "hydra.launcher.timeout_min=10", *tiny, "run.progress=false", "eval_threads=1", TEST_VAL, "scheme=ptq",
           "precision=q8", "target=w,wn", f"quant.reference={fp32}", f"hydra.sweep.dir={sweep}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(sweep.glob("*/metrics.json"))) == 2

    select = subprocess.run([sys.executable, "-m", "tinysnn.selection", f"sweeps=[{sweep}]", "selection.mu=0.5"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert select.returncode == 0, select.stderr
    assert "## mnist: 2 models, μ = 0.5" in select.stdout and "**Chosen:** tinysnn PTQ 8-bit" in select.stdout
    report = subprocess.run([sys.executable, "-m", "tinysnn.report", f"sweeps=[{sweep}]", f"out={tmp_path / 'report'}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"runs.csv", "summary.md", "fig6_accuracy.png", "fig7_memory.png", "fig8_energy.png",
            "fig9_reward.png"} <= names


@pytest.mark.parametrize("n_val,n_train,n_label", [(10000, None, None), (1000, 5000, 20000)])
def test_the_validation_split_never_overlaps_training_or_labels(n_val, n_train, n_label):
    overrides = [f"run.n_val={n_val}", f"run.n_train={n_train or 'null'}", f"run.n_label={n_label or 'null'}"]
    splits = load_splits(config("run=default", *overrides))
    assert len(splits.val) == n_val
    val = {bytes(image.numpy()) for image in splits.val.images}
    for used in (splits.train, splits.label):
        assert len(used) <= 60000 - n_val
        assert not val & {bytes(image.numpy()) for image in used.images}
    if n_train is None:  # a full epoch trains on every image outside the validation split
        assert len(splits.train) + n_val == 60000


def _compare_runs():
    """scripts/compare_runs.py's ``compare``: the project's proof that two run folders hold the same results."""
    spec = importlib.util.spec_from_file_location("compare_runs", Path(__file__).resolve().parents[1] / "scripts"
                                                  / "compare_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare


def _killed_in_evaluation(monkeypatch, cfg, folder: Path) -> None:
    """Run ``cfg`` into ``folder`` and die, as a kill would, once training is done."""
    import tinysnn.pipeline as pipeline

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_evaluate", killed)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, folder)


def test_a_run_killed_while_it_evaluates_resumes_at_its_evaluation(tmp_path, monkeypatch):
    """Training is saved before evaluation (training.pt): a run that dies evaluating resumes there
    without training again, and its folders equal an uninterrupted run's; the file then goes."""
    import tinysnn.pipeline as pipeline

    base = ["model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_train=40", "run.n_label=100",
            "run.n_test=100", "run.replicas=2", "run.monitor_every=10"]
    run(config(*base), tmp_path / "whole")
    _killed_in_evaluation(monkeypatch, config(*base), tmp_path / "resumed")
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["training.pt"]
    monkeypatch.setattr(pipeline, "_train", lambda *args, **kwargs: pytest.fail("trained again"))
    resumed = run(config(*base), tmp_path / "resumed")
    # metrics (less the clock's readings), checkpoint tensors and export, as a refactor's proof compares them
    assert _compare_runs()(tmp_path / "whole", tmp_path / "resumed") == []
    assert resumed["train"]["k_distribution"] and resumed["train"]["running_accuracy"]
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("whole", "resumed"))
    assert all(torch.equal(x, y) for x, y in zip(a["rng_states"], b["rng_states"], strict=True))
    assert not (tmp_path / "resumed" / "training.pt").exists()


def _killed_in_training(monkeypatch, cfg, folder: Path, after: int) -> None:
    """Run ``cfg`` (a grid when it has one) into ``folder`` and die, as a kill would, while it trains
    image ``after`` + 1."""
    import tinysnn.sim.protocol as protocol

    real, calls = protocol.train_image, 0

    def train_image(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls > after:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(protocol, "train_image", train_image)
        with pytest.raises(KeyboardInterrupt):
            _run_or_grid(cfg, folder)


def _resumable(tmp_path: Path, setting: str) -> list[str]:
    """The overrides of a small run (``diehl_cook``) or qWN ITQ grid (``itq_grid``, its FP32 reference
    trained into ``tmp_path``) that saves and resumes its training."""
    base = ["model.n_neurons=20", "run.n_train=25", "run.n_label=100", "run.n_test=100", "run.replicas=2",
            "run.monitor_every=10"]
    if setting == "diehl_cook":  # spike-driven STDP, with D&C's retries
        return [*base, "model=diehl_cook", "learning=sl_stdp"]
    # tinySNN's windowed rule and k, stochastic rounding of u and θ
    base += ["model=tinysnn", "learning=adaptive"]
    run(config(*base), tmp_path / "fp32")
    return [*base, "scheme=itq", "target=wn", f"quant.reference={tmp_path / 'fp32'}", "quant.grid_bits=[8]",
            "quant.grid_roundings=[nearest,stochastic]"]


def _run_or_grid(cfg, folder: Path):
    return (run_grid if cfg.quant.is_grid else run)(cfg, folder)


def _assert_same_runs(whole: Path, resumed: Path) -> None:
    """Equal folders (metrics, parameters, every generator — rounding's too) and no state left behind."""
    assert _compare_runs()(whole, resumed) == []
    for checkpoint in whole.rglob("checkpoint.pt"):
        a, b = load_checkpoint(checkpoint), load_checkpoint(resumed / checkpoint.relative_to(whole))
        assert all(torch.equal(x, y) for x, y in zip(a["rng_states"], b["rng_states"], strict=True))
    assert not list(resumed.rglob("training.pt"))


@pytest.mark.parametrize("setting", ["diehl_cook", "itq_grid"])
def test_a_run_killed_while_it_trains_resumes_at_its_last_saved_image(tmp_path, monkeypatch, capsys, setting):
    """With run.checkpoint_minutes=0 the training state is saved after every image: a run killed
    mid-training resumes after the last saved image, and its folders equal an uninterrupted run's
    (parameters, op counts, k counts, running accuracy, every generator — rounding's too)."""
    base = _resumable(tmp_path, setting)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    _run_or_grid(config(*base), whole)
    _killed_in_training(monkeypatch, config(*base, "run.checkpoint_minutes=0"), resumed, after=17)
    capsys.readouterr()
    # the checkpoint interval changes no result: the state saved with another one is reused
    _run_or_grid(config(*base), resumed)
    assert "resumed training after 17 images" in capsys.readouterr().out
    _assert_same_runs(whole, resumed)


@pytest.mark.parametrize("setting", ["diehl_cook", "itq_grid"])
def test_a_state_with_op_totals_resumes_a_run_and_retrains_a_grid(tmp_path, monkeypatch, capsys, setting):
    """A state saved when op counts were kept for the whole simulation only: a run resumes from it
    (its record is their sum), a grid trains again (each variant records its own replicas');
    either ends equal to an uninterrupted run."""
    from tinysnn.ops import FIELDS

    base = _resumable(tmp_path, setting)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    _run_or_grid(config(*base), whole)
    _killed_in_training(monkeypatch, config(*base, "run.checkpoint_minutes=0"), resumed, after=17)
    [state_path] = resumed.rglob("training.pt")
    state = torch.load(state_path, weights_only=True)
    state["ops"] = {name: sum(state["ops"][name]) for name in FIELDS}  # what an older version saved
    torch.save(state, state_path)
    capsys.readouterr()
    _run_or_grid(config(*base), resumed)
    out, err = capsys.readouterr()
    if setting == "itq_grid":
        assert "training again" in err and "resumed training" not in out
    else:
        assert "resumed training after 17 images" in out
    _assert_same_runs(whole, resumed)


def test_a_saved_training_of_another_configuration_is_not_reused(tmp_path, monkeypatch, capsys):
    base = ["model.n_neurons=20", "run.n_train=20", "run.n_label=50", "run.n_test=50"]
    _killed_in_evaluation(monkeypatch, config(*base), tmp_path)
    other = run(config(*base, "seed=1"), tmp_path)
    assert other["train"]["images"] == 20 and other["config"]["seed"] == 1
    assert "was saved by another configuration; training again" in capsys.readouterr().err
    assert not (tmp_path / "training.pt").exists()
