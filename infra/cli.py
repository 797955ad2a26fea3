"""`residency` (also `python -m infra`): plan, audit and guard the per-geography stacks.

Each subcommand lives in its own module exposing `HELP`, `add_arguments(parser)` and
`run(args) -> int`, registered in COMMANDS. main() wraps every command the same way, so the exit
codes (README, "Exit codes") hold for all of them:
  0    clean
  1    findings (plan, audit) or drift (models), and nothing else
  2    bad input: unknown stack, bad key or flag, unreadable file, unwritable output path,
       no AWS credentials (every command that calls AWS)
  3    incomplete: something was not checked (audit --live, preflight, seed, cost --refresh, evidence)
  4    internal error: a bug in residency (traceback only with --debug)
  130  interrupted (Ctrl-C / SIGINT)
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from infra import __version__
from infra.commands.exit_codes import EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK

# Nothing heavy is imported at load: main() installs the Ctrl-C handler first (importing pulumi
# takes a while), then imports the commands.

COMMANDS = {
    "plan": "infra.commands.plan",
    "audit": "infra.commands.audit",
    "merge": "infra.commands.merge",
    "scp": "infra.commands.scp",
    "models": "infra.commands.bedrock_drift",
    "seed": "infra.commands.seed",
    "cost": "infra.commands.cost",
    "evidence": "infra.commands.evidence",
    "report": "infra.commands.report",
    "preflight": "infra.commands.preflight",
}

REPORT_BUG = ("this is a bug in residency, not in your input; please report it (ai-companion issue tracker) "
              "with the command line and the output of the same command run with `residency --debug ...`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="residency", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", metavar="DIR",
                        help="project checkout holding Pulumi.yaml and the stack files (default: this one)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of an internal error (exit 4)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
        sub.choices[name].set_defaults(_run=module.run)
    return parser


def _bad_input_errors() -> tuple[type[Exception], ...]:
    from infra.program.catalog import CatalogError
    from infra.program.config import ConfigError
    from infra.program.errors import InputError

    return ConfigError, InputError, CatalogError


def _interrupted(signum, frame) -> None:
    """Ctrl-C: leave at once. The plan runs Pulumi's asyncio loop and worker threads; a
    KeyboardInterrupt raised somewhere inside them can hang the loop or surface as an unrelated
    error, so nothing is unwound: output temp files are removed and the process exits 130."""
    output = sys.modules.get("infra.commands.output")
    if output is not None:
        output.remove_temp_files()
    try:
        os.write(2, b"residency: interrupted; nothing written\n")
    finally:
        os._exit(EXIT_INTERRUPTED)


def _watch_interrupts():
    """Take SIGINT on a thread of its own. The OS may deliver a process signal to any thread that
    does not block it, and Python runs handlers only when the main thread next executes bytecode:
    while the main thread waits in C for Pulumi's workers, a Ctrl-C could be handled late or, once
    main() restored the old handler, not at all. Blocked everywhere else (threads inherit the
    mask), it always reaches this thread's sigwait. Returns the function that stops watching."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return lambda: None
    done = threading.Event()

    def watch() -> None:
        signal.sigwait({signal.SIGINT})
        if not done.is_set():
            _interrupted(signal.SIGINT, None)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    watcher = threading.Thread(target=watch, name="residency-sigint", daemon=True)
    watcher.start()

    def stop() -> None:
        done.set()
        signal.pthread_kill(watcher.ident, signal.SIGINT)
        watcher.join(timeout=2)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    return stop


def _check_project_dir(path: str) -> None:
    from infra.program.errors import InputError

    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--project-dir: {path} is not a directory")
    if not (root / "Pulumi.yaml").is_file():
        raise InputError(f"--project-dir: {path} has no Pulumi.yaml (not an ai-companion checkout)")


def run_command(args) -> int:
    """Run the parsed command; map what it raises to the exit-code contract."""
    bad_input = _bad_input_errors()
    try:
        if args.project_dir:
            _check_project_dir(args.project_dir)
        return args._run(args)
    except bad_input as exc:
        print(f"residency {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # main() called off the main thread, where no handler is installed
        from infra.commands.output import remove_temp_files

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
    try:
        # A handler, not SIG_IGN (a shell's background job inherits that): an ignored signal is
        # discarded even while blocked, and the watcher would never see it.
        previous_handler = signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: signals are delivered elsewhere
        previous_handler = None
    stop_watching = _watch_interrupts()
    from infra.program.stackfiles import PROJECT_DIR_ENV

    previous_env = os.environ.get(PROJECT_DIR_ENV)
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.project_dir:
            os.environ[PROJECT_DIR_ENV] = args.project_dir
        return run_command(args)
    finally:
        stop_watching()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        if args is not None and args.project_dir:
            # main() is also called in-process (tests, benchmarks): leave the environment as found.
            if previous_env is None:
                os.environ.pop(PROJECT_DIR_ENV, None)
            else:
                os.environ[PROJECT_DIR_ENV] = previous_env


if __name__ == "__main__":
    sys.exit(main())
