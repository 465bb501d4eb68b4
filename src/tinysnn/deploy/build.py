"""Building and running the generated C folder: the host binary (``make host``), the Cortex-M7 ELF
(``make m7``) and its run under QEMU (``make qemu``); parsing what the CLI prints."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..results import RecordError


@dataclass(frozen=True)
class CliRun:
    """What the CLI printed: per image (with -c) the prediction, label and spike counts; the summary."""

    predictions: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n]
    counts: np.ndarray  # int64 [n, N] (empty without -c)
    accuracy: float
    us_per_image: float


def _run(command: list[str], what: str, timeout: float | None = None) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RecordError(f"{what}: {command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise RecordError(f"{what} did not finish within {timeout} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RecordError(f"{what} failed (exit {done.returncode}): {tail[0]}")
    return done.stdout


def make(folder: Path, target: str, variables: dict[str, str] | None = None, timeout: float | None = None) -> str:
    """``make -C folder target VAR=value …``; a failure is one line naming the target."""
    if shutil.which("make") is None:
        raise RecordError("building the C sources needs `make` (apt-get install -y make)")
    extra = [f"{key}={value}" for key, value in (variables or {}).items()]
    return _run(["make", "--no-print-directory", "-C", str(folder), target, *extra], f"make {target} in {folder}",
                timeout)


def parse_output(text: str) -> CliRun:
    rows = [line.split() for line in text.splitlines() if line.startswith("image ")]
    summary = [line.split() for line in text.splitlines() if line.startswith("images ")]
    if not summary:
        raise RecordError(f"the C runtime printed no summary line: {text.strip()[-200:]!r}")
    fields = summary[-1]
    values = np.asarray([[int(v) for v in row[2:]] for row in rows], dtype=np.int64)
    if not rows:
        values = np.zeros((0, 2), dtype=np.int64)
    return CliRun(predictions=values[:, 0], labels=values[:, 1], counts=values[:, 2:],
                  accuracy=float(fields[fields.index("accuracy") + 1]),
                  us_per_image=float(fields[fields.index("us_per_image") + 1]))


def run_host(folder: Path, images: Path, labels: Path, n: int, counts: bool = False,
             spikes: Path | None = None) -> CliRun:
    """Build the host binary if needed and classify the first ``n`` images."""
    make(folder, "host")
    command = [str(folder / "tinysnn"), str(images), str(labels), "-n", str(n)]
    command += ["-c"] if counts else []
    command += ["-f", str(spikes)] if spikes is not None else []
    return parse_output(_run(command, "the host binary"))


def run_qemu(folder: Path, images: Path, labels: Path, n: int, timeout: float = 600.0) -> CliRun:
    """Cross-compile for Cortex-M7 and classify the first ``n`` images under QEMU (mps2-an500)."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            raise RecordError(f"{tool} is not installed (apt-get install -y gcc-arm-none-eabi "
                              "libnewlib-arm-none-eabi qemu-system-arm)")
    make(folder, "m7")
    return parse_output(make(folder, "qemu", {"IMAGES": str(images.resolve()), "LABELS": str(labels.resolve()),
                                              "N": str(n), "COUNTS": "1"}, timeout))
