"""``python -m tinysnn.optimize``: the stage cache (reuse, re-run, resume) on toy stages; the presets'
composed commands and bad input; and (slow, real MNIST) the whole flow on tiny networks — its table,
a constraint, resume after kill -9, and reuse of finished stages."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tinysnn.config import ConfigError, OptimizeConfig, register_configs
from tinysnn.optimize.__main__ import check_preset
from tinysnn.optimize.flow import build, has_compiler
from tinysnn.optimize.stages import Runner, Stage, StageFailed

from .conftest import requires_mnist

DATA = Path(__file__).resolve().parents[1] / "data"
STAGES = ["baseline", "fp32", "ranges", "ptq", "itq", "select", "report", "deploy"]
register_configs()


def real(test):
    """A test that trains on real MNIST."""
    return pytest.mark.slow(requires_mnist(test))


# --- the stage cache, on toy stages -------------------------------------------------------


def _toy(calls: list[str], name: str, value: int, depends: tuple[str, ...] = ()) -> Stage:
    def work(folder: Path, done: dict) -> dict:
        calls.append(name)
        (folder / "result.txt").write_text(str(value))
        return {"value": value + sum(done[d]["value"] for d in depends)}

    return Stage(name, f"toy {name}", {"value": value}, work, depends)


def _run(out: Path, stages: list[Stage]) -> Runner:
    runner = Runner(out, len(stages))
    for stage in stages:
        runner.run(stage)
    return runner


def test_a_finished_stage_is_reused_and_a_changed_one_runs_again_with_all_after_it(tmp_path, capsys):
    calls: list[str] = []
    first = _run(tmp_path, [_toy(calls, "a", 1), _toy(calls, "b", 2), _toy(calls, "c", 3, ("a",))])
    assert calls == ["a", "b", "c"] and first.done["c"] == {"value": 4}
    again = _run(tmp_path, [_toy(calls, "a", 1), _toy(calls, "b", 2), _toy(calls, "c", 3, ("a",))])
    assert calls == ["a", "b", "c"] and again.reused == ["a", "b", "c"] and again.done == first.done
    assert "[2/3] b: reused (finished earlier with the same inputs, in 0.0 s)" in capsys.readouterr().out
    (tmp_path / "a" / "stale.txt").write_text("from other inputs")
    changed = _run(tmp_path, [_toy(calls, "a", 10), _toy(calls, "b", 2), _toy(calls, "c", 3, ("a",))])
    assert calls[3:] == ["a", "c"] and changed.reused == ["b"] and changed.done["c"] == {"value": 13}
    assert not (tmp_path / "a" / "stale.txt").exists()  # a changed stage starts from an empty folder
    assert "inputs changed since" in capsys.readouterr().err


def test_an_interrupted_stage_resumes_in_its_folder(tmp_path, capsys):
    calls: list[str] = []

    def killed(folder: Path, done: dict) -> dict:
        (folder / "half.txt").write_text("a finished job")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, [Stage("a", "toy a", {"value": 1}, killed)])
    assert json.loads((tmp_path / "a" / "stage.json").read_text())["finished"] is False
    _run(tmp_path, [_toy(calls, "a", 1)])
    assert calls == ["a"] and (tmp_path / "a" / "half.txt").is_file()  # resumed, not cleared
    assert "resuming an interrupted run" in capsys.readouterr().out


def test_an_interrupted_sweep_tells_how_far_it_got(tmp_path, capsys):
    """Resuming (or a dry run of) an interrupted training stage names its finished runs and the image
    each saved training state is at; a damaged state is not told (its run trains again)."""
    import torch

    from tinysnn.optimize.training import Sweep, sweep_progress

    sweep = Sweep([], 2, "${hydra:runtime.choices.target}", ["w/q8_nearest", "w/q4_nearest", "wn/q8_nearest"])
    stage = Stage("itq", "toy grid", {"value": 1}, lambda folder, done: {}, progress=lambda f: sweep_progress(f, sweep))

    def interrupted(folder: Path, done: dict) -> dict:
        (folder / "w" / "q8_nearest").mkdir(parents=True)
        (folder / "w" / "q8_nearest" / "metrics.json").write_text("{}")
        (folder / "w" / "q4_nearest").mkdir(parents=True)
        torch.save({"log": {"images": 5919}, "monitor": {"window": []}}, folder / "w" / "training.pt")
        (folder / "wn").mkdir()
        (folder / "wn" / "training.pt").write_bytes(b"damaged")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, [Stage("itq", "toy grid", {"value": 1}, interrupted)])
    capsys.readouterr()
    Runner(tmp_path, 1, dry_run=True).run(stage)
    out = capsys.readouterr().out
    assert "would resume an interrupted run" in out
    assert "so far: 1 of 3 run(s) finished; w: training saved at image 5,919\n" in out
    torch.save({"log": {"images": 6000}, "monitor": None}, tmp_path / "itq" / "w" / "training.pt")
    _run(tmp_path, [stage])
    assert "resuming an interrupted run\n    so far: 1 of 3 run(s) finished; w: trained, evaluation under way" \
        in capsys.readouterr().out


def test_a_folder_it_did_not_write_is_refused_and_a_damaged_record_is_redone(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "mine.txt").write_text("someone's data")
    with pytest.raises(ConfigError, match="invalid config `out`: .* was not written by tinysnn.optimize"):
        _run(tmp_path, [_toy([], "a", 1)])
    calls: list[str] = []
    _run(tmp_path / "b", [_toy(calls, "a", 1)])
    (tmp_path / "b" / "a" / "stage.json").write_text('{"stage": "a", "fin')
    _run(tmp_path / "b", [_toy(calls, "a", 1)])
    assert calls == ["a", "a"]


def test_a_background_stage_runs_beside_the_next_until_one_depends_on_it(tmp_path):
    beside = threading.Event()

    def background(folder: Path, done: dict) -> dict:
        # if the runner ran the stages one after another, the next stage would not have started
        assert beside.wait(timeout=30), "the next stage did not run beside the background stage"
        return {"value": 1}

    def foreground(folder: Path, done: dict) -> dict:
        beside.set()
        return {"value": 2}

    def after(folder: Path, done: dict) -> dict:
        return {"value": done["a"]["value"] + done["b"]["value"]}  # both finished before it started

    runner = Runner(tmp_path, 3)
    runner.run_all([Stage("a", "toy a", {}, background, background=True), Stage("b", "toy b", {}, foreground),
                    Stage("c", "toy c", {}, after, ("a", "b"))])
    assert runner.done["c"] == {"value": 3} and sorted(runner.ran) == ["a", "b", "c"]
    assert json.loads((tmp_path / "a" / "stage.json").read_text())["finished"] is True


def test_a_failed_background_stage_fails_the_run_and_resumes_later(tmp_path, capsys):
    def fails(folder: Path, done: dict) -> dict:
        raise StageFailed("a", "tinysnn.train", 3, f"in {folder / 'output.log'}")

    with pytest.raises(StageFailed, match=r"exited with status 3 \(its output is in .*output.log\)"):
        Runner(tmp_path, 2).run_all([Stage("a", "toy a", {"value": 1}, fails, background=True),
                                     _toy([], "b", 2)])
    assert "[1/2] a: failed" in capsys.readouterr().err
    assert json.loads((tmp_path / "a" / "stage.json").read_text())["finished"] is False
    calls: list[str] = []
    again = Runner(tmp_path, 2)
    again.run_all([_toy(calls, "a", 1), _toy(calls, "b", 2)])
    assert calls == ["a"] and again.reused == ["b"]
    assert "[1/2] a: toy a — resuming an interrupted run" in capsys.readouterr().out


# --- configuration: presets, commands, bad input ------------------------------------------


def _config(*overrides: str) -> OptimizeConfig:
    with initialize_config_module(config_module="tinysnn.conf", version_base="1.3"):
        cfg = compose(config_name="optimize", overrides=["out=unused", *overrides])
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, OptimizeConfig)
    return config


def _commands(tmp_path: Path, *overrides: str) -> list[str]:
    """The training stages' command lines (what dry_run=true prints)."""
    return [stage.command for stage in build(_config(*overrides), tmp_path) if stage.command]


@pytest.mark.parametrize("preset,dataset", [("paper_mnist", "mnist"), ("paper_fashion_mnist", "fashion_mnist")])
def test_the_paper_presets_compose_the_papers_study(tmp_path, preset, dataset):
    baseline, fp32, ptq, itq = _commands(tmp_path, f"optimize={preset}")
    for line in (fp32, baseline, ptq, itq):
        assert "run=default run.n_label=10000" in line and "run.replicas=3" in line
    assert f"experiment=tinysnn_{dataset}" in fp32 and "scheme" not in fp32
    assert f"dataset={dataset} model=diehl_cook learning=pair_stdp" in baseline
    assert f"quant.reference={tmp_path / 'fp32' / 'tinysnn'}" in ptq
    assert "scheme=ptq" in ptq and "quant.bits=16,12,10,8,6,4 rounding=truncate,nearest,stochastic target=w,wn" in ptq
    assert "scheme=itq" in itq and "'quant.grid_bits=[16,8,6,4]'" in itq and "target=w,wn" in itq
    assert ptq.endswith("hydra/launcher=joblib hydra.launcher.n_jobs=2")


def test_the_launcher_reaches_every_training_stage(tmp_path):
    """launcher=slurm, with its arguments, on every sweep; joblib only where a stage has several jobs."""
    commands = _commands(tmp_path, "launcher=slurm", 'launcher_args=["hydra.launcher.partition=gpu"]')
    assert len(commands) == 4
    assert all(c.endswith("hydra/launcher=slurm hydra.launcher.partition=gpu") for c in commands)
    baseline, fp32, ptq, itq = _commands(tmp_path, "n_jobs=3")
    assert fp32.endswith("hydra/launcher=basic") and itq.endswith("hydra/launcher=basic")  # one job each
    assert ptq.endswith("hydra/launcher=joblib hydra.launcher.n_jobs=3")


def test_a_study_without_widths_skips_its_scheme(tmp_path):
    stages = build(_config("ptq.bits=[]", "itq.bits=[]"), tmp_path)
    assert [s.name for s in stages] == ["baseline", "fp32", "ranges", "select", "report", "deploy"]


@pytest.mark.parametrize("overrides,key,fix", [
    (["constraints.max_memory_kb=-5"], "constraints.max_memory_kb", "> 0"),
    (["constraints.min_accuracy=85"], "constraints.min_accuracy", "0.85 = 85 %"),
    (["seeds=0"], "seeds", ">= 1"),
    (["ptq.bits=[8,1]"], "ptq.bits", "between 2 and"),
    (['extra=["run.replicas=4"]'], "extra", "seeds="),
    (['extra=["quant.reference=x"]'], "extra", "reference="),
], ids=["negative_memory", "accuracy_in_percent", "no_seeds", "one_bit", "replicas", "reference"])
def test_impossible_values_name_the_key_and_the_fix(overrides, key, fix):
    with pytest.raises(ConfigError, match=f"invalid config `{key}`") as error:
        _config(*overrides)
    assert fix in str(error.value)


def test_a_missing_reference_or_an_unknown_preset_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="`reference`: .*no/such/run/metrics.json does not exist.*drop reference="):
        build(_config("reference=no/such/run"), tmp_path)
    with pytest.raises(ConfigError, match="`optimize`: no preset 'paper'; choose one of paper_fashion_mnist, "
                                          "paper_mnist, smoke"):
        check_preset(["seeds=2", "optimize=paper"])


def test_a_study_has_the_same_keys_and_commands_from_a_clone_elsewhere(tmp_path, monkeypatch, capsys):
    """The reference and given runs enter the stages' keys and commands relative to the working
    directory when they lie inside it, so the same study run from the root of another clone resumes
    there (with absolute paths every stage would start afresh)."""
    keys, commands = [], []
    for clone in ("a", "b"):
        root = tmp_path / clone
        baseline = root / "runs" / "baseline"
        baseline.mkdir(parents=True)
        (baseline / "metrics.json").write_text(json.dumps({"dataset": "mnist", "topology": "diehl_cook",
                                                            "rule": "pair_stdp", "quant": {"active": False}}))
        monkeypatch.chdir(root)
        stages = build(_config("baseline=runs/baseline"), root / "out")
        runner = Runner(root / "out", len(stages), dry_run=True)
        runner.run_all(stages)
        keys.append(runner.keys)
        commands.append([stage.command.replace(str(root), "<root>") for stage in stages if stage.command])
    assert keys[0] == keys[1] and commands[0] == commands[1]
    assert "quant.reference=out/fp32/tinysnn" in commands[0][1]  # the PTQ stage's command
    assert "would run" in capsys.readouterr().out


def test_a_baseline_that_is_not_pair_stdp_is_refused(tmp_path):
    """The baseline savings are measured against is D&C with pair STDP: a D&C SL-STDP run is refused."""
    folder = tmp_path / "sl_stdp"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"dataset": "mnist", "topology": "diehl_cook", "rule": "sl_stdp",
                                                     "quant": {"active": False}}))
    with pytest.raises(ConfigError, match="`baseline`: .* has rule=sl_stdp but this study needs rule=pair_stdp; "
                                          "give an FP32 Diehl & Cook baseline .*learning=pair_stdp"):
        build(_config(f"baseline={folder}"), tmp_path / "out")


@pytest.mark.parametrize("argument,key", [("optimize=paper", "`optimize`"),
                                          ("constraints.max_memory_kb=-5", "`constraints.max_memory_kb`")])
def test_bad_input_on_the_command_line_is_one_line(tmp_path, argument, key):
    result = subprocess.run([sys.executable, "-m", "tinysnn.optimize", argument, f"out={tmp_path / 'out'}"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and key in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


# --- the whole flow on real MNIST ---------------------------------------------------------

#: the smoke preset shrunk to seconds of compute: 20 neurons, 2 seeds, 40 training images, 8 bits
TINY = ["optimize=smoke", "seeds=2", "launcher=basic", "figures=false", "deploy_images=30",
        'extra=["model.n_neurons=20","run.n_train=40","run.n_label=60","run.n_val=60","run.n_test=60"]',
        "ptq.bits=[8]", "ptq.roundings=[nearest,truncate]", "ptq.targets=[w,wn]",
        "itq.bits=[8]", "itq.roundings=[nearest]", "itq.targets=[w]",
        # FP32 models (≈ 63 KB at 20 neurons) break it, 8-bit ones (≈ 16 KB) meet it
        "constraints.max_memory_kb=30"]


def _argv(out: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "tinysnn.optimize", *TINY, f"out={out}", *overrides]


def optimize(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(out, *overrides), capture_output=True, text=True, timeout=900, cwd=out.parent,
                          env={**os.environ, "TINYSNN_DATA": str(DATA)})


def finished(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def reused(stdout: str) -> set[str]:
    return {stage for stage in STAGES if f"] {stage}: reused" in stdout}


def results(out: Path) -> dict:
    """What must not depend on how a study got to its end: the selection (every model's accuracies,
    memory, energy, reward, constraints), every run's per-seed record, the report's runs.csv."""
    selection = json.loads((out / "select" / "stage.json").read_text())["outputs"]
    runs = {m["path"]: json.loads((out / m["path"] / "metrics.json").read_text())["per_replica"]
            for m in selection["models"]}
    table = list(csv.DictReader(io.StringIO((out / "report" / "runs.csv").read_text())))
    return {"selection": selection, "runs": runs, "runs.csv": table}


def _relative(value, outs: tuple[Path, ...]):
    """``value`` with every path inside one of ``outs`` made relative to it."""
    if isinstance(value, dict):
        return {_relative(k, outs): _relative(v, outs) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, outs) for v in value]
    if isinstance(value, str):
        if value.startswith("../"):  # a run outside the study's folder (the last of ``outs``), relative to it
            value = os.path.normpath(outs[-1] / value)
        for out in outs:
            value = value.removeprefix(f"{out}/")
    return value


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> dict:
    """One uninterrupted tiny study; its output and results are kept before other tests touch it.
    Session-scoped: under pytest-xdist a module fixture is torn down, and built again, whenever the
    worker running this module's tests runs another module's test in between."""
    out = tmp_path_factory.mktemp("study") / "out"
    stdout = finished(optimize(out))
    return {"out": out, "stdout": stdout, "results": results(out), "summary": (out / "summary.txt").read_text()}


@pytest.mark.xdist_group("optimize_study")  # shares the study fixture: one worker builds it once
@real
def test_the_flow_writes_the_table_and_the_choice_meets_the_constraint(study):
    out, selection = study["out"], study["results"]["selection"]
    for k, stage in enumerate(STAGES, 1):
        assert f"[{k}/8] {stage}: " in study["stdout"] and f"[{k}/8] {stage}: done in" in study["stdout"]
    assert study["summary"] in study["stdout"]
    # 2 FP32 models, 4 PTQ (8 bits × 2 roundings × qW/qWN), 1 ITQ
    assert len(selection["models"]) == 7 and "7 models" in study["summary"]
    for model in selection["models"]:
        assert model["seeds"] == 2 and model["val_std"] is not None and model["test_std"] is not None
        assert (model["memory_kb"] > 30) == ("memory" in model["violations"])
    chosen = next(m for m in selection["models"] if m["path"] == selection["chosen"])
    assert chosen["bits"] == 8 and not chosen["violations"]
    assert chosen["reward"] == max(m["reward"] for m in selection["models"] if not m["violations"])
    assert next(line for line in study["summary"].splitlines() if line.startswith("*  ")).endswith("ok")
    assert f"* chosen: {chosen['name']} — validation" in study["summary"]
    assert "breaks memory" in study["summary"] and "memory ≤ 30 KB" in study["summary"]
    assert f"chosen run   {Path('out') / chosen['path']}" in study["summary"]  # relative to the folder it ran in
    assert {"runs.csv", "summary.md"} <= {p.name for p in (out / "report").iterdir()}
    deploy = json.loads((out / "deploy" / "stage.json").read_text())["outputs"]
    assert (out / "deploy" / "c" / "model.c").is_file()
    assert deploy["verified"] == (30 if has_compiler() else 0)


@pytest.mark.xdist_group("optimize_study")  # shares the study fixture: one worker builds it once
@real
def test_kill_9_then_run_again_gives_the_uninterrupted_results(study, tmp_path):
    """Killed (the whole process group, as a crash would) while a PTQ job is half done, then re-run.
    This study quantizes the first study's FP32 runs (reference=, baseline=), so its PTQ and ITQ jobs
    are the first study's jobs, with the same overrides, and must give the same numbers."""
    out, first = tmp_path / "out", study["out"]
    given = [f"reference={first / 'fp32' / 'tinysnn'}", f"baseline={first / 'baseline' / 'diehl_cook'}"]
    process = subprocess.Popen(_argv(out, *given), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "TINYSNN_DATA": str(DATA)},
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not list((out / "ptq").glob("q8_*")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the study ended before the PTQ stage could be interrupted"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not json.loads((out / "ptq" / "stage.json").read_text())["finished"]
    assert not all((job / "metrics.json").is_file() for job in (out / "ptq").glob("q8_*"))
    stdout = finished(optimize(out, *given))
    assert reused(stdout) == {"fp32", "baseline", "ranges"}
    assert "] ptq: PTQ of the FP32 tinySNN, 4 configuration(s) — resuming an interrupted run" in stdout
    assert _relative(results(out), (first, out)) == _relative(study["results"], (first,))


@pytest.mark.xdist_group("optimize_study")  # shares the study fixture: one worker builds it once
@real
def test_a_finished_study_is_reused_and_a_new_constraint_reselects(study):
    out = study["out"]
    again = finished(optimize(out))
    assert reused(again) == set(STAGES) and "8 stages: 0 run, 8 reused" in again
    changed = finished(optimize(out, "constraints.max_memory_kb=null", "mu=0"))
    assert reused(changed) == {"fp32", "baseline", "ranges", "ptq", "itq"}
    selection = json.loads((out / "select" / "stage.json").read_text())["outputs"]
    # μ = 0 and no constraint: the best validation accuracy wins, whatever its memory
    assert selection["chosen"] == selection["models"][0]["path"]
    assert selection["models"][0]["val"] == max(m["val"] for m in selection["models"])
    assert "(paper Eq. 3, μ = 0)" in (out / "summary.txt").read_text()
