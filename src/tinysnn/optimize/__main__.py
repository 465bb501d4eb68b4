"""``python -m tinysnn.optimize optimize=<preset> [out=<folder>] [seeds=N] [constraints.max_memory_kb=…]
[constraints.max_energy_uj=…] [constraints.min_accuracy=…] [mu=…] [launcher=basic|joblib|slurm] [n_jobs=N]
[reference=<FP32 run>] [baseline=<FP32 run>] [dry_run=true]``

The paper's framework as one command: FP32 tinySNN and baseline, range analysis, PTQ, ITQ,
selection (Eq. 3), report and deployment for one dataset, each stage cached in ``<out>/<stage>/``.
Run it again to resume after an interruption (finished stages and sweep jobs are reused) or after
changing a setting (only the stages it reaches run again). The presets are conf/optimize/*.yaml.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from ..app import command, guarded
from ..config import ConfigError, OptimizeConfig
from ..results import atomic_write
from .flow import build
from .stages import Runner, StageFailed
from .table import render


def presets() -> list[str]:
    """The presets shipped in conf/optimize/."""
    folder = resources.files("tinysnn.conf") / "optimize"
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def check_preset(argv: list[str]) -> None:
    """An unknown ``optimize=<preset>`` fails in one line listing the presets (Hydra's own message spans many)."""
    for arg in argv:
        if arg.startswith("optimize=") and arg.removeprefix("optimize=") not in presets():
            raise ConfigError(f"invalid config `optimize`: no preset {arg.removeprefix('optimize=')!r}; "
                              f"choose one of {', '.join(presets())} (src/tinysnn/conf/optimize/)")


def optimize(config: OptimizeConfig) -> None:
    start = time.perf_counter()
    preset = HydraConfig.get().runtime.choices.get("optimize", "?")
    out = Path(config.out).resolve()
    stages = build(config, out)
    print(f"tinysnn.optimize: preset {preset}, {config.dataset.value}, {len(stages)} stages in {out}"
          + (" (dry run: nothing runs)" if config.dry_run else ""), flush=True)
    runner = Runner(out, len(stages), config.dry_run)
    try:
        runner.run_all(stages)
    except StageFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        raise SystemExit(failure.returncode or 1) from None
    except KeyboardInterrupt:
        # Ctrl-C reaches the running stage's command too (same process group) and stops it
        print("\ninterrupted: run the same command again to resume (finished stages and jobs are reused)",
              file=sys.stderr)
        raise SystemExit(130) from None
    if config.dry_run:
        return
    summary = render(config, preset, out, runner.done["select"], runner.done["deploy"])
    atomic_write(out / "summary.txt", lambda tmp: tmp.write_text(summary))
    print(f"\n{len(stages)} stages: {len(runner.ran)} run, {len(runner.reused)} reused, "
          f"{time.perf_counter() - start:.1f} s in all\n\n{summary}", end="", flush=True)


main = command("optimize", optimize)

if __name__ == "__main__":
    guarded(lambda: check_preset(sys.argv[1:]))
    main()
