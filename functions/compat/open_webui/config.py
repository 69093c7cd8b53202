"""Mirrors open_webui.config: the filesystem locations plugins write to, and the few
settings plugins import from it.

Upstream's settings are `PersistentConfig` objects (read through `.value`), kept in
its database with everything else, API keys included. Here only harmless ones
exist, each with fnplatform's value or Open WebUI's default: `WEBUI_URL` (the
`webui.url` that `Config.get` also answers), `TOOL_SERVER_CONNECTIONS` (none:
fnplatform has no tool servers), `PERSISTENT_CONFIG_REGISTRY` (those two), and
`get_config()`, the same values as upstream's nested config document.
`BYPASS_ADMIN_ACCESS_CONTROL` is upstream's default (True): admins reach every
connection (utils.access_control.has_connection_access).
"""

from pathlib import Path
from typing import Any

from django.conf import settings

DATA_DIR = Path(settings.DATA_DIR)
UPLOAD_DIR = DATA_DIR / "uploads"
CACHE_DIR = DATA_DIR / "cache"
for _folder in (UPLOAD_DIR, CACHE_DIR):
    _folder.mkdir(parents=True, exist_ok=True)


class PersistentConfig:
    """A named setting with its `.value`, as upstream's (which also saves it; this does
    not: changing it lasts as long as the plugin's process)."""

    def __init__(self, env_name: str, config_path: str, env_value: Any) -> None:
        self.env_name = env_name
        self.config_path = config_path
        self.env_value = env_value
        self.value = env_value

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"PersistentConfig({self.env_name}={self.value!r})"

    def __bool__(self) -> bool:
        return bool(self.value)


def _webui_url() -> str:
    return str(getattr(settings, "WEBUI_URL", "") or "")


WEBUI_URL = PersistentConfig("WEBUI_URL", "webui.url", _webui_url())
TOOL_SERVER_CONNECTIONS = PersistentConfig("TOOL_SERVER_CONNECTIONS", "tool_server.connections", [])
PERSISTENT_CONFIG_REGISTRY: list[PersistentConfig] = [WEBUI_URL, TOOL_SERVER_CONNECTIONS]
BYPASS_ADMIN_ACCESS_CONTROL = True


def get_config() -> dict[str, Any]:
    """Upstream's config document, holding only the settings above (never a secret)."""
    document: dict[str, Any] = {"version": 0, "ui": {}, "webui": {"name": "fnplatform"}}
    for entry in PERSISTENT_CONFIG_REGISTRY:
        *parents, leaf = entry.config_path.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = entry.value
    return document
