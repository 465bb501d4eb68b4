"""Cached, resumable stages: each stage's folder records the inputs it ran with in ``stage.json``.

A stage has inputs (plain JSON: its command's overrides, its settings) and the stages it depends
on. Its *key* is a hash of its inputs and of its dependencies' keys, so changing anything
upstream changes every key downstream. ``Runner.run`` then does one of three things:

* ``stage.json`` holds this key and ``finished: true`` → the stage is **reused**: its recorded
  outputs are returned and nothing runs;
* ``stage.json`` holds this key and ``finished: false`` → an earlier run of these same inputs was
  interrupted: the stage runs again **into the same folder** (tinysnn.train skips the sweep jobs
  whose metrics.json is finished, and redoes a job folder that has none);
* ``stage.json`` holds another key → the folder holds results of other inputs: it is **emptied**
  and the stage runs afresh (so no stale run is ever counted).

``stage.json`` is written atomically (temp file, then rename) twice: ``finished: false`` before
the work starts, ``finished: true`` with the outputs when it has ended. A kill at any moment
therefore leaves either the old record or the new one, never half of one.

``Runner.run_all`` runs the stages in order, except that a ``background`` stage runs in a thread
beside the stages after it until one of them depends on it: independent training stages (the
baseline beside FP32 tinySNN, PTQ beside ITQ) share the machine's cores instead of taking turns.
Each stage's results depend on its inputs alone, so running beside another changes no number.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import ConfigError
from ..results import read_json, write_json

#: what a stage's work returns and stage.json keeps: plain JSON
Outputs = dict[str, Any]
RECORD = "stage.json"
#: where a background stage's command writes its output, in the stage's folder
LOG = "output.log"


class StageFailed(RuntimeError):
    """A stage's command failed; its own output, above, says why."""

    def __init__(self, stage: str, tool: str, returncode: int, output: str = "above") -> None:
        super().__init__(f"stage {stage} failed: {tool} exited with status {returncode} (its output is {output}); "
                         "fix the cause and run the same command again: finished work is reused")
        self.returncode = returncode


@dataclass
class Stage:
    """One step of the flow, run in ``<out>/<name>/``."""

    name: str
    #: one line for the progress display
    title: str
    #: everything the stage's results depend on besides its dependencies (JSON-able)
    inputs: dict[str, Any]
    #: ``work(folder, done)`` runs the stage and returns its outputs; ``done`` holds the outputs of
    #: every stage that ran or was reused before it
    work: Callable[[Path, dict[str, Outputs]], Outputs]
    depends: tuple[str, ...] = ()
    #: the command line it runs, for the display and ``dry_run`` (None: it works in this process)
    command: str | None = None
    #: run beside the stages after it until one depends on it; its command's output then goes to
    #: ``<folder>/output.log``, so that two commands do not print into each other
    background: bool = False
    #: ``progress(folder)``: how far an interrupted run of the stage got, for the display (None: nothing yet)
    progress: Callable[[Path], str | None] | None = None


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_record(path: Path) -> dict[str, Any] | None:
    """stage.json, or None when there is none or it cannot be read (then the stage is redone)."""
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Runner:
    """Runs stages in order into ``out``, printing progress ``[k/n]`` and each stage's time."""

    out: Path
    total: int
    dry_run: bool = False
    keys: dict[str, str] = field(default_factory=dict)
    done: dict[str, Outputs] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def key(self, stage: Stage) -> str:
        return digest({"stage": stage.name, "inputs": stage.inputs,
                       "depends": {name: self.keys[name] for name in stage.depends}})

    def run(self, stage: Stage) -> Outputs | None:
        """Reuse, resume or run ``stage`` now; its outputs (None in a dry run of a stage that would run)."""
        return self.start(stage)()

    def run_all(self, stages: list[Stage]) -> None:
        """Run ``stages`` in order, each ``background`` one beside those after it until one depends on it."""
        running: dict[str, Future[Outputs | None]] = {}
        pool = ThreadPoolExecutor()
        try:
            for stage in stages:
                for name in stage.depends:
                    if name in running:
                        running.pop(name).result()
                job = self.start(stage)
                if stage.background and not self.dry_run:
                    running[stage.name] = pool.submit(job)
                else:
                    job()
            for future in running.values():
                future.result()
        except BaseException:
            unfinished = [name for name, future in running.items() if not future.done()]
            if unfinished:
                print(f"    waiting for {', '.join(unfinished)} (running beside it) to end; Ctrl-C stops it",
                      file=sys.stderr, flush=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def start(self, stage: Stage) -> Callable[[], Outputs | None]:
        """Decide, in order, whether ``stage`` is reused, resumed or run; the returned call does the work."""
        k = len(self.keys) + 1
        key = self.keys[stage.name] = self.key(stage)
        folder = self.out / stage.name
        record = _read_record(folder / RECORD)
        head = f"[{k}/{self.total}] {stage.name}"
        if record is not None and record.get("key") == key and record.get("finished"):
            took = f", in {_duration(record['seconds'])}" if "seconds" in record else ""
            print(f"{head}: reused (finished earlier with the same inputs{took}) — {folder}", flush=True)
            self.reused.append(stage.name)
            self.done[stage.name] = record["outputs"]
            return lambda: record["outputs"]
        resuming = record is not None and record.get("key") == key
        if self.dry_run:
            state = "would resume an interrupted run" if resuming else "would run"
        else:
            state = "resuming an interrupted run" if resuming else "running"
        if stage.background and not self.dry_run:
            state += f" beside the next stages (its output: {folder / LOG})"
        progress = stage.progress(folder) if resuming and stage.progress is not None else None
        print(f"{head}: {stage.title} — {state}" + (f"\n    so far: {progress}" if progress else "")
              + (f"\n    $ {stage.command}" if stage.command else ""), flush=True)
        if self.dry_run:
            return lambda: None
        if not resuming:
            self._clear(folder, record)
        entry = {"stage": stage.name, "key": key, "inputs": stage.inputs,
                 "depends": {name: self.keys[name] for name in stage.depends}}
        write_json(folder / RECORD, {**entry, "finished": False})

        def work() -> Outputs:
            start = time.perf_counter()
            try:
                outputs = stage.work(folder, self.done)
            except Exception:  # a background stage's failure is re-raised only when it is joined: say so now
                print(f"{head}: failed", file=sys.stderr, flush=True)
                raise
            seconds = time.perf_counter() - start
            write_json(folder / RECORD, {**entry, "finished": True, "outputs": outputs, "seconds": round(seconds, 1)})
            print(f"{head}: done in {_duration(seconds)}", flush=True)
            self.ran.append(stage.name)
            self.done[stage.name] = outputs
            return outputs

        return work

    def _clear(self, folder: Path, record: dict[str, Any] | None) -> None:
        """Empty a stage folder that holds results of other inputs; refuse one this command did not write."""
        if not folder.exists() or not any(folder.iterdir()):
            return
        if record is None and not (folder / RECORD).exists():
            raise ConfigError(f"invalid config `out`: {folder} exists and was not written by tinysnn.optimize; "
                              "choose another out= folder")
        print(f"    inputs changed since {folder} was written: starting it afresh", file=sys.stderr, flush=True)
        shutil.rmtree(folder)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
