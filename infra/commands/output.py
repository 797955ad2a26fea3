"""Writing the CLI's output files: never half-written; a path that cannot be written is bad input
(exit 2). Missing parent directories are created, for every command alike.

What an output never replaces (README, "Output files"):
- anything that is not a regular file: a symlink, a device (`/dev/full`, `/dev/null`), a FIFO or a
  socket is refused with exit 2 before any work. The file is replaced by a rename, so writing
  "through" such a path would silently turn it into a regular file (as root, even a device node);
  to send output to a device or a pipe, leave `--out`/`--output` off and redirect stdout;
- a file the same command reads: the project's stack files (`Pulumi.yaml`, `Pulumi.<stack>.yaml`)
  and any input the command names (`audit --export FILE --output FILE`). `seed --write-config`
  is the one command that edits a stack file, and says so (`edits=`).
A replaced file keeps its mode; a new one gets the mode the umask gives (as `open()` would).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from infra.program.errors import InputError
from infra.program.stackfiles import project_root

# Temp files being written right now: a Ctrl-C (infra/cli.py) removes them before exiting.
TEMP_FILES: set[str] = set()


def remove_temp_files() -> None:
    for tmp in list(TEMP_FILES):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        TEMP_FILES.discard(tmp)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def stack_files() -> list[Path]:
    root = project_root()
    return [root / "Pulumi.yaml", *sorted(root.glob("Pulumi.*.yaml"))]


def check_not_an_input(path: Path, option: str, reads: Iterable[Path] = (), edits: Path | None = None) -> None:
    """Refuse an output path that is one of the command's own inputs (its export, a stack file)."""
    for source in [*stack_files(), *(Path(r) for r in reads if r)]:
        if edits is not None and _same_file(source, edits):
            continue
        if (path.exists() or path.is_symlink()) and _same_file(path, source):
            raise InputError(f"{option}: {path} is an input of this command ({source}); "
                             "write the output somewhere else")


def check_regular_or_absent(path: Path, option: str) -> None:
    """A symlink, device, FIFO or socket is never replaced (the rename would destroy it)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{option}: cannot write {path}: {exc.strerror or exc}") from exc
    kind = ("a symlink" if stat.S_ISLNK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else None)
    if kind:
        raise InputError(f"{option}: {path} is {kind}, not a regular file; residency replaces output files "
                         "whole and would destroy it. Write to a regular file, or leave the option off and "
                         "redirect standard output")


def check_writable_target(path: Path, option: str, directory: bool = False, reads: Iterable[Path] = (),
                          edits: Path | None = None) -> None:
    """Refuse before any work what can be refused without writing: a file where a directory is
    needed and the reverse, a path that is not a regular file, a path the command reads."""
    path = Path(path)
    if not directory:
        check_regular_or_absent(path, option)
        check_not_an_input(path, option, reads, edits)
    if directory and path.exists() and not path.is_dir():
        raise InputError(f"{option}: {path} exists and is not a directory (a directory is needed here)")
    if not directory and path.is_dir():
        raise InputError(f"{option}: {path} is a directory")
    nearest = path if directory else path.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write {path}: {nearest} is not writable")


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, text: str, option: str, reads: Iterable[Path] = (), edits: Path | None = None) -> None:
    """Write via a temp file in the same directory and rename: never a half-written file.
    `option` names the flag in error messages; `reads` are the command's input files, never
    replaced; `edits` is the one stack file a command updates on purpose (seed --write-config)."""
    path = Path(path)
    check_writable_target(path, option, reads=reads, edits=edits)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    directory = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        TEMP_FILES.add(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        TEMP_FILES.discard(tmp)
    except OSError as exc:
        raise InputError(f"{option}: cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None and tmp in TEMP_FILES:
            remove_temp_files()


def emit(text: str, output: str | None, command: str, summary: str, reads: Iterable[Path] = ()) -> None:
    """A command's report: to `--output` (atomically, never over one of `reads`), with a one-line
    summary on stderr, or to stdout."""
    if output:
        write_atomic(Path(output), text, "--output", reads=reads)
        print(f"residency {command}: {summary}; report written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
