"""A non-editable install runs every command from any folder: the configs ship inside the package."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinysnn.data.datasets import default_data_root

from .conftest import requires_mnist

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")  # not module: xdist workers interleave modules (see test_optimize.study)
def installed(tmp_path_factory) -> Path:
    """tinysnn installed as a wheel would be (pip, no editable link), into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, cwd=build,
                   env={**os.environ, "PIP_NO_INPUT": "1"})
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed), "TINYSNN_DATA": str(default_data_root())}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.xdist_group("packaging")  # shares a session fixture: one worker builds it once
def test_installed_package_holds_its_configs(installed):
    conf = installed / "tinysnn" / "conf"
    assert (conf / "config.yaml").is_file() and (conf / "experiment" / "paper_mnist.yaml").is_file()
    assert not (installed / "tinysnn" / "conf" / "config.yaml").is_symlink()
    runtime = installed / "tinysnn" / "deploy" / "c"  # the C runtime `python -m tinysnn.deploy` copies
    assert all((runtime / name).is_file() for name in ("tinysnn.c", "tinysnn.h", "main.c", "Makefile",
                                                      "m7/startup.c", "m7/mps2_an500.ld"))
    assert (installed / "tinysnn" / "native" / "mt19937.c").is_file()  # built on first use


@pytest.mark.xdist_group("packaging")  # shares a session fixture: one worker builds it once
@requires_mnist
def test_installed_commands_run_from_another_folder(installed, tmp_path):
    train = _run(installed, tmp_path, "-m", "tinysnn.train", "run=smoke", "run.n_train=5", "run.n_label=30",
                 "run.n_test=30", "run.n_val=30", "model.n_neurons=20", "run.progress=false",
                 "hydra.run.dir=run")
    assert train.returncode == 0, train.stderr[-3000:]
    imported = _run(installed, tmp_path, "-c", "import tinysnn; print(tinysnn.__file__)")
    assert imported.stdout.startswith(str(installed)), "the run must use the installed copy, not the source tree"
    assert (tmp_path / "run" / "metrics.json").is_file()
    select = _run(installed, tmp_path, "-m", "tinysnn.selection", "sweeps=[run]")
    assert select.returncode == 0 and "Chosen" in select.stdout, select.stderr
    report = _run(installed, tmp_path, "-m", "tinysnn.report", "sweeps=[run]", "out=report", "figures=false")
    assert report.returncode == 0 and (tmp_path / "report" / "summary.md").is_file(), report.stderr
