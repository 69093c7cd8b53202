"""Health checks: installed versions, whether the database and channel layer answer,
which protections the plugin sandbox has on this host, and whether the plugin
environment is built."""

import asyncio
import platform
import secrets
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

# Long enough for a healthy Redis round trip, short enough for a load balancer's probe.
CHANNEL_LAYER_TIMEOUT = 2.0
DISTRIBUTIONS = {
    "django": "django",
    "channels": "channels",
    "daphne": "daphne",
    "ninja": "django-ninja",
    "pydantic": "pydantic",
}


@cache
def versions() -> dict[str, str]:
    """Return the Python version and the versions of the packages the platform rests on."""
    found = {"python": platform.python_version()}
    for key, distribution in DISTRIBUTIONS.items():
        try:
            found[key] = version(distribution)
        except PackageNotFoundError:
            found[key] = "not installed"
    return found


def _select_one() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


async def check_database() -> dict[str, Any]:
    """Run SELECT 1 on the default database; report ok, vendor and any error."""
    try:
        vendor = await sync_to_async(_select_one, thread_sensitive=True)()
    except Exception as exc:  # any driver error means "unreachable" to a health probe
        return {"ok": False, "vendor": connection.vendor, "error": _describe(exc)}
    return {"ok": True, "vendor": vendor}


async def _round_trip(layer: Any) -> None:
    channel = await layer.new_channel()
    token = secrets.token_hex(8)
    await layer.send(channel, {"type": "health.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("the channel layer returned a different message")


async def check_channel_layer() -> dict[str, Any]:
    """Send a message to a fresh channel and receive it back, within CHANNEL_LAYER_TIMEOUT."""
    try:
        layer = get_channel_layer()
    except Exception as exc:  # a bad CHANNEL_LAYERS setting fails here, not at startup
        return {"ok": False, "backend": None, "error": _describe(exc)}
    if layer is None:
        return {"ok": False, "backend": None, "error": "CHANNEL_LAYERS is not configured"}
    backend = type(layer).__name__
    try:
        await asyncio.wait_for(_round_trip(layer), timeout=CHANNEL_LAYER_TIMEOUT)
    except TimeoutError:
        error = f"no round trip within {CHANNEL_LAYER_TIMEOUT:g} s"
        return {"ok": False, "backend": backend, "error": error}
    except Exception as exc:  # connection refused, auth failure, ...: all mean unreachable
        return {"ok": False, "backend": backend, "error": _describe(exc)}
    return {"ok": True, "backend": backend}


async def health_report() -> dict[str, Any]:
    """Return the full report; status is "degraded" when any check fails."""
    database, channel_layer, sandbox = await asyncio.gather(
        check_database(), check_channel_layer(), check_sandbox()
    )
    healthy = database["ok"] and channel_layer["ok"]
    return {
        "status": "ok" if healthy else "degraded",
        "version": settings.FNPLATFORM_VERSION,
        "versions": versions(),
        "database": database,
        "channel_layer": channel_layer,
        "sandbox": sandbox,
        "plugin_environment": check_plugin_environment(),
    }


def check_plugin_environment() -> dict[str, Any]:
    """Whether workers get the packages Open WebUI ships (`make run` builds them)."""
    from functions.services import plugin_env

    if plugin_env.ready():
        return {"ok": True, "path": str(plugin_env.root())}
    return {
        "ok": False,
        "path": str(plugin_env.root()),
        "error": "not built: plugins see only the server's packages (run `make setup`)",
    }


async def check_sandbox() -> dict:
    """Each protection of plugin processes and whether it is on (probed once, in a thread).
    Its own "ok": a host without some protection still serves, as FNPLATFORM_SANDBOX=auto
    decides."""
    from functions.workers import sandbox

    return (await asyncio.to_thread(sandbox.status)).as_dict()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
