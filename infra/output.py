"""Writing the CLI's output files: never half-written, bad paths are input errors (exit 2)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from infra.loaders import InputError


def write_atomic(path: Path, text: str, option: str, create_dirs: bool = False) -> None:
    """Write via a temp file in the same directory and rename: never a half-written file.

    `option` names the flag in error messages; `create_dirs` makes missing parent directories
    (plan exports), otherwise a missing directory is reported like any other bad path."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option}: {path} is a directory")
    directory = path.parent if str(path.parent) else Path(".")
    if create_dirs:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise InputError(f"{option}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
