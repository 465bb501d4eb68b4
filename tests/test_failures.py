"""Bad input as a new user would give it: one line naming the problem and its fix, never a
traceback; a failed run folder explains itself; a sweep resumes past a damaged record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import requires_mnist

pytestmark = [pytest.mark.slow, requires_mnist]

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = ["model=tinysnn", "learning=adaptive", "model.n_neurons=20", "run.n_train=5", "run.n_label=30",
        "run.n_test=30", "run.n_val=30", "run.progress=false"]


def train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinysnn.train", *overrides], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TINYSNN_DATA": str(DATA)})


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")  # not module: xdist workers interleave modules (see test_optimize.study)
def reference(tmp_path_factory) -> Path:
    """A small FP32 tinySNN run to quantize."""
    folder = tmp_path_factory.mktemp("reference")
    result = train(folder, *TINY, "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-2000:]
    return folder / "run"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_config_error(tmp_path):
    one_line_error(train(tmp_path, *TINY, "device=cuda", "hydra.run.dir=run"), "device", "device=cpu")


def _damaged_copy(reference: Path, folder: Path, damage: str) -> Path:
    copy = folder / "reference"
    copy.mkdir()
    for name in ("metrics.json", "checkpoint.pt"):
        (copy / name).write_bytes((reference / name).read_bytes())
    if damage == "metrics_not_json":
        (copy / "metrics.json").write_text('{"dataset": "mnist", "accur')
    elif damage == "checkpoint_missing":
        (copy / "checkpoint.pt").unlink()
    else:  # truncated
        data = (copy / "checkpoint.pt").read_bytes()
        (copy / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    return copy


@pytest.mark.parametrize("damage,file,fix", [
    ("metrics_not_json", "metrics.json", "re-run"),
    ("checkpoint_missing", "checkpoint.pt", "train one"),
    ("checkpoint_truncated", "checkpoint.pt", "re-run the training"),
])
@pytest.mark.xdist_group("failures_reference")  # shares a session fixture: one worker builds it once
def test_a_damaged_reference_is_named_before_any_data_is_loaded(reference, tmp_path, damage, file, fix):
    copy = _damaged_copy(reference, tmp_path, damage)
    # dataset.root points nowhere: were the data loaded first, the error would name the dataset instead
    result = train(tmp_path, *TINY, "scheme=ptq", "precision=q8", f"quant.reference={copy}",
                   f"dataset.root={tmp_path / 'no-data'}", "hydra.run.dir=run")
    line = one_line_error(result, "quant.reference", str(copy / file), fix)
    assert "no-data" not in line


def test_a_failed_run_writes_its_error_into_its_log(tmp_path):
    result = train(tmp_path, *TINY, f"dataset.root={tmp_path / 'no-data'}", "hydra.run.dir=run")
    line = one_line_error(result, "no-data")
    assert line in (tmp_path / "run" / "train.log").read_text()


def test_a_sweep_reruns_a_job_whose_record_is_damaged(tmp_path):
    sweep = ["-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    first = train(tmp_path, *sweep)
    assert first.returncode == 0, first.stderr[-2000:]
    damaged = tmp_path / "sweep" / "1" / "metrics.json"
    expected = json.loads(damaged.read_text())["per_replica"]
    damaged.write_text('{"accuracy": ')
    again = train(tmp_path, *sweep)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "skipped (finished earlier)" in again.stdout  # job 0
    assert "warning:" in again.stderr and "sweep/1/metrics.json is not valid JSON" in again.stderr
    assert json.loads(damaged.read_text())["per_replica"] == expected  # re-run, same result
