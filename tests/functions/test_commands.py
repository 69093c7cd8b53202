"""functions.management.commands.install_examples: the bundled examples, ready to use."""

import pytest
from django.core.management import call_command

from functions.models import Function
from functions.services.functions import function_update

pytestmark = pytest.mark.django_db

EXAMPLES = {
    "example_pipe": "pipe",
    "example_manifold": "pipe",
    "example_filter": "filter",
    "example_toggle_filter": "filter",
    "example_action": "action",
}


def test_examples_install_active_with_filters_and_the_action_global(alice):
    call_command("install_examples")
    installed = {f.id: f for f in Function.objects.all()}
    assert {id: f.type for id, f in installed.items()} == EXAMPLES
    assert all(f.is_active for f in installed.values())
    assert {id for id, f in installed.items() if f.is_global} == {
        "example_filter",
        "example_toggle_filter",
        "example_action",
    }


def test_installing_again_keeps_an_edited_example(alice):
    call_command("install_examples")
    pipe = Function.objects.get(pk="example_pipe")
    edited = pipe.content + "\n# mine\n"
    function_update(user=alice, function=pipe, content=edited)
    call_command("install_examples")
    assert Function.objects.get(pk="example_pipe").content == edited


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db(False)
def test_serve_sets_up_and_serves_in_one_process(tmp_path):
    """What `make run` runs: a fresh data dir is migrated, the demo admin and examples
    made, and the same process answers HTTP."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    root = Path(__file__).resolve().parents[2]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["FNPLATFORM_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "manage.py", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, server.poll()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output = server.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            output = server.communicate()[0]
    assert "Demo admin created: username admin" in output
    assert "example_pipe" in output
    assert (tmp_path / "data" / "static").is_dir()
