"""Helpers of the scripts that need no torch: atomic file writes and one-line errors for bad input.

Light to import: the downloader, the job outcomes (tools/jobs.py) and the render tools use them without
loading torch; training_utils re-exports them for the training scripts."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NoReturn


def die(message: str) -> NoReturn:
    """Stop with a one-line error (no traceback) — for bad flags and bad input files."""
    raise SystemExit(f"error: {message}")


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; done once, at import
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # the mode open() gives a new file; mkstemp's own is 0600


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """`write(f)` into a temporary file in the target folder, then rename: a crash never leaves a
    half-written file, and the previous one survives until the new one is complete. `f` is open for reading
    too (h5py needs that). The file gets the mode a plain open() would give it (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "w+b") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
