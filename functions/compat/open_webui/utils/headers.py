"""Mirrors open_webui.utils.headers: `include_user_info_headers`, which plugins call to
forward who is asking to a backend they call (when ENABLE_FORWARD_USER_INFO_HEADERS,
off by default, says so).

Pure: it returns a new dict with upstream's X-OpenWebUI-User-Name/-Id/-Email/-Role
headers (names from `open_webui.env`), the name percent-encoded as upstream encodes
it, and the headers unchanged when there is no user. The user may be a UserModel or
the `__user__` dict. Upstream's signed-JWT variant needs a forwarding secret that
fnplatform does not have, so the plain headers are what it gives.
"""

from typing import Any
from urllib.parse import quote

from ..env import (
    FORWARD_USER_INFO_HEADER_USER_EMAIL,
    FORWARD_USER_INFO_HEADER_USER_ID,
    FORWARD_USER_INFO_HEADER_USER_NAME,
    FORWARD_USER_INFO_HEADER_USER_ROLE,
)


def _field(user: Any, name: str) -> str:
    value = user.get(name) if isinstance(user, dict) else getattr(user, name, None)
    return "" if value is None else str(value)


def include_user_info_headers(headers: dict, user: Any = None) -> dict:
    """`headers` plus the user's name, id, email and role headers (unchanged without a user)."""
    if user is None:
        return headers
    return {
        **headers,
        FORWARD_USER_INFO_HEADER_USER_NAME: quote(_field(user, "name").strip(), safe=" "),
        FORWARD_USER_INFO_HEADER_USER_ID: _field(user, "id"),
        FORWARD_USER_INFO_HEADER_USER_EMAIL: _field(user, "email").strip(),
        FORWARD_USER_INFO_HEADER_USER_ROLE: _field(user, "role"),
    }
