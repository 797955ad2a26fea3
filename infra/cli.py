"""`residency` (also `python -m infra`): plan, audit and guard the per-geography stacks.

Each subcommand lives in its own module exposing `HELP`, `add_arguments(parser)` and
`run(args) -> int`. Exit codes (documented in the README):
  0  ok / no findings
  1  findings (plan, audit) or drift (models)
  2  bad input or config: unknown stack, bad key, unreadable file
  3  incomplete live scan (audit --live): some service/region was not checked;
     prices not read (cost --refresh): nothing written
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from infra.catalog import CatalogError
from infra.config import ConfigError
from infra.loaders import InputError
from infra.stackfiles import PROJECT_DIR_ENV

COMMANDS = {
    "plan": "infra.plan",
    "audit": "infra.audit",
    "scp": "infra.scp",
    "models": "infra.bedrock_drift",
    "seed": "infra.seed",
    "cost": "infra.cost",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="residency", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", metavar="DIR",
                        help="project checkout holding Pulumi.yaml and the stack files (default: this one)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
        sub.choices[name].set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = os.environ.get(PROJECT_DIR_ENV)
    if args.project_dir:
        os.environ[PROJECT_DIR_ENV] = args.project_dir
    try:
        return args._run(args)
    except (ConfigError, InputError, CatalogError) as exc:
        print(f"residency {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `residency plan | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return 0
    finally:
        if args.project_dir:
            # main() is also called in-process (tests, benchmarks): leave the environment as found.
            if previous is None:
                os.environ.pop(PROJECT_DIR_ENV, None)
            else:
                os.environ[PROJECT_DIR_ENV] = previous


if __name__ == "__main__":
    sys.exit(main())
