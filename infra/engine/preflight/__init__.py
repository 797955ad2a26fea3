"""`residency preflight`: can this account take the stack's first `pulumi up`? Read-only.

What the stack needs (`needs.py`) is derived from its offline plan and its config, never written by
hand. Each check (`checks.py`) is one declared unit (`registry.py`, `@check`): the botocore
operations it may send, from which the read-only guard's allow-list is derived (a test checks the
deploy role grants them), and one function that returns passed, failed (with the fix to apply) or
not checked (with why). Adding the next check is one function in `checks.py`.

Every call goes through the live scan's guarded clients (infra/engine/live/core.py: timeouts,
standard retries, refusal of anything not listed, of truncated or non-JSON answers). A failure
while reading is "not checked", never a pass and never a fail: exit 3 unless something failed.
"""

from infra.engine.preflight import checks as _checks  # noqa: F401 -- registers the checks, in order
from infra.engine.preflight.needs import SERVICE_OF_TYPE, InstanceNeed, Needs, needs_from_plan
from infra.engine.preflight.registry import (CHECKS, FAILED, NOT_CHECKED, PASSED, Check, Outcome, Preflight, Probe,
                                             Result, allowed_operations, run_checks)

__all__ = ["CHECKS", "FAILED", "NOT_CHECKED", "PASSED", "SERVICE_OF_TYPE", "Check", "InstanceNeed", "Needs",
           "Outcome", "Preflight", "Probe", "Result", "allowed_operations", "needs_from_plan", "run_checks"]
