"""Run-time failures of functions: recorded, shown, and repeated crashes quarantined.

Only failures that hurt the worker count towards quarantine (a crash, a hang past
the deadline, a resource limit); a plugin that raises an ordinary exception is
recorded but keeps running, as its next call may well succeed.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from fnplatform.permissions import require_perm
from functions.models import Function, FunctionHealth

logger = logging.getLogger(__name__)

KEEP_FAILURES = 20
SEVERE = frozenset({"crash", "timeout", "limit"})
# What the admin's change list counts as "recent" failures.
RECENT = timedelta(hours=24)


@transaction.atomic
def health_record_failure(*, function_id: str, kind: str, message: str, traceback: str = ""):
    """Record one failure; quarantine the function after repeated severe ones."""
    function = Function.objects.filter(pk=function_id).first()
    if function is None:
        return None
    health, _ = FunctionHealth.objects.select_for_update().get_or_create(function=function)
    now = timezone.now()
    entry = {
        "at": now.isoformat(),
        "kind": kind,
        "message": message[:2000],
        "traceback": traceback[-8000:],
    }
    health.failures = [*health.failures, entry][-KEEP_FAILURES:]
    health.last_error, health.last_traceback, health.last_failure_at = message, traceback, now
    if kind in SEVERE and not health.is_quarantined and _severe_recently(health, now):
        health.quarantined_at = now
        health.quarantine_reason = (
            f"{settings.FUNCTIONS_QUARANTINE_CRASHES} severe failures within "
            f"{settings.FUNCTIONS_QUARANTINE_WINDOW:g} s; the last: {message}"
        )
        logger.warning("Function %s quarantined: %s", function.id, health.quarantine_reason)
    health.save()
    return health


def _severe_recently(health: FunctionHealth, now) -> bool:
    since = now - timedelta(seconds=settings.FUNCTIONS_QUARANTINE_WINDOW)
    recent = [f for f in health.failures if f["kind"] in SEVERE and f["at"] >= since.isoformat()]
    return len(recent) >= settings.FUNCTIONS_QUARANTINE_CRASHES


def health_release(*, user, function: Function) -> FunctionHealth | None:
    """Let a quarantined function run again (staff), keeping its failure history."""
    require_perm(user, "functions.change_function")
    health = FunctionHealth.objects.filter(function=function).first()
    if health is None or not health.is_quarantined:
        raise ValidationError(f"Function {function.id} is not quarantined.")
    health.quarantined_at, health.quarantine_reason = None, ""
    health.save(update_fields=["quarantined_at", "quarantine_reason"])
    return health


def quarantine_reason(function: Function) -> str | None:
    """Why a function may not run right now, or None."""
    health = FunctionHealth.objects.filter(function=function, quarantined_at__isnull=False).first()
    if health is None:
        return None
    return (
        f"Function {function.id} is quarantined since {health.quarantined_at:%Y-%m-%d %H:%M} "
        f"UTC: {health.quarantine_reason} Staff can release it in the admin."
    )


@dataclass(frozen=True)
class HealthSummary:
    """One line about a function's health: state "ok", "failing" or "quarantined"."""

    state: str
    text: str
    detail: str


def health_summary(health: FunctionHealth | None, *, now=None) -> HealthSummary:
    """Summarise a health record (None: never failed) for lists: what, and why."""
    if health is not None and health.is_quarantined:
        return HealthSummary("quarantined", "quarantined", health.quarantine_reason)
    since = ((now or timezone.now()) - RECENT).isoformat()
    recent = [f for f in (health.failures if health else []) if f["at"] >= since]
    if not recent:
        return HealthSummary("ok", "ok", "")
    plural = "" if len(recent) == 1 else "s"
    return HealthSummary("failing", f"{len(recent)} recent failure{plural}", recent[-1]["message"])
