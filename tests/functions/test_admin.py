"""The functions admin: pages, permissions, and that every write goes through the services."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from functions.models import Function
from functions.services.functions import function_delete, function_update

pytestmark = pytest.mark.django_db

NO_VALVES_PIPE = '''"""
title: Plain Pipe
"""


class Pipe:
    def pipe(self, body: dict) -> str:
        return "plain"
'''

SECRET_PIPE = '''"""
title: Secret Pipe
"""

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        API_KEY: str = ""
        MODEL: str = "small"

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        return self.valves.MODEL
'''


PAGES = [
    "changelist",
    "add",
    "change",
    "import",
    "templates",
    "revisions",
    "diff",
    "valves",
    "clone",
]


def url(name: str, *args) -> str:
    return reverse(f"admin:functions_function_{name}", args=args)


def page_urls(function_id: str) -> dict[str, str]:
    return {
        "changelist": url("changelist"),
        "add": url("add"),
        "change": url("change", function_id),
        "import": url("import"),
        "templates": url("templates"),
        "revisions": url("revisions", function_id),
        "diff": url("diff", function_id) + "?old=1&new=2",
        "valves": url("valves", function_id),
        "clone": url("clone", function_id),
    }


@pytest.fixture
def echo(make_function, alice, plugin_source):
    """echo_pipe with two revisions, so the diff page has something to compare."""
    function = make_function("echo_pipe", id="echo")
    edited = plugin_source("echo_pipe") + "\n# second revision\n"
    return function_update(user=alice, function=function, content=edited)


def run_action(client, action: str, *ids: str, follow: bool = True):
    data = {"action": action, ACTION_CHECKBOX_NAME: list(ids)}
    return client.post(url("changelist"), data, follow=follow)


def page_text(response) -> str:
    return response.content.decode()


# Who can reach the pages


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_for_staff(alice_client, echo, page):
    response = alice_client.get(page_urls(echo.id)[page])

    assert response.status_code == 200


# (admin page, API call, permissions held): both doors answer alike.
AGREEMENT = [
    ("changelist", ("get", "/api/v1/functions/export"), ()),
    ("changelist", ("get", "/api/v1/functions/export"), ("functions.view_function",)),
    ("add", ("post", "/api/v1/functions/create"), ("functions.view_function",)),
    ("add", ("post", "/api/v1/functions/create"), ("functions.add_function",)),
    ("valves", ("get", "/api/v1/functions/id/echo/valves"), ("functions.view_function",)),
    (
        "valves",
        ("get", "/api/v1/functions/id/echo/valves"),
        ("functions.view_function", "valves.view_functionvalves"),
    ),
]


@pytest.mark.parametrize(("page", "api", "perms"), AGREEMENT)
def test_admin_and_api_agree_on_staff_permissions(staff_with, echo, page, api, perms):
    client = Client()
    client.force_login(staff_with("stan", *perms))
    method, path = api
    body = {"id": "new_pipe", "content": NO_VALVES_PIPE}
    answer = (
        client.post(path, body, content_type="application/json")
        if method == "post"
        else (client.get(path))
    )
    admin_status = client.get(page_urls(echo.id)[page]).status_code

    assert admin_status in (200, 403)
    assert (answer.status_code == 403) == (admin_status == 403), answer.content
    assert answer.status_code in (200, 403)


@pytest.mark.parametrize("who", ["bob", "anonymous"])
@pytest.mark.parametrize("page", PAGES)
def test_pages_redirect_non_staff_to_admin_login(bob_client, echo, who, page):
    client = bob_client if who == "bob" else Client()

    response = client.get(page_urls(echo.id)[page])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("who", ["bob", "anonymous"])
def test_non_staff_cannot_roll_back_or_export(bob_client, echo, who):
    client = bob_client if who == "bob" else Client()

    rollback = client.post(url("rollback", echo.id, 1))
    export = client.get(url("export_all"))

    assert rollback.status_code == export.status_code == 302
    assert echo.revisions.count() == 2


# Adding and editing


def test_add_with_valid_code_creates_function_and_first_revision(alice_client, plugin_source):
    data = {"id": "echo", "name": "", "description": "", "content": plugin_source("echo_pipe")}

    response = alice_client.post(url("add"), data)

    assert response.status_code == 302
    function = Function.objects.get(id="echo")
    assert function.name == "Echo Pipe"  # from the frontmatter title
    assert function.type == "pipe"
    assert function.current_revision.number == 1


def test_add_with_broken_code_shows_the_exact_error_and_creates_nothing(
    alice_client, plugin_source
):
    data = {"id": "broken", "name": "Broken", "content": plugin_source("broken_syntax")}

    response = alice_client.post(url("add"), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["content"]
    assert errors[0].startswith("SyntaxError at line 20")
    assert "SyntaxError at line 20" in page_text(response)
    assert not Function.objects.exists()


def test_add_rejects_an_invalid_id(alice_client, plugin_source):
    data = {"id": "not an id", "name": "x", "content": plugin_source("echo_pipe")}

    response = alice_client.post(url("add"), data)

    assert "id" in response.context["adminform"].form.errors
    assert not Function.objects.exists()


def test_editing_the_code_creates_revision_2_with_its_note(alice_client, make_function):
    function = make_function("echo_pipe", id="echo")
    content = function.content.replace("echo: ", "said: ")
    data = {"name": "Echo", "description": "d", "content": content, "note": "New prefix"}

    response = alice_client.post(url("change", "echo"), data)

    assert response.status_code == 302
    function.refresh_from_db()
    assert function.current_revision.number == 2
    assert function.current_revision.note == "New prefix"
    assert function.description == "d"


def test_source_from_a_browser_is_stored_with_unix_line_endings(alice_client, plugin_source):
    content = plugin_source("echo_pipe").replace("\n", "\r\n")

    alice_client.post(url("add"), {"id": "echo", "name": "Echo", "content": content})

    assert Function.objects.get(id="echo").content == plugin_source("echo_pipe")


def test_saving_unchanged_code_adds_no_revision(alice_client, make_function):
    function = make_function("echo_pipe", id="echo")
    data = {"name": "Renamed", "content": function.content.replace("\n", "\r\n")}

    alice_client.post(url("change", "echo"), data)

    function.refresh_from_db()
    assert function.name == "Renamed"
    assert function.current_revision.number == 1


def test_editing_with_broken_code_keeps_the_stored_code(alice_client, make_function):
    function = make_function("echo_pipe", id="echo")
    data = {"name": "Echo", "content": "x = ("}

    response = alice_client.post(url("change", "echo"), data)

    assert "SyntaxError at line 1" in page_text(response)
    function.refresh_from_db()
    assert function.current_revision.number == 1


def test_change_page_shows_load_report_and_frontmatter(alice_client, make_function):
    make_function("ping_action", id="ping")

    html = page_text(alice_client.get(url("change", "ping")))

    assert "Load report (revision 1)" in html
    assert "fnplatform tests" in html  # the frontmatter author


def test_change_page_notes_the_no_op_hooks_the_server_skips(alice_client, make_function):
    source = (
        "class Filter:\n    def inlet(self, body):\n        body['x'] = 1\n        return body\n"
        "    def outlet(self, body):\n        return body\n"
    )
    make_function(id="stubby", content=source)

    html = page_text(alice_client.get(url("change", "stubby")))

    assert "<code>inlet</code> (sync), <code>outlet</code> (sync; no-op, skipped)" in html


def test_change_page_shows_the_last_load_error(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    Function.objects.filter(id="echo").update(load_error="NameError at line 3: boom")

    html = page_text(alice_client.get(url("change", "echo")))

    assert "NameError at line 3: boom" in html


def test_deleting_through_the_admin_removes_the_function(alice_client, make_function):
    make_function("echo_pipe", id="echo")

    response = alice_client.post(url("delete", "echo"), {"post": "yes"})

    assert response.status_code == 302
    assert not Function.objects.filter(id="echo").exists()


# History, diff and rollback


def test_rollback_creates_revision_3_with_the_old_content(alice_client, echo):
    first = echo.revisions.get(number=1)

    response = alice_client.post(url("rollback", echo.id, 1), follow=True)

    echo.refresh_from_db()
    assert echo.current_revision.number == 3
    assert echo.content == first.content
    assert "Rolled back to revision 1" in page_text(response)


def test_rollback_to_the_current_source_reports_why_not(alice_client, echo):
    response = alice_client.post(url("rollback", echo.id, 2), follow=True)

    assert "already the current source" in page_text(response)
    assert echo.revisions.count() == 2


def test_rollback_needs_post(alice_client, echo):
    assert alice_client.get(url("rollback", echo.id, 1)).status_code == 405


def test_history_lists_revisions_with_the_current_marker(alice_client, echo):
    html = page_text(alice_client.get(url("revisions", echo.id)))

    assert "r2" in html and "r1" in html
    assert "(current)" in html
    assert echo.current_revision.sha256[:12] in html


def test_diff_colours_lines_and_escapes_html(alice_client, echo, alice):
    with_script = echo.content + "# <script>alert(1)</script>\n"
    function_update(user=alice, function=echo, content=with_script)

    response = alice_client.get(url("diff", echo.id) + "?old=2&new=3")

    html = page_text(response)
    assert '<span class="diff-add">+# &lt;script&gt;alert(1)&lt;/script&gt;</span>' in html
    assert "<script>alert(1)" not in html


def test_diff_of_a_missing_revision_is_404(alice_client, echo):
    assert alice_client.get(url("diff", echo.id) + "?old=1&new=9").status_code == 404


# Actions


def test_activate_refuses_code_that_no_longer_loads_and_records_why(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    Function.objects.filter(id="echo").update(content="x = (")

    response = run_action(alice_client, "activate", "echo")

    html = page_text(response)
    assert "Cannot activate echo" in html
    assert "SyntaxError" in html
    function = Function.objects.get(id="echo")
    assert not function.is_active
    assert function.load_error.startswith("SyntaxError")


def test_activate_and_deactivate_switch_functions(alice_client, make_function):
    make_function("echo_pipe", id="echo")

    activated = run_action(alice_client, "activate", "echo")
    assert "1 function(s) activated" in page_text(activated)
    assert Function.objects.get(id="echo").is_active

    run_action(alice_client, "deactivate", "echo")
    assert not Function.objects.get(id="echo").is_active


def test_make_global_and_back(alice_client, make_function):
    make_function("upper_filter", id="upper")

    run_action(alice_client, "make_global", "upper")
    assert Function.objects.get(id="upper").is_global

    run_action(alice_client, "make_not_global", "upper")
    assert not Function.objects.get(id="upper").is_global


def test_export_action_downloads_open_webui_json(alice_client, make_function):
    function = make_function("echo_pipe", id="echo")

    response = run_action(alice_client, "export_json", "echo", follow=False)

    assert response["Content-Type"] == "application/json"
    assert "functions-export-" in response["Content-Disposition"]
    [item] = json.loads(response.content)
    assert item["id"] == "echo"
    assert item["content"] == function.content


def test_clone_action_creates_a_copy_and_opens_it(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    make_function("echo_pipe", id="echo_copy")

    response = run_action(alice_client, "clone", "echo", follow=False)

    assert response["Location"] == url("change", "echo_copy2")
    assert Function.objects.get(id="echo_copy2").current_revision.number == 1


def test_clone_action_wants_exactly_one_function(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    make_function("upper_filter", id="upper")

    response = run_action(alice_client, "clone", "echo", "upper")

    assert "Select exactly one function" in page_text(response)
    assert Function.objects.count() == 2


def test_clone_page_clones_under_the_chosen_id(alice_client, make_function):
    make_function("echo_pipe", id="echo")

    response = alice_client.post(url("clone", "echo"), {"new_id": "echo_two", "name": "Two"})

    assert response["Location"] == url("change", "echo_two")
    assert Function.objects.get(id="echo_two").name == "Two"


# Export and import


def test_export_all_downloads_every_function(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    make_function("upper_filter", id="upper")

    response = alice_client.get(url("export_all"))

    assert {item["id"] for item in json.loads(response.content)} == {"echo", "upper"}


def test_import_json_round_trip(alice_client, alice, make_function):
    original = make_function("echo_pipe", id="echo")
    exported = alice_client.get(url("export_all")).content
    function_delete(user=alice, function=original)
    upload = SimpleUploadedFile("export.json", exported, content_type="application/json")

    response = alice_client.post(url("import"), {"source": "json", "json-file": upload})

    assert response.status_code == 302
    restored = Function.objects.get(id="echo")
    assert restored.content == original.content
    assert restored.name == original.name


def test_import_json_reports_an_existing_id_unless_overwriting(alice_client, make_function):
    function = make_function("echo_pipe", id="echo")
    items = [{"id": "echo", "name": "Echo", "content": function.content + "# v2\n"}]

    def post(**extra):
        upload = SimpleUploadedFile("export.json", json.dumps(items).encode())
        return alice_client.post(url("import"), {"source": "json", "json-file": upload, **extra})

    refused = post()
    assert "a function with this id exists" in page_text(refused)
    assert Function.objects.get(id="echo").current_revision.number == 1

    post(**{"json-overwrite": "on"})
    assert Function.objects.get(id="echo").current_revision.number == 2


def test_import_json_rejects_a_file_that_is_not_json(alice_client):
    upload = SimpleUploadedFile("export.json", b"{not json")

    response = alice_client.post(url("import"), {"source": "json", "json-file": upload})

    assert "not valid JSON" in page_text(response)


def test_import_python_file_opens_the_add_form_prefilled(alice_client, plugin_source):
    upload = SimpleUploadedFile("ping_action.py", plugin_source("ping_action").encode())

    response = alice_client.post(url("import"), {"source": "py", "py-file": upload}, follow=True)

    form = response.context["adminform"].form
    assert form.initial["content"] == plugin_source("ping_action")
    assert not Function.objects.exists()  # nothing is saved until the form is

    fields = {key: form.initial.get(key, "") for key in ("id", "name", "description", "content")}
    add_url_with_draft = response.redirect_chain[-1][0]
    saved = alice_client.post(add_url_with_draft, fields)
    assert saved.status_code == 302
    assert Function.objects.get(id=form.initial["id"]).type == "action"
    assert alice_client.session["functions_admin_drafts"] == {}


def test_import_python_file_rejects_other_files(alice_client):
    upload = SimpleUploadedFile("notes.txt", b"hello")

    response = alice_client.post(url("import"), {"source": "py", "py-file": upload})

    assert "Choose a .py file." in page_text(response)


@pytest.fixture
def plugin_server(plugin_source):
    """A real HTTP server on the loopback interface serving tests/plugins files."""
    files = {"/plugins/echo_pipe.py": plugin_source("echo_pipe").encode()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_proxy(monkeypatch, settings):
    settings.FUNCTIONS_IMPORT_TIMEOUT = 2
    settings.FUNCTIONS_IMPORT_ALLOW_PRIVATE = True  # the plugin server is on loopback
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_url_import_opens_the_add_form_prefilled(alice_client, plugin_server, no_proxy):
    data = {"source": "url", "url-url": f"{plugin_server}/plugins/echo_pipe.py"}

    response = alice_client.post(url("import"), data, follow=True)

    form = response.context["adminform"].form
    assert "class Pipe" in form.initial["content"]
    assert form.initial["name"] == "Echo Pipe"
    assert form.initial["id"] == "echo_pipe"


def test_url_import_shows_the_fetch_error(alice_client, plugin_server, no_proxy):
    data = {"source": "url", "url-url": f"{plugin_server}/plugins/missing.py"}

    response = alice_client.post(url("import"), data)

    assert response.status_code == 200
    assert "HTTP 404" in page_text(response)


def test_an_expired_draft_opens_an_empty_add_form_with_a_warning(alice_client):
    response = alice_client.get(url("add") + "?draft=nope")

    assert response.status_code == 200
    assert "expired" in page_text(response)


# Templates


TEMPLATE_KINDS = [
    ("pipe", "pipe"),
    ("manifold_pipe", "pipe"),
    ("filter", "filter"),
    ("toggle_filter", "filter"),
    ("action", "action"),
]


@pytest.mark.parametrize(("kind", "function_type"), TEMPLATE_KINDS)
def test_a_template_prefills_the_add_form_and_saves_as_a_working_function(
    alice_client, kind, function_type
):
    from functions.admin_views import TEMPLATE_DIR

    form = alice_client.get(url("add") + f"?template={kind}").context["adminform"].form
    assert form.initial["content"] == (TEMPLATE_DIR / f"{kind}.py").read_text()

    fields = ("id", "name", "description", "content")
    response = alice_client.post(url("add"), {key: form.initial.get(key, "") for key in fields})

    assert response.status_code == 302
    assert Function.objects.get(id=form.initial["id"]).type == function_type


def test_an_unknown_template_opens_an_empty_add_form_with_a_warning(alice_client):
    response = alice_client.get(url("add") + "?template=nope")

    assert [str(m) for m in response.context["messages"]] == ["No template 'nope' is available."]


def test_template_picker_links_to_the_add_form(alice_client):
    html = page_text(alice_client.get(url("templates")))

    assert "Toggle filter" in html
    assert "Manifold pipe" in html


# Valves


def test_valves_page_saves_a_value(alice_client, make_function):
    from valves.services import valves_state_global

    function = make_function("echo_pipe", id="echo")

    response = alice_client.post(url("valves", "echo"), {"PREFIX": "said>"})

    assert response.status_code == 302
    assert valves_state_global(function=function).values["PREFIX"] == "said>"


def test_valves_page_never_renders_a_secret(alice_client, alice, make_function):
    from valves.services import valves_update_global

    function = make_function(id="secret", content=SECRET_PIPE)
    valves_update_global(user=alice, function=function, values={"API_KEY": "sk-very-secret-42"})

    html = page_text(alice_client.get(url("valves", "secret")))

    assert "sk-very-secret-42" not in html
    assert 'name="API_KEY"' in html


def test_valves_page_says_when_there_are_no_valves(alice_client, make_function):
    make_function(id="plain", content=NO_VALVES_PIPE)

    html = page_text(alice_client.get(url("valves", "plain")))

    assert "has no Valves" in html


def test_valves_page_shows_the_load_error_when_code_cannot_load(alice_client, make_function):
    make_function("echo_pipe", id="echo")
    Function.objects.filter(id="echo").update(content="x = (")

    response = alice_client.get(url("valves", "echo"))

    assert response.status_code == 200
    assert "SyntaxError at line 1" in page_text(response)


# Quarantine seen: the change list's health column and the admin index


def health_cell(page: str, function_id: str) -> str:
    """The health cell of one function's row in the change list."""
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?>{function_id}<(?:(?!</tr>).)*</tr>", page, re.S)
    return re.search(r'<td class="field-health_status">(.*?)</td>', row.group(0), re.S).group(1)


def test_change_list_shows_each_functions_health(alice_client, make_function, settings):
    from functions.services.health import health_record_failure

    settings.FUNCTIONS_QUARANTINE_CRASHES = 1
    make_function("echo_pipe", id="healthy")
    make_function("echo_pipe", id="flaky")
    make_function("echo_pipe", id="broken")
    health_record_failure(function_id="flaky", kind="error", message="ValueError: one")
    health_record_failure(function_id="flaky", kind="error", message="ValueError: <two>")
    health_record_failure(function_id="broken", kind="crash", message="worker died")

    page = page_text(alice_client.get(url("changelist")))

    assert health_cell(page, "healthy") == '<span class="health health-ok" title="">ok</span>'
    assert health_cell(page, "flaky") == (
        '<span class="health health-failing" title="ValueError: &lt;two&gt;">'
        "2 recent failures</span>"
    )
    quarantined = health_cell(page, "broken")
    assert quarantined.startswith('<span class="health health-quarantined" title="1 severe')
    assert "the last: worker died" in quarantined and quarantined.endswith(">quarantined</span>")


def test_admin_index_lists_quarantined_functions_with_links(alice_client, make_function, settings):
    from functions.services.health import health_record_failure

    settings.FUNCTIONS_QUARANTINE_CRASHES = 1
    make_function("echo_pipe", id="broken", name="Broken Pipe")
    make_function("echo_pipe", id="fine")
    health_record_failure(function_id="broken", kind="crash", message="worker died")

    page = page_text(alice_client.get(reverse("admin:index")))

    section = page[page.index('id="quarantined-functions"') :]
    section = section[: section.index("</table>")]
    assert f'href="{url("change", "broken")}"' in section and "Broken Pipe" in section
    assert "worker died" in section and url("change", "fine") not in section
    assert "app-functions" in page  # the stock index is still there


def test_admin_index_has_no_quarantine_section_when_none_is(alice_client, make_function):
    make_function("echo_pipe", id="fine")
    page = page_text(alice_client.get(reverse("admin:index")))
    assert "quarantined-functions" not in page and "app-functions" in page


def test_admin_index_hides_quarantined_functions_from_staff_who_may_not_view_them(
    staff_with, make_function, settings
):
    from functions.services.health import health_record_failure

    settings.FUNCTIONS_QUARANTINE_CRASHES = 1
    make_function("echo_pipe", id="broken")
    health_record_failure(function_id="broken", kind="crash", message="worker died")
    client = Client()
    client.force_login(staff_with("stan", "accounts.view_apikey"))

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200 and "quarantined-functions" not in page_text(response)


@pytest.mark.parametrize(
    ("perms", "offered"),
    [
        (("functions.view_requirementenv", "functions.view_function"), False),
        (("functions.view_requirementenv", "functions.change_function"), True),
    ],
)
def test_install_again_is_offered_to_those_the_service_lets_do_it(staff_with, perms, offered):
    from functions.models import RequirementEnv

    RequirementEnv.objects.create(key="k" * 64, requirements=["x"])
    client = Client()
    client.force_login(staff_with("stan", *perms))
    page = page_text(client.get(reverse("admin:functions_requirementenv_changelist")))
    assert ('value="reinstall"' in page) is offered
