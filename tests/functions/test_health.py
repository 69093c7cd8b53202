"""Run-time failures are recorded; repeated crashes quarantine a function until released."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from functions.services.health import (
    RECENT,
    HealthSummary,
    health_record_failure,
    health_release,
    health_summary,
)
from functions.services.plugins import PluginUnavailable, plugin_call_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipe(make_function):
    return make_function("echo_pipe", id="fragile")


def test_ordinary_errors_are_recorded_but_never_quarantine(pipe, settings):
    for _ in range(settings.FUNCTIONS_QUARANTINE_CRASHES + 2):
        health_record_failure(function_id="fragile", kind="error", message="ValueError: x")
    pipe.health.refresh_from_db()
    assert pipe.health.last_error == "ValueError: x" and not pipe.health.is_quarantined
    assert plugin_call_for(function=pipe)


def test_repeated_crashes_quarantine_until_staff_release(pipe, settings, alice, bob):
    settings.FUNCTIONS_QUARANTINE_CRASHES = 3
    for kind in ("crash", "timeout", "crash"):
        health_record_failure(
            function_id="fragile", kind=kind, message=f"{kind} happened", traceback="Traceback ..."
        )
    pipe.refresh_from_db()
    assert pipe.health.is_quarantined
    assert "3 severe failures" in pipe.health.quarantine_reason
    with pytest.raises(PluginUnavailable, match="quarantined"):
        plugin_call_for(function=pipe)
    with pytest.raises(Exception, match="staff"):
        health_release(user=bob, function=pipe)
    health_release(user=alice, function=pipe)
    assert plugin_call_for(function=pipe)
    with pytest.raises(ValidationError, match="not quarantined"):
        health_release(user=alice, function=pipe)


def test_failures_keep_only_the_most_recent(pipe):
    for i in range(30):
        health_record_failure(function_id="fragile", kind="error", message=f"e{i}")
    pipe.health.refresh_from_db()
    assert [f["message"] for f in pipe.health.failures][-1] == "e29"
    assert len(pipe.health.failures) == 20


def test_health_api_and_admin(alice_client, bob_client, pipe, settings):
    settings.FUNCTIONS_QUARANTINE_CRASHES = 1
    health_record_failure(function_id="fragile", kind="crash", message="worker died <b>")
    body = alice_client.get("/api/v1/functions/id/fragile/health").json()
    assert body["quarantined"] and body["failures"][0]["kind"] == "crash"
    assert bob_client.get("/api/v1/functions/id/fragile/health").status_code == 403
    page = alice_client.get("/admin/functions/function/fragile/change/").content.decode()
    assert "Quarantined since" in page and "worker died &lt;b&gt;" in page
    released = alice_client.post(
        "/api/v1/functions/id/fragile/health/release", "{}", content_type="application/json"
    ).json()
    assert released["quarantined"] is False
    assert json.dumps(released["failures"])  # the history stays


async def test_a_crashing_worker_call_is_recorded(tmp_path, alice, transactional_db):
    from asgiref.sync import sync_to_async

    from functions.models import FunctionHealth
    from functions.services import runtime
    from functions.services.context import CallContext
    from functions.services.functions import function_create
    from functions.workers.executor import ProcessExecutor
    from functions.workers.pool import Limits

    source = "import os\nclass Pipe:\n    def pipe(self, body):\n        os._exit(2)\n"
    function = await sync_to_async(function_create)(user=alice, id="crasher", content=source)
    call = await sync_to_async(plugin_call_for)(function=function)
    process = ProcessExecutor(
        size=1, source_dir=str(tmp_path), limits=Limits(), timeout=10, first_chunk_timeout=10
    )
    try:
        with pytest.raises(runtime.HookError, match="exited with status 2"):
            async for _ in runtime.run_pipe(call, {}, CallContext(user={}), executor=process):
                pass
    finally:
        await process.stop()
    health = await FunctionHealth.objects.aget(function_id="crasher")
    assert health.failures[-1]["kind"] == "crash"


def test_quarantine_logs_a_warning_naming_the_function_and_the_reason(pipe, settings, caplog):
    settings.FUNCTIONS_QUARANTINE_CRASHES = 2
    with caplog.at_level("WARNING", logger="functions.services.health"):
        health_record_failure(function_id="fragile", kind="crash", message="first")
        assert not caplog.records  # one crash is not yet a quarantine
        health_record_failure(function_id="fragile", kind="crash", message="worker died")
        health_record_failure(function_id="fragile", kind="crash", message="again")

    [record] = caplog.records  # once, when it is quarantined; not for later failures
    assert record.levelname == "WARNING" and record.name == "functions.services.health"
    assert record.getMessage() == (
        "Function fragile quarantined: 2 severe failures within "
        f"{settings.FUNCTIONS_QUARANTINE_WINDOW:g} s; the last: worker died"
    )


def test_summary_is_ok_without_failures_then_counts_recent_ones(pipe):
    assert health_summary(None) == HealthSummary("ok", "ok", "")
    health_record_failure(function_id="fragile", kind="error", message="ValueError: a")
    health = health_record_failure(function_id="fragile", kind="error", message="ValueError: b")
    assert health_summary(health) == HealthSummary("failing", "2 recent failures", "ValueError: b")


def test_summary_forgets_failures_older_than_a_day(pipe):
    health = health_record_failure(function_id="fragile", kind="error", message="old")
    later = timezone.now() + RECENT + timedelta(minutes=1)
    assert health_summary(health, now=later) == HealthSummary("ok", "ok", "")


def test_summary_of_a_quarantined_function_gives_the_reason(pipe, settings):
    settings.FUNCTIONS_QUARANTINE_CRASHES = 1
    health = health_record_failure(function_id="fragile", kind="crash", message="boom")
    summary = health_summary(health)
    assert (summary.state, summary.text) == ("quarantined", "quarantined")
    assert summary.detail == health.quarantine_reason and "boom" in summary.detail
