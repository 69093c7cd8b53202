"""Function requirements: installed in the background into environments of their own.

The package used here is built on the spot into a local wheelhouse and installed
with PIP_NO_INDEX/PIP_FIND_LINKS, as an air-gapped site would: no network needed.
"""

import shutil
import subprocess
import sys
import time

import httpx
import pytest
from django.core.exceptions import ValidationError

from functions.models import Function, RequirementEnv
from functions.services import environments
from functions.services.environments import env_dir, env_key, needs_environment
from functions.services.functions import function_create, function_set_active
from tests.support.wheels import build_wheel

PACKAGE = "fnplat-demo-greeting"


def greeter(pin: str) -> str:
    return (
        f'"""\ntitle: Greeter\nrequirements: {pin}\n"""\n'
        "import fnplat_demo_greeting\n\n\n"
        "class Pipe:\n"
        "    def pipe(self, body):\n"
        "        return fnplat_demo_greeting.greet('bob')\n"
    )


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    folder = tmp_path / "wheelhouse"
    for version in ("1.0", "2.0"):
        module = (
            f"VERSION = {version!r}\n\n"
            f"def greet(name):\n    return f'hello {{name}} from {version}'\n"
        )
        # It needs pydantic, which the server has: layered, it is not installed again.
        build_wheel(folder, PACKAGE, version, module, requires=("pydantic>=2",))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def fresh(*pins: str) -> None:
    """Remove environments left on disk by an earlier run, so installs really happen."""
    for pin in pins:
        shutil.rmtree(env_dir(env_key([pin])), ignore_errors=True)


def settled(key: str, timeout: float = 180) -> RequirementEnv:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env = RequirementEnv.objects.get(pk=key)
        if env.status in (RequirementEnv.Status.READY, RequirementEnv.Status.FAILED):
            _rechecked(key, deadline)  # the job rechecks the waiting functions right after
            return env
        time.sleep(0.2)
    raise AssertionError(f"environment {key[:12]} still {env.status} after {timeout} s")


def _rechecked(key: str, deadline: float) -> None:
    """Wait until the job has rechecked (in a sandboxed process) each function using it."""
    from functions.models import Function

    while time.monotonic() < deadline:
        waiting = [
            f
            for f in Function.objects.filter(environment_id=key).select_related("current_revision")
            if (f.current_revision.load_result or {}).get("pending") and not f.load_error
        ]
        if not waiting:
            return
        time.sleep(0.2)


def pip_freeze() -> str:
    command = [sys.executable, "-m", "pip", "freeze", "--all"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_the_same_set_however_written_shares_one_key():
    assert env_key(["Fnplat_Demo.Greeting == 1.0", "six"]) == env_key(
        ["six", "fnplat-demo-greeting==1.0"]
    )
    assert env_key([f"{PACKAGE}==1.0"]) != env_key([f"{PACKAGE}==2.0"])


def test_requirements_the_server_meets_need_no_environment():
    assert not needs_environment(["httpx", "pydantic>=2"])
    assert needs_environment([f"{PACKAGE}==1.0"])
    assert not needs_environment([f"{PACKAGE}; python_version < '3'"])  # marker excludes it


def test_conflicting_pins_install_in_the_background_and_both_work(live, alice, api_key, wheelhouse):
    fresh(f"{PACKAGE}==1.0", f"{PACKAGE}==2.0")
    before = pip_freeze()
    one = function_create(user=alice, id="greeter_one", content=greeter(f"{PACKAGE}==1.0"))
    # Saved at once; checked for real when the install is done.
    assert one.environment_id and not one.is_active
    assert one.current_revision.load_result["pending"]
    with pytest.raises(ValidationError, match="Cannot activate greeter_one yet"):
        function_set_active(user=alice, function=one, active=True)
    two = function_create(user=alice, id="greeter_two", content=greeter(f"{PACKAGE}==2.0"))
    assert two.environment_id != one.environment_id

    for function, version in ((one, "1.0"), (two, "2.0")):
        env = settled(function.environment_id)
        assert env.status == RequirementEnv.Status.READY, env.log
        assert f"Successfully installed {PACKAGE}-{version}" in env.log
        assert "Requirement already satisfied: pydantic" in env.log
        assert not list(env_dir(env.key).glob("lib/*/site-packages/pydantic"))
        function.refresh_from_db()
        assert function.load_error == ""
        assert not function.current_revision.load_result.get("pending")
        function_set_active(user=alice, function=function, active=True)

    headers = {"Authorization": f"Bearer {api_key}"}
    for model, version in (("greeter_one", "1.0"), ("greeter_two", "2.0")):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(
            f"{live.url}/api/chat/completions", json=body, headers=headers, timeout=60
        ).json()
        assert answer["choices"][0]["message"]["content"] == f"hello bob from {version}", answer
    assert pip_freeze() == before  # the server's own environment is untouched

    # Another function asking for the same set, written differently, shares it: no install.
    three = function_create(
        user=alice, id="greeter_three", content=greeter("Fnplat_Demo_Greeting == 1.0")
    )
    assert three.environment_id == one.environment_id
    assert not three.current_revision.load_result.get("pending")


def test_a_failed_install_keeps_the_log_and_the_function_off(transactional_db, alice, wheelhouse):
    fresh(f"{PACKAGE}==9.9")
    function = function_create(user=alice, id="greeter_nine", content=greeter(f"{PACKAGE}==9.9"))
    env = settled(function.environment_id)
    assert env.status == RequirementEnv.Status.FAILED
    assert "No matching distribution" in env.log
    function.refresh_from_db()
    assert "requirements failed to install" in function.load_error
    with pytest.raises(ValidationError, match="install failed: see the pip log"):
        function_set_active(user=alice, function=function, active=True)
    assert Function.objects.filter(pk="greeter_nine").exists()  # nothing lost


def test_admin_and_api_show_install_status_and_pip_log(alice_client, alice, db):
    content = greeter(f"{PACKAGE}==3.0")
    env = RequirementEnv.objects.create(
        key=env_key([f"{PACKAGE}==3.0"]),
        requirements=[f"{PACKAGE}==3.0"],
        status=RequirementEnv.Status.FAILED,
        log="ERROR: No matching distribution found for <this one>",
    )
    function = function_create(user=alice, id="greeter_log", content=content)
    assert function.environment_id == env.key
    page = alice_client.get(f"/admin/functions/function/{function.id}/change/").content.decode()
    assert "install failed: see the pip log" in page
    log_page = alice_client.get(f"/admin/functions/requirementenv/{env.key}/change/")
    assert "No matching distribution found for &lt;this one&gt;" in log_page.content.decode()
    data = alice_client.get(f"/api/v1/functions/id/{function.id}/requirements").json()
    assert data["status"] == "failed" and "No matching distribution" in data["log"]


def test_status_text_says_what_staff_wait_for(db):
    env = RequirementEnv(key="k" * 64, requirements=["x"], status=RequirementEnv.Status.READY)
    assert environments.status_text(env) == "installing on this host"  # not built here
    assert environments.status_text(None) == "no extra packages needed"


def test_install_again_is_for_staff_and_requeues(alice_client, bob_client, alice, db):
    env = RequirementEnv.objects.create(
        key=env_key([f"{PACKAGE}==4.0"]),
        requirements=[f"{PACKAGE}==4.0"],
        status=RequirementEnv.Status.FAILED,
        log="ERROR: the index was down",
    )
    function = function_create(user=alice, id="greeter_retry", content=greeter(f"{PACKAGE}==4.0"))
    url = f"/api/v1/functions/id/{function.id}/requirements/reinstall"
    assert bob_client.post(url, content_type="application/json").status_code == 403
    assert RequirementEnv.objects.get(pk=env.pk).status == RequirementEnv.Status.FAILED
    data = alice_client.post(url, content_type="application/json").json()
    assert data["status"] == "pending" and data["detail"] == "waiting to install"


def test_a_direct_url_requirement_is_never_installed(db, alice):
    content = (
        '"""\ntitle: Innocent\nrequirements: innocent @ https://attacker.invalid/x.tar.gz\n"""\n'
        "class Pipe:\n    def pipe(self, body):\n        return 'hi'\n"
    )
    function = function_create(user=alice, id="innocent", content=content)
    assert function.environment_id is None
    assert not RequirementEnv.objects.exists()  # nothing scheduled, nothing fetched
    warnings = function.current_revision.load_result["warnings"]
    assert any("never from a URL" in warning for warning in warnings)
