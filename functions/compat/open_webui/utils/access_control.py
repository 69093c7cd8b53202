"""Mirrors open_webui.utils.access_control: `has_connection_access` and `has_access`,
the checks upstream makes before using a server connection (tool server, MCP server,
terminal) whose `config.access_grants` say who may read it.

The rule is upstream's (0.9.1 on, coroutines as there): an admin is allowed (upstream's
default BYPASS_ADMIN_ACCESS_CONTROL); a connection with no grants is private, admins
only; otherwise a "read" grant must name the user, `*` (everyone) or one of the user's
groups. Who the user is comes from fnplatform's data, not from the object the plugin
passes: the role and groups are those of that account (staff is Open WebUI's admin;
groups are fnplatform's user groups), and a user the calling plugin may not see (any
other account, unless the call is an admin's) has no role and no groups, so only an
`*` grant lets it in. fnplatform itself has no tool-server, MCP or terminal
connections, so these checks only ever see connections a plugin built itself.
"""

from typing import Any

from asgiref.sync import sync_to_async

from .._host import hosted
from ..config import BYPASS_ADMIN_ACCESS_CONTROL
from ..models._owned import user_id_of


@hosted
def get_user_access_facts(user_id: str) -> dict:
    """{"role": "admin" | "user" | None, "group_ids": [...]} of an account the caller may see."""
    from django.contrib.auth import get_user_model

    from functions.services.host import may_read_user

    if not user_id.isdigit() or not may_read_user(user_id):
        return {"role": None, "group_ids": []}
    account = get_user_model().objects.filter(pk=int(user_id), is_active=True).first()
    if account is None:
        return {"role": None, "group_ids": []}
    return {
        "role": "admin" if account.is_staff else "user",
        "group_ids": [str(pk) for pk in account.groups.values_list("pk", flat=True)],
    }


async def _facts(user: Any) -> dict:
    return await sync_to_async(get_user_access_facts, thread_sensitive=False)(user_id_of(user))


def _granted(user_id: str, permission: str, grants: list | None, group_ids: set[str]) -> bool:
    for grant in grants or []:
        if not isinstance(grant, dict) or grant.get("permission") != permission:
            continue
        kind, principal = grant.get("principal_type"), grant.get("principal_id")
        if kind == "user" and principal in ("*", user_id):
            return True
        if kind == "group" and principal in group_ids:
            return True
    return False


async def has_access(
    user_id: Any,
    permission: str = "read",
    access_grants: list | None = None,
    user_group_ids: set[str] | None = None,
    db: Any = None,
) -> bool:
    """Whether `access_grants` give the user `permission`; no grants means private (False)."""
    if not access_grants:
        return False
    user_id = user_id_of(user_id)
    if user_group_ids is None:
        user_group_ids = set((await _facts(user_id))["group_ids"])
    return _granted(user_id, permission, access_grants, {str(g) for g in user_group_ids})


async def has_connection_access(
    user: Any, connection: dict, user_group_ids: set[str] | None = None
) -> bool:
    """Whether `user` may use a server connection, by its `config.access_grants`."""
    facts = await _facts(user)
    is_admin = facts["role"] == "admin"
    if is_admin and BYPASS_ADMIN_ACCESS_CONTROL:
        return True
    grants = ((connection or {}).get("config") or {}).get("access_grants") or []
    if not grants:
        return is_admin  # private: only admins, who configure connections
    groups = set(facts["group_ids"]) if user_group_ids is None else set(user_group_ids)
    return _granted(user_id_of(user), "read", grants, {str(g) for g in groups})
