"""`residency scp --stack S`: the Service Control Policy that keeps an account in S's geography
(built by infra/program/scp_policy.py, which says what each statement denies and why);
`--guardrails` prints the account's second SCP instead: guardrails beyond regions
(infra/program/scp_guardrails.py).

Printed for org admins to review and attach; nothing is deployed. Exit 0, or 2 for an unknown stack.
"""

from __future__ import annotations

import json
import sys

from infra.program.scp_guardrails import build_guardrails
from infra.program.scp_policy import build_scp
from infra.program.stackfiles import load_stack_config

HELP = "print a Service Control Policy (JSON) that denies requests outside the stack's geography"
SCP_MAX_CHARS = 5120  # AWS Organizations quota for an SCP document


def scp_for_stack(stack: str) -> dict:
    cfg = load_stack_config(stack)
    return build_scp(cfg.geography, cfg.has("zm_plus"))


def guardrails_for_stack(stack: str) -> dict:
    cfg = load_stack_config(stack)
    return build_guardrails(cfg.geography, cfg.stack, cfg.has("federated"))


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--compact", action="store_true",
                        help=f"minified JSON, as counted against the {SCP_MAX_CHARS}-character SCP quota")
    parser.add_argument("--guardrails", action="store_true",
                        help="the second SCP: boundary on new roles, no internet gateway in ZMO-only accounts, "
                             "no sharing outside the organization, no leaving it, no disabling the audit trail")


def run(args) -> int:
    policy = guardrails_for_stack(args.stack) if args.guardrails else scp_for_stack(args.stack)
    compact = json.dumps(policy, separators=(",", ":"))
    print(compact if args.compact else json.dumps(policy, indent=2))
    if len(compact) > SCP_MAX_CHARS:
        print(f"residency scp: warning: {len(compact)} characters, over the {SCP_MAX_CHARS} SCP quota",
              file=sys.stderr)
    return 0
