"""Measured energy, where the platform exposes a counter: NVML on CUDA, RAPL on CPU.

Both are cumulative energy counters read before and after a phase (training, labelling,
testing); the difference is the energy the device or package used meanwhile, everything on it
included. Where no counter can be read the result says so (``joules: null`` with the reason),
never an estimate.

* NVML (``nvidia-ml-py``, the ``gpu`` extra): ``nvmlDeviceGetTotalEnergyConsumption``, mJ since
  the driver loaded (Volta and newer).
* RAPL: ``/sys/class/powercap/intel-rapl:<k>/energy_uj`` of every CPU package, µJ, wrapping at
  ``max_energy_range_uj``; usually readable by root only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class _Counter:
    source: str
    read: Callable[[], float]  # joules since an arbitrary origin
    wrap: float | None = None  # the counter's range in joules, when it wraps


def _rapl_counters(root: Path) -> list[_Counter]:
    """One counter per CPU package domain (intel-rapl:<k>, not its sub-domains)."""
    counters = []
    for domain in sorted(root.glob("intel-rapl:*")):
        if domain.name.count(":") != 1:
            continue
        energy, limit = domain / "energy_uj", domain / "max_energy_range_uj"
        try:
            float(energy.read_text())
            wrap = float(limit.read_text()) / 1e6 if limit.exists() else None
        except (OSError, ValueError):
            continue

        def read(path: Path = energy) -> float:
            return float(path.read_text()) / 1e6

        counters.append(_Counter(f"rapl:{domain.name}", read, wrap))
    return counters


def _nvml_counter(device: torch.device) -> tuple[_Counter | None, str]:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None, "CUDA energy needs nvidia-ml-py (pip install -e '.[gpu]')"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as error:
        return None, f"NVML gives no energy counter: {error}"
    return _Counter("nvml", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3), ""


def energy_counters(device: torch.device, rapl_root: Path = RAPL_ROOT) -> tuple[list[_Counter], str]:
    """The counters that cover ``device``, or none and the reason."""
    if device.type == "cuda":
        counter, reason = _nvml_counter(device)
        return ([counter] if counter else []), reason
    counters = _rapl_counters(rapl_root)
    if not counters:
        return [], f"no readable RAPL counter under {rapl_root} (not an Intel/AMD RAPL host, or not root)"
    return counters, ""


class EnergyMeter:
    """Measures phases: ``with meter.phase("train"): ...``; ``meter.report(images)`` gives the results."""

    def __init__(self, device: torch.device, rapl_root: Path = RAPL_ROOT) -> None:
        self.device = device
        self.counters, self.reason = energy_counters(device, rapl_root)
        self.phases: dict[str, dict[str, Any]] = {}

    def phase(self, name: str) -> "Phase":
        """A context that measures one phase; entering the same phase again adds to it."""
        return Phase(self, name)

    def fork(self) -> "EnergyMeter":
        """A meter on the same counters that starts with this one's phases (one per grid variant)."""
        other = copy.copy(self)
        other.phases = {name: dict(phase) for name, phase in self.phases.items()}
        return other

    def _read(self) -> list[float]:
        return [counter.read() for counter in self.counters]

    def record(self, name: str, seconds: float, before: list[float], after: list[float]) -> None:
        joules = None
        if self.counters:
            joules = 0.0
            for counter, start, end in zip(self.counters, before, after):
                used = end - start
                if used < 0 and counter.wrap is not None:  # the counter wrapped once
                    used += counter.wrap
                joules += used
        earlier = self.phases.get(name)
        if earlier is not None:
            seconds += earlier["seconds"]
            joules = None if joules is None else joules + earlier["joules"]
        self.phases[name] = {"seconds": seconds, "joules": joules}

    def report(self, images: dict[str, int]) -> dict[str, Any]:
        """Per phase: seconds, joules, mean watts and joules per image (null where unmeasured);
        ``images`` counts each phase's images (per replica: replicas × images)."""
        phases = {}
        for name, phase in self.phases.items():
            joules, count = phase["joules"], images.get(name, 0)
            phases[name] = {**phase,
                            "watts": joules / phase["seconds"] if joules is not None and phase["seconds"] > 0 else None,
                            "joules_per_image": joules / count if joules is not None and count else None}
        return {"source": "+".join(c.source for c in self.counters) or None,
                "reason": self.reason or None, "phases": phases}


class Phase:
    """One phase being measured (``EnergyMeter.phase``)."""

    def __init__(self, meter: EnergyMeter, name: str) -> None:
        self.meter, self.name = meter, name

    def __enter__(self) -> "Phase":
        if self.meter.device.type == "cuda":
            torch.cuda.synchronize(self.meter.device)
        self.before, self.start = self.meter._read(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.meter.device.type == "cuda":
            torch.cuda.synchronize(self.meter.device)
        seconds = time.perf_counter() - self.start
        self.meter.record(self.name, seconds, self.before, self.meter._read())

    def split(self) -> None:
        """Record the phase so far in the meter's ``phases`` and go on measuring (a saved training
        carries its measurement with it)."""
        self.__exit__()
        self.__enter__()
