"""A live daphne server process for end-to-end tests, sharing the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for another process to use."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


class LiveServer:
    """`daphne fnplatform.asgi:application` on a free loopback port."""

    def __init__(self, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "FNPLATFORM_DATA_DIR": str(settings.DATA_DIR),
            "SECRET_KEY": settings.SECRET_KEY,
            "FNPLATFORM_SECRETS_KEY": settings.FNPLATFORM_SECRETS_KEY,
            # Tests change functions between requests; never serve a stale listing.
            "FNPLATFORM_MANIFOLD_CACHE_SECONDS": "0",
            # Short limits, so hostile-plugin tests fail fast.
            "FNPLATFORM_CALL_TIMEOUT": "8",
            "FNPLATFORM_FIRST_CHUNK_TIMEOUT": "4",
            "FNPLATFORM_WORKER_MEMORY_MB": "1024",
            "FNPLATFORM_CHECK_TIMEOUT": "3",
            **extra_env,
        }
        self.log = open(Path(settings.DATA_DIR) / f"live-{self.port}.log", "w")  # noqa: SIM115
        daphne = Path(sys.executable).parent / "daphne"
        self.process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "fnplatform.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not answer within {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
