"""``python -m tinysnn.train``: train, label, test, and write metrics, checkpoint and figures.

Composed by Hydra from the package's ``conf/`` (groups dataset, model, learning, run, and
scheme, precision, rounding, target for quantization); every value can be overridden on the
command line, e.g. ``python -m tinysnn.train run=default model.n_neurons=100``. The work is
``tinysnn.pipeline``; this module is the command around it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .app import guarded
from .config import register_configs, validate
from .pipeline import run_folders, run_variants
from .record import mixed_widths, other_widths, read_record
from .results import RecordError


def summary(metrics: dict[str, Any]) -> str:
    acc, train, quant = metrics["accuracy"], metrics["train"], metrics["quant"]
    precision = (f" {quant['scheme']} {quant['bits']}-bit q{quant['target'].upper()}"
                 f"{mixed_widths(other_widths(metrics))} {quant['rounding']}" if quant["active"] else "")
    training = (f"quantized {quant['reference']} without training" if train["images"] == 0 else
                f"trained {train['images']} images at {train['ms_per_image_per_replica']:.1f} ms/image")
    val = metrics.get("val") or {}
    validation = (f"validation {100 * val['accuracy']['all_activity']:.2f}% on {val['images']} images, "
                  if "accuracy" in val else "")
    return (f"{metrics['dataset']} {metrics['topology']}/{metrics['rule']} N={metrics['n_neurons']}{precision}: "
            f"{validation}test accuracy {100 * acc['all_activity']:.2f}% (all-activity), "
            f"{100 * acc['proportion']:.2f}% (proportion) on {metrics['test']['images']} images; {training}")


register_configs()


def _finished(folders: list[Path], overrides: list[str]) -> list[dict[str, Any]] | None:
    """The metrics of an earlier run of this same sweep job, if every one of its runs finished."""
    found = []
    for folder in folders:
        path = folder / "metrics.json"
        if not path.is_file():
            return None
        try:
            metrics = read_record(path)
        except RecordError as error:
            print(f"warning: {error}; re-running this job", file=sys.stderr)
            return None
        if metrics.get("overrides") != overrides:
            return None
        found.append(metrics)
    return found


def _train(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    out_dir, overrides = Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task)
    config = validate(cfg)
    folders = run_folders(config, out_dir)
    # re-running a sweep into the same hydra.sweep.dir skips the jobs that already finished
    done = _finished(folders, overrides) if hydra_cfg.mode is RunMode.MULTIRUN else None
    if done is not None:
        print(f"skipped (finished earlier): {out_dir}")
        return max(metrics["accuracy"]["all_activity"] for metrics in done)
    results = run_variants(config, config.quant.variants(), folders, dict(hydra_cfg.runtime.choices), overrides)
    for folder, metrics in zip(folders, results):
        print(summary(metrics))
        print(f"results: {folder}")
    return max(metrics["accuracy"]["all_activity"] for metrics in results)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return guarded(lambda: _train(cfg))


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy's: launchers that ship the job to
    # worker processes (joblib) then pickle it by reference instead of by value.
    from tinysnn.train import main as entry_point

    entry_point()
