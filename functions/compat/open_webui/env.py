"""Mirrors Open WebUI's `open_webui.env`: the environment constants plugins read.

Values are read from the process environment once, at import, as upstream does.
No secret is exposed here: upstream's WEBUI_SECRET_KEY signs sessions, and handing
fnplatform's SECRET_KEY (or FNPLATFORM_SECRETS_KEY) to plugin code would let any
plugin forge sessions or decrypt stored secrets, so that name is not defined.
"""

import logging
import os
from pathlib import Path

VERSION = "0.11.0"
WEBUI_NAME = "fnplatform"
ENV = "prod"

# functions/compat/open_webui/env.py -> project root, the same default as settings.DATA_DIR.
_PROJECT_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("FNPLATFORM_DATA_DIR") or _PROJECT_DIR / "var").resolve()


def _log_level(raw: str | None, default: str) -> str:
    """Return a valid upper-case logging level name, or `default` when unset or bogus."""
    level = (raw or "").strip().upper()
    return level if level in logging.getLevelNamesMapping() else default


def _int_or_none(name: str, default: int) -> int | None:
    """Upstream's reading of timeouts: empty means no timeout, junk means the default."""
    raw = os.environ.get(name, str(default))
    if raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return default


class _LogLevels(dict):
    """A dict of per-subsystem log levels that answers any other key with the global level.

    Plugins call `log.setLevel(SRC_LOG_LEVELS["X"])` with keys from many upstream
    versions; a KeyError at import would be a poor reason for a plugin to fail.
    """

    def __missing__(self, key: str) -> str:
        return GLOBAL_LOG_LEVEL


GLOBAL_LOG_LEVEL = _log_level(
    os.environ.get("GLOBAL_LOG_LEVEL") or os.environ.get("LOG_LEVEL"), "INFO"
)
_LOG_SOURCES = (
    "AUDIO",
    "COMFYUI",
    "CONFIG",
    "DB",
    "IMAGES",
    "MAIN",
    "MODELS",
    "OLLAMA",
    "OPENAI",
    "RAG",
    "WEBHOOK",
    "SOCKET",
    "OAUTH",
)
# Upstream lets each subsystem override the global level with <SOURCE>_LOG_LEVEL.
SRC_LOG_LEVELS: dict[str, str] = _LogLevels(
    {
        source: _log_level(os.environ.get(f"{source}_LOG_LEVEL"), GLOBAL_LOG_LEVEL)
        for source in _LOG_SOURCES
    }
)

AIOHTTP_CLIENT_TIMEOUT = _int_or_none("AIOHTTP_CLIENT_TIMEOUT", 300)
AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST = _int_or_none("AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST", 10)
# Upstream's newer name for the same timeout, still imported by some plugins.
AIOHTTP_CLIENT_TIMEOUT_OPENAI_MODEL_LIST = AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST

# fnplatform never forwards user details to third parties on a plugin's behalf
# (upstream's default too); the header names are upstream's defaults, which plugins
# use when they forward them themselves (utils.headers.include_user_info_headers).
ENABLE_FORWARD_USER_INFO_HEADERS = False
FORWARD_USER_INFO_HEADER_USER_NAME = "X-OpenWebUI-User-Name"
FORWARD_USER_INFO_HEADER_USER_ID = "X-OpenWebUI-User-Id"
FORWARD_USER_INFO_HEADER_USER_EMAIL = "X-OpenWebUI-User-Email"
FORWARD_USER_INFO_HEADER_USER_ROLE = "X-OpenWebUI-User-Role"
FORWARD_SESSION_INFO_HEADER_CHAT_ID = "X-OpenWebUI-Chat-Id"
FORWARD_SESSION_INFO_HEADER_MESSAGE_ID = "X-OpenWebUI-Message-Id"

OFFLINE_MODE = False
DATABASE_SCHEMA = None  # plugins get no database (open_webui.internal.db)
BYPASS_MODEL_ACCESS_CONTROL = False
