"""The check registry of `residency preflight`: one declared unit per check (`@check`: the botocore
operations it may send, and a function returning passed, failed with the fix, or not checked with
why), and the runner, which turns any fault while reading into "not checked"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from infra.engine.live.core import ABANDON_KINDS, Clients, ReadOnlyViolation, fault, fault_kind
from infra.engine.preflight.needs import Needs

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str
    fix: str = ""


def passed(detail: str) -> Outcome:
    return Outcome(PASSED, detail)


def failed(detail: str, fix: str) -> Outcome:
    return Outcome(FAILED, detail, fix)


def not_checked(detail: str, fix: str = "") -> Outcome:
    return Outcome(NOT_CHECKED, detail, fix)


@dataclass(frozen=True)
class Result:
    check: str
    title: str
    outcome: Outcome

    @property
    def status(self) -> str:
        return self.outcome.status


@dataclass
class Probe:
    """What a check receives: the needs and guarded clients (home region by default)."""

    needs: Needs
    clients: Clients

    def client(self, service: str, region: str | None = None):
        return self.clients(service, region or self.needs.region)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    operations: dict[str, tuple[str, ...]]  # botocore service -> operations it may send
    run: Callable[[Probe], Outcome]
    applies: Callable[[Needs], bool] = lambda _needs: True


CHECKS: list[Check] = []


def check(check_id: str, title: str, operations: dict[str, tuple[str, ...]],
          applies: Callable[[Needs], bool] = lambda _needs: True):
    def register(fn: Callable[[Probe], Outcome]) -> Callable[[Probe], Outcome]:
        if any(c.id == check_id for c in CHECKS):
            raise ValueError(f"preflight check {check_id} is declared twice")
        CHECKS.append(Check(check_id, title, operations, fn, applies))
        return fn
    return register


def allowed_operations(checks: Iterable[Check] | None = None) -> dict[str, frozenset[str]]:
    """The guard's allow-list: every operation the checks declare, and nothing else."""
    out: dict[str, set[str]] = {}
    for c in CHECKS if checks is None else checks:
        for service, ops in c.operations.items():
            out.setdefault(service, set()).update(ops)
    return {s: frozenset(ops) for s, ops in out.items()}


@dataclass
class Preflight:
    needs: Needs
    results: list[Result] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def run_checks(needs: Needs, clients: Clients, progress: Callable[[str], None] = lambda _m: None,
               only: Iterable[str] | None = None) -> Preflight:
    """Run the declared checks in order. A failure while reading makes that check not checked;
    after the endpoint stops answering, the rest are not tried (each would wait out the timeouts)."""
    probe, report, gone = Probe(needs, clients), Preflight(needs), None
    wanted = set(only) if only is not None else None
    for c in CHECKS:
        if (wanted is not None and c.id not in wanted) or not c.applies(needs):
            continue
        if gone:
            report.results.append(Result(c.id, c.title, not_checked(f"not tried: {gone}")))
            continue
        progress(f"checking {c.id}: {c.title}")
        try:
            outcome = c.run(probe)
        except ReadOnlyViolation:
            raise
        except Exception as exc:  # noqa: BLE001 -- whatever it is, this check proves nothing
            outcome = not_checked(fault(exc))
            if fault_kind(exc) in ABANDON_KINDS:
                gone = f"the endpoint stopped answering ({fault_kind(exc)})"
        report.results.append(Result(c.id, c.title, outcome))
    return report
