"""Writing the CLI's output files: never half-written; a path that cannot be written is bad input
(exit 2). Missing parent directories are created, for every command alike."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from infra.program.errors import InputError

# Temp files being written right now: a Ctrl-C (infra/cli.py) removes them before exiting.
TEMP_FILES: set[str] = set()


def remove_temp_files() -> None:
    for tmp in list(TEMP_FILES):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        TEMP_FILES.discard(tmp)


def check_writable_target(path: Path, option: str, directory: bool = False) -> None:
    """Refuse before any work what can be refused without writing: a file where a directory is
    needed and the reverse."""
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise InputError(f"{option}: {path} exists and is not a directory (a directory is needed here)")
    if not directory and path.is_dir():
        raise InputError(f"{option}: {path} is a directory")
    nearest = path if directory else path.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write {path}: {nearest} is not writable")


def write_atomic(path: Path, text: str, option: str) -> None:
    """Write via a temp file in the same directory and rename: never a half-written file.
    `option` names the flag in error messages."""
    path = Path(path)
    check_writable_target(path, option)
    directory = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        TEMP_FILES.add(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        TEMP_FILES.discard(tmp)
    except OSError as exc:
        raise InputError(f"{option}: cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None and tmp in TEMP_FILES:
            remove_temp_files()
