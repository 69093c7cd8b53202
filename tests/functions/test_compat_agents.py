"""The Open WebUI internals agentic community pipes import (planner / multi-model
style): utils.middleware, utils.mcp.client, utils.access_control, utils.headers, the
forward-header env names, models.skills and the built-in / terminal tool loaders,
from a real plugin file on both executors."""

import json

import pytest

from tests.functions.test_compat_routers import answer_on

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("where", ["inline", "process"])
async def test_agent_plumbing_answers_as_upstream_with_nothing_configured(
    where, bob, plugin_source, tmp_path
):
    result = await answer_on(where, tmp_path, "agent_middleware_pipe", plugin_source, bob)

    assert result["text"] == json.dumps({"answer": 42}, indent=2)
    assert (result["files"], result["embeds"]) == ([], [])
    text, files, embeds = result["old_style"]
    assert json.loads(text) == {"results": ["kept"]}
    assert files == [{"type": "data", "content": "data:image/png;base64,AAAA"}]
    assert embeds == []
    assert json.loads(result["mcp_text"]) == {"ok": True}
    assert result["same_messages"] is True
    assert result["handled_same"] is True
    assert result["sources"] == {"sources": []}
    assert result["events"] == [
        {"type": "status", "data": {"action": "sources_retrieved", "count": 0, "done": True}}
    ]
    assert result["oauth"] is None
    assert result["mcp"].startswith("MCPNotSupported: MCPClient.connect: fnplatform has no MCP")
    assert result["access"] == [True, False]  # a "*" grant lets bob in; no grants: admins only
    assert result["headers"] == {
        "Content-Type": "application/json",
        "X-OpenWebUI-User-Name": "bob",
        "X-OpenWebUI-User-Id": str(bob.pk),
        "X-OpenWebUI-User-Email": "bob@example.com",
        "X-OpenWebUI-User-Role": "user",
        "X-OpenWebUI-Chat-Id": "local:abc",
        "X-OpenWebUI-Message-Id": "m1",
    }
    assert (result["skills"], result["skill"]) == ([], None)
    assert result["skill_write"] == (
        "Skills.insert_new_skill is not available: fnplatform has no skills."
    )
    assert result["builtin"] == result["builtin_plain"] == result["terminal"] == {}


async def test_admins_reach_private_connections(alice, plugin_source, tmp_path):
    result = await answer_on("inline", tmp_path, "agent_middleware_pipe", plugin_source, alice)

    assert result["access"] == [True, True]
    assert result["headers"]["X-OpenWebUI-User-Role"] == "admin"


def test_process_tool_result_embeds_inline_html_responses():
    from open_webui.utils.middleware import process_tool_result

    class HTMLResponse:  # shaped like starlette's (absent from the server's environment)
        def __init__(self, body: str, status_code: int = 200):
            self.body = body.encode()
            self.status_code = status_code
            self.headers = {"Content-Disposition": "inline"}

    text, files, embeds = process_tool_result(None, "chart", HTMLResponse("<p>1</p>"), "")
    assert json.loads(text)["code"] == "ui_component"
    assert embeds == ["<p>1</p>"] and files == []
    text, _, embeds = process_tool_result(
        None, "chart", (HTMLResponse("<p>2</p>"), "a bar chart of sales"), ""
    )
    assert (text, embeds) == ("a bar chart of sales", ["<p>2</p>"])
    text, _, _ = process_tool_result(None, "chart", HTMLResponse("<p>3</p>", 502), "")
    assert json.loads(text)["message"] == "chart: Server error 502 from embedded UI result."
    text, files, _ = process_tool_result(None, "reader", "data:image/png;base64,AAAA", "")
    assert text == "reader: Image file read successfully."
    assert files == [{"type": "image", "url": "data:image/png;base64,AAAA"}]
    assert process_tool_result(None, "n", 7, "")[0] == "7"


def test_user_info_headers_quote_names_and_leave_headers_alone_without_a_user():
    from open_webui.utils.headers import include_user_info_headers

    headers = {"A": "1"}
    assert include_user_info_headers(headers, None) is headers
    user = {"id": "3", "name": " Zoë Ann ", "email": " z@example.com ", "role": "user"}
    added = include_user_info_headers(headers, user)
    assert added["X-OpenWebUI-User-Name"] == "Zo%C3%AB Ann"
    assert added["X-OpenWebUI-User-Email"] == "z@example.com"
    assert headers == {"A": "1"}


async def test_group_grants_use_the_accounts_own_groups(bob):
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import Group
    from open_webui.utils.access_control import has_connection_access

    from functions.services import host

    group = await Group.objects.acreate(name="research")
    await sync_to_async(bob.groups.add)(group)
    grants = [{"principal_type": "group", "principal_id": str(group.pk), "permission": "read"}]
    connection = {"config": {"access_grants": grants}}
    me = {"id": str(bob.pk), "role": "user"}
    host.set_caller(me)
    assert await has_connection_access(me, connection) is True
    # Claiming admin changes nothing: the role is the account's.
    assert await has_connection_access({**me, "role": "admin"}, {"config": {}}) is False
    # Someone the caller may not see has no groups.
    assert await has_connection_access({"id": "999", "role": "admin"}, connection) is False
