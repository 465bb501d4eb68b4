"""Compiling this folder's C sources into shared libraries on first use, cached per source and compiler.

The library lands in ``$TINYSNN_CACHE`` (default ``$XDG_CACHE_HOME/tinysnn`` or ``~/.cache/tinysnn``)
under a name that hashes the source, the compiler and its flags, written to a temporary file and renamed,
so concurrent processes (test workers, sweep jobs) never load a half-written one. Without a C compiler,
or when the build fails, ``load`` returns None and callers take their torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC"]


def cache_dir() -> Path:
    if os.environ.get("TINYSNN_CACHE"):
        return Path(os.environ["TINYSNN_CACHE"]) / "native"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinysnn" / "native"


def compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def load(name: str) -> ctypes.CDLL | None:
    """The shared library built from ``<name>.c`` of this folder (built now if not cached), or None."""
    cc = compiler()
    if cc is None:
        log.warning("no C compiler (cc, gcc or $CC): %s runs its torch path (same numbers, slower)", name)
        return None
    source = Path(__file__).with_name(f"{name}.c")
    key = hashlib.sha256(source.read_bytes() + " ".join([cc, *FLAGS, platform.machine()]).encode()).hexdigest()
    target = cache_dir() / f"{name}-{key[:16]}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                built = Path(scratch) / target.name
                subprocess.run([cc, *FLAGS, "-o", str(built), str(source)], check=True, capture_output=True,
                               timeout=120)
                os.replace(built, target)
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("building %s with %s failed (%s): its torch path runs (same numbers, slower)", name, cc,
                        error)
            return None
    return ctypes.CDLL(str(target))
