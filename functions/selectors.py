"""Read-only queries over functions and revisions."""

import difflib

from django.db.models import QuerySet

from fnplatform.permissions import has_perm
from functions.models import Function, FunctionRevision
from functions.services.host import user_scope


def function_list(*, type: str | None = None, active: bool | None = None) -> QuerySet[Function]:
    """Return functions, newest first, optionally by type and active flag."""
    qs = Function.objects.select_related("created_by", "current_revision")
    if type:
        qs = qs.filter(type=type)
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("-updated_at", "id")


def function_list_for(*, user) -> QuerySet[Function]:
    """Return the functions a user may see: all for staff who may view functions, active
    ones for others."""
    if has_perm(user, "functions.view_function"):
        return function_list()
    return function_list(active=True)


def function_list_quarantined() -> QuerySet[Function]:
    """Return the quarantined functions, most recently quarantined first, with their health."""
    return (
        Function.objects.filter(health__quarantined_at__isnull=False)
        .select_related("health")
        .order_by("-health__quarantined_at", "id")
    )


def function_get(*, id: str) -> Function:
    """Return one function; raise Function.DoesNotExist naming the id."""
    try:
        return Function.objects.select_related("current_revision").get(pk=id)
    except Function.DoesNotExist:
        raise Function.DoesNotExist(f"Function {id!r} not found.") from None


def function_usable_by(*, user, function: Function) -> bool:
    """Whether a user may use a function (chat with it, set its user valves): an active
    one, or any for staff who may view functions (to try them before switching on)."""
    if user is None or not user.is_authenticated:
        return False
    return bool(function.is_active or has_perm(user, "functions.view_function"))


def revision_list(*, function: Function) -> QuerySet[FunctionRevision]:
    return function.revisions.select_related("author").order_by("-number")


def revision_get(*, function: Function, number: int) -> FunctionRevision:
    try:
        return function.revisions.get(number=number)
    except FunctionRevision.DoesNotExist:
        raise FunctionRevision.DoesNotExist(
            f"Function {function.id!r} has no revision {number}."
        ) from None


def revision_diff(*, old: FunctionRevision, new: FunctionRevision) -> list[str]:
    """Return a unified diff between two revisions, as lines."""
    return list(
        difflib.unified_diff(
            old.content.splitlines(),
            new.content.splitlines(),
            fromfile=f"{old.function_id} r{old.number}",
            tofile=f"{new.function_id} r{new.number}",
            lineterm="",
        )
    )


def code_saver(function_id: str | None, sha256: str | None) -> dict | None:
    """The __user__ dict of whoever saved this code of a function (the author of its
    revision), else of the function's creator; None when that is no active user.

    A plugin's module loads (import, `__init__`) with read-only host data in this scope."""
    revision = (
        FunctionRevision.objects.filter(function_id=function_id, sha256=sha256)
        .select_related("author")
        .order_by("-number")
        .first()
    )
    user = revision.author if revision is not None else None
    if user is None:
        function = Function.objects.filter(pk=function_id).select_related("created_by").first()
        user = function.created_by if function is not None else None
    return user_scope(user) if user is not None and user.is_active else None
