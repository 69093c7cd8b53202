"""Mirrors open_webui.models.config: `Config.get(key)`, for the few settings plugins read.

Upstream stores its whole persistent configuration there (API keys included).
Plugins only get a small read-only set of harmless values; any other key
answers the default.
"""

from types import MappingProxyType
from typing import Any

from django.conf import settings

from .._dual import dual


def safe_settings() -> MappingProxyType:
    """The settings plugin code may read, by upstream's dotted key."""
    return MappingProxyType(
        {
            "webui.url": str(getattr(settings, "WEBUI_URL", "") or ""),
            "webui.name": "fnplatform",
        }
    )


class ConfigTable:
    @dual
    def get(self, key: str, default: Any = None) -> Any:
        return safe_settings().get(key, default)


Config = ConfigTable()
