"""Scoping shared by the host-data tables: a plugin call reaches its caller's rows only.

A call made for an admin (role "admin") reaches everyone's rows, as Open WebUI's
admin role does; code running outside any plugin call reaches nothing.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from functions.services.host import caller, caller_is_admin, may_read_user


def epoch(moment: datetime | None) -> int:
    """Open WebUI's timestamps: whole seconds since the epoch."""
    return int(moment.timestamp()) if moment else 0


def user_id_of(user: Any) -> str:
    """The id string of a user given as an id, a __user__ dict or a UserModel."""
    if isinstance(user, dict):
        return str(user.get("id", ""))
    return str(getattr(user, "id", user) if user is not None else "")


def caller_pk() -> int | None:
    me = caller()
    user_id = user_id_of(me) if me else ""
    return int(user_id) if user_id.isdigit() else None


def owned(queryset: QuerySet) -> QuerySet:
    """The rows (with a `user` foreign key) the calling user may reach."""
    if caller() is None:
        return queryset.none()
    if caller_is_admin():
        return queryset
    pk = caller_pk()
    return queryset.filter(user_id=pk) if pk is not None else queryset.none()


def owned_by(queryset: QuerySet, user_id: Any) -> QuerySet:
    """The rows of `user_id`, or none when the caller may not reach that user's rows."""
    pk = acting_pk(user_id)
    return owned(queryset).filter(user_id=pk) if pk is not None else queryset.none()


def acting_pk(user_id: Any) -> int | None:
    """The pk of an active user the caller may act for, given as `user_id`, else None."""
    user_id = user_id_of(user_id)
    if not user_id.isdigit() or not may_read_user(user_id):
        return None
    exists = get_user_model().objects.filter(pk=int(user_id), is_active=True).exists()
    return int(user_id) if exists else None
