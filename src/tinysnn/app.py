"""What every command shares: bad input ends in one line that names the problem and its fix.

``guarded(work)`` runs a command's work. A configuration, data or record error prints
``error: …`` on stderr and exits with status 2; any other failure keeps its traceback. Either
way the failure is also written to the run's log file, when the command has one (Hydra's
``<job>.log`` in the run folder), so a failed run folder explains itself.

``command(config_name, work)`` is the entry point of a tool (select, report, ranges): Hydra composes
``conf/<config_name>.yaml`` over its schema, and ``work`` gets the typed config object, guarded.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable, TypeVar

import hydra
from omegaconf import DictConfig, OmegaConf

from .config import ConfigError, register_configs
from .data import DataFileError
from .results import RecordError

T = TypeVar("T")

#: errors whose message is the whole story: no traceback
USER_ERRORS = (ConfigError, DataFileError, RecordError)

log = logging.getLogger("tinysnn")


def _to_log_files(level: int, message: str, with_traceback: bool) -> None:
    """Write to the log files only; the console shows the error its own way."""
    record = log.makeRecord(log.name, level, __file__, 0, message, (), sys.exc_info() if with_traceback else None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def guarded(work: Callable[[], T]) -> T:
    try:
        return work()
    except USER_ERRORS as error:
        _to_log_files(logging.ERROR, f"error: {error}", with_traceback=False)
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        _to_log_files(logging.ERROR, "the run failed", with_traceback=True)
        raise


def command(config_name: str, work: Callable[[Any], None]) -> Callable[[], None]:
    """A Hydra entry point running ``work`` on the typed config composed from ``conf/<config_name>.yaml``."""
    register_configs()

    @hydra.main(version_base="1.3", config_path="conf", config_name=config_name)
    def main(cfg: DictConfig) -> None:
        guarded(lambda: work(OmegaConf.to_object(cfg)))

    return main
