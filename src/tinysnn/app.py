"""What every command shares: bad input ends in one line that names the problem and its fix.

``guarded(work)`` runs a command's work. A configuration, data or record error prints
``error: …`` on stderr and exits with status 2; any other failure keeps its traceback. Either
way the failure is also written to the run's log file, when the command has one (Hydra's
``<job>.log`` in the run folder), so a failed run folder explains itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, TypeVar

from .config import ConfigError
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
