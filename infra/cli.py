"""`residency` (also `python -m infra`): plan, audit and guard the per-geography stacks.

Each subcommand lives in its own module exposing `HELP`, `add_arguments(parser)` and
`run(args) -> int`, registered in COMMANDS. main() wraps every command the same way, so the exit
codes (README, "Exit codes") hold for all of them:
  0    clean
  1    findings (plan, audit) or drift (models), and nothing else
  2    bad input: unknown stack, bad key or flag, unreadable file, unwritable output path
  3    incomplete: something was not checked (audit --live)
  4    internal error: a bug in residency (traceback only with --debug)
  130  interrupted (Ctrl-C / SIGINT)
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from pathlib import Path

from infra.catalog import CatalogError
from infra.config import ConfigError
from infra.loaders import InputError
from infra.output import remove_temp_files
from infra.stackfiles import PROJECT_DIR_ENV

COMMANDS = {
    "plan": "infra.plan",
    "audit": "infra.audit",
    "scp": "infra.scp",
    "models": "infra.bedrock_drift",
}

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
BAD_INPUT = (ConfigError, InputError, CatalogError)
REPORT_BUG = ("this is a bug in residency, not in your input; please report it (ai-companion issue tracker) "
              "with the command line and the output of the same command run with `residency --debug ...`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="residency", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", metavar="DIR",
                        help="project checkout holding Pulumi.yaml and the stack files (default: this one)")
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of an internal error (exit 4)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
        sub.choices[name].set_defaults(_run=module.run)
    return parser


def _interrupted(signum, frame) -> None:
    """Ctrl-C: leave at once. The plan runs Pulumi's asyncio loop and worker threads; a
    KeyboardInterrupt raised somewhere inside them can hang the loop or surface as an unrelated
    error, so nothing is unwound: output temp files are removed and the process exits 130."""
    remove_temp_files()
    try:
        os.write(2, b"residency: interrupted; nothing written\n")
    finally:
        os._exit(EXIT_INTERRUPTED)


def _check_project_dir(path: str) -> None:
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--project-dir: {path} is not a directory")
    if not (root / "Pulumi.yaml").is_file():
        raise InputError(f"--project-dir: {path} has no Pulumi.yaml (not an ai-companion checkout)")


def _run(args) -> int:
    try:
        if args.project_dir:
            _check_project_dir(args.project_dir)
        return args._run(args)
    except BAD_INPUT as exc:
        print(f"residency {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # main() called off the main thread, where no handler is installed
        remove_temp_files()
        print("residency: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `residency plan | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit 4
        if args.debug:
            traceback.print_exc()
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(f"residency {args.command}: internal error: {type(exc).__name__}"
              f"{': ' + detail if detail else ''}; {REPORT_BUG}", file=sys.stderr)
        return EXIT_BUG


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous_env = os.environ.get(PROJECT_DIR_ENV)
    if args.project_dir:
        os.environ[PROJECT_DIR_ENV] = args.project_dir
    try:
        previous_handler = signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: signals are delivered elsewhere
        previous_handler = None
    try:
        return _run(args)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        if args.project_dir:
            # main() is also called in-process (tests, benchmarks): leave the environment as found.
            if previous_env is None:
                os.environ.pop(PROJECT_DIR_ENV, None)
            else:
                os.environ[PROJECT_DIR_ENV] = previous_env


if __name__ == "__main__":
    sys.exit(main())
