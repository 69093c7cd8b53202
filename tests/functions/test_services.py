import http.server
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from functions.models import Function, FunctionRevision
from functions.selectors import revision_diff, revision_get
from functions.services import functions as services
from functions.services import transfer

pytestmark = pytest.mark.django_db

PIPE = (
    '"""\ntitle: Greeter\ndescription: Says hello\n"""\n'
    'class Pipe:\n    def pipe(self, body):\n        return "hello"\n'
)
PIPE_V2 = PIPE.replace('"hello"', '"hello again"')
TOGGLE_FILTER = (
    "class Filter:\n    def __init__(self):\n        self.toggle = True\n"
    "    def inlet(self, body):\n        return body\n"
)


def create(user, id="greeter", content=PIPE, **kwargs):
    return services.function_create(user=user, id=id, content=content, **kwargs)


def test_create_checks_source_and_records_revision_one(alice):
    function = create(alice, name="")
    assert function.type == "pipe"
    assert function.name == "Greeter"  # from the frontmatter title
    assert function.meta == {
        "description": "Says hello",
        "manifest": {"title": "Greeter", "description": "Says hello"},
    }
    assert not function.is_active and not function.is_global
    revision = function.current_revision
    assert (revision.number, revision.author, revision.content) == (1, alice, PIPE)
    assert revision.load_result["kind"] == "pipe"
    assert len(revision.sha256) == 64


def test_create_lowercases_the_id_and_refuses_bad_or_taken_ids(alice):
    assert create(alice, id="Greeter").id == "greeter"
    with pytest.raises(ValidationError) as info:
        create(alice, id="greeter")
    assert "already exists" in info.value.message_dict["id"][0]
    for bad in ["1abc", "has-dash", "class", ""]:
        with pytest.raises(ValidationError) as info:
            create(alice, id=bad)
        assert "id" in info.value.message_dict


def test_create_with_code_that_cannot_load_saves_nothing(alice):
    with pytest.raises(ValidationError) as info:
        create(alice, content="class Pipe:\n    def pipe(self, body)\n")
    assert info.value.messages[0].startswith("SyntaxError at line 2:")
    assert not Function.objects.exists()
    assert not FunctionRevision.objects.exists()


@pytest.mark.parametrize("who", ["bob", "anonymous"])
def test_only_staff_author_code(who, bob):
    from django.contrib.auth.models import AnonymousUser

    user = bob if who == "bob" else AnonymousUser()
    with pytest.raises(PermissionDenied):
        create(user)
    assert not Function.objects.exists()


def test_toggle_filter_gets_toggle_meta(alice):
    function = create(alice, id="chip", content=TOGGLE_FILTER)
    assert function.type == "filter"
    assert function.meta["toggle"] is True


def test_update_makes_a_revision_only_when_the_source_changes(alice, bob):
    function = create(alice)
    services.function_update(user=alice, function=function, name="Renamed")
    assert function.revisions.count() == 1
    updated = services.function_update(user=alice, function=function, content=PIPE_V2, note="v2")
    assert updated.name == "Renamed"
    assert updated.current_revision.number == 2
    assert updated.current_revision.note == "v2"
    with pytest.raises(PermissionDenied):
        services.function_update(user=bob, function=function, content=PIPE)


def test_update_recomputes_type(alice):
    function = create(alice)
    updated = services.function_update(user=alice, function=function, content=TOGGLE_FILTER)
    assert updated.type == "filter"
    assert updated.meta["toggle"] is True


def test_update_with_broken_code_changes_nothing(alice):
    function = create(alice)
    with pytest.raises(ValidationError):
        services.function_update(user=alice, function=function, content="import nope_nope_nope")
    function.refresh_from_db()
    assert function.content == PIPE
    assert function.revisions.count() == 1


def test_revisions_are_immutable(alice):
    revision = create(alice).current_revision
    revision.note = "changed"
    with pytest.raises(ValueError, match="immutable"):
        revision.save()


def test_rollback_is_a_new_revision_with_the_old_source(alice):
    function = create(alice)
    services.function_update(user=alice, function=function, content=PIPE_V2)
    first = revision_get(function=function, number=1)
    rolled = services.function_rollback(user=alice, function=function, revision=first)
    assert rolled.content == PIPE
    assert rolled.current_revision.number == 3
    assert rolled.current_revision.note == "Rollback to revision 1"
    with pytest.raises(ValidationError, match="already the current source"):
        services.function_rollback(user=alice, function=rolled, revision=first)


def test_diff_between_revisions(alice):
    function = create(alice)
    services.function_update(user=alice, function=function, content=PIPE_V2)
    diff = revision_diff(
        old=revision_get(function=function, number=1), new=revision_get(function=function, number=2)
    )
    assert '-        return "hello"' in diff
    assert '+        return "hello again"' in diff


def test_activation_reloads_and_refuses_broken_code_with_the_reason(alice):
    function = create(alice)
    assert services.function_set_active(user=alice, function=function, active=True).is_active
    Function.objects.filter(pk=function.pk).update(content="x = (", is_active=False)
    function.refresh_from_db()
    with pytest.raises(ValidationError, match=r"Cannot activate greeter.*SyntaxError at line 1"):
        services.function_set_active(user=alice, function=function, active=True)
    function.refresh_from_db()
    assert not function.is_active
    assert function.load_error.startswith("SyntaxError at line 1")
    assert (
        services.function_set_active(user=alice, function=function, active=False).is_active is False
    )


def test_set_global_and_delete(alice, bob):
    function = create(alice)
    assert services.function_set_global(user=alice, function=function, is_global=True).is_global
    with pytest.raises(PermissionDenied):
        services.function_delete(user=bob, function=function)
    services.function_delete(user=alice, function=function)
    assert not Function.objects.exists() and not FunctionRevision.objects.exists()


def test_clone(alice):
    original = create(alice, meta={"description": "custom"})
    copy = services.function_clone(user=alice, function=original, new_id="greeter_copy")
    assert (copy.content, copy.name, copy.description) == (PIPE, "Greeter (copy)", "custom")
    assert copy.current_revision.note == "Cloned from greeter"


def test_export_and_import_round_trip(alice):
    create(alice)
    items = transfer.function_export_items(user=alice, functions=Function.objects.all())
    assert items[0]["content"] == PIPE and items[0]["type"] == "pipe"
    assert isinstance(items[0]["created_at"], int)
    Function.objects.all().delete()
    imported = transfer.function_import_items(user=alice, items=items)
    assert [f.id for f in imported] == ["greeter"]
    with pytest.raises(ValidationError, match=r"greeter: .*exists"):
        transfer.function_import_items(user=alice, items=items)
    items[0]["content"] = PIPE_V2
    transfer.function_import_items(user=alice, items=items, overwrite=True)
    assert Function.objects.get(pk="greeter").content == PIPE_V2


def test_import_is_all_or_nothing(alice):
    items = [
        {"id": "good", "name": "Good", "content": PIPE},
        {"id": "bad", "name": "Bad", "content": "def ("},
    ]
    with pytest.raises(ValidationError, match="bad: SyntaxError"):
        transfer.function_import_items(user=alice, items=items)
    assert not Function.objects.exists()
    with pytest.raises(ValidationError, match="Item 1 has no id"):
        transfer.function_import_items(user=alice, items=[{"content": PIPE}])


@pytest.mark.parametrize(
    ("url", "raw"),
    [
        (
            "https://github.com/o/r/blob/main/functions/x.py",
            "https://raw.githubusercontent.com/o/r/main/functions/x.py",
        ),
        (
            "https://github.com/o/r/tree/main/plugins/y",
            "https://raw.githubusercontent.com/o/r/main/plugins/y/main.py",
        ),
        ("https://example.com/a.py", "https://example.com/a.py"),
    ],
)
def test_github_urls_become_raw(url, raw):
    assert transfer.github_raw_url(url) == raw


def test_name_from_url():
    assert transfer.name_from_url("https://x/a/b/cool_pipe.py") == "cool_pipe"
    assert transfer.name_from_url("https://x/a/my_tool/main.py") == "my_tool"


@pytest.fixture
def file_server():
    """A real loopback HTTP server: /plugin.py, /big.py, /missing.py, /slow.py."""
    bodies = {"/plugin.py": PIPE.encode(), "/big.py": b"#" * 5000}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow.py":
                threading.Event().wait(2)
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_source_from_a_url(alice, file_server, settings, bob):
    settings.FUNCTIONS_IMPORT_ALLOW_PRIVATE = True  # the file server is on loopback
    settings.FUNCTIONS_IMPORT_MAX_BYTES = 4096
    settings.FUNCTIONS_IMPORT_TIMEOUT = 0.5
    fetched = transfer.fetch_source(user=alice, url=f"{file_server}/plugin.py")
    assert (fetched.name, fetched.content) == ("plugin", PIPE)
    for path, message in [
        ("/big.py", "larger than the 4 KiB limit"),
        ("/missing.py", "HTTP 404"),
        ("/slow.py", "Timed out"),
    ]:
        with pytest.raises(ValidationError, match=message):
            transfer.fetch_source(user=alice, url=file_server + path)
    with pytest.raises(ValidationError, match="Only http"):
        transfer.fetch_source(user=alice, url="file:///etc/passwd")
    with pytest.raises(PermissionDenied):
        transfer.fetch_source(user=bob, url=f"{file_server}/plugin.py")


def test_a_trust_group_is_kept_and_names_the_workers_the_function_shares(alice):
    from functions.services.plugins import plugin_call_for

    function = create(alice, trust_group="Team-A")
    assert function.trust_group == "team-a"
    assert plugin_call_for(function=function).group == "group:team-a"
    function = services.function_update(user=alice, function=function, trust_group="")
    assert plugin_call_for(function=function).group == "function:greeter"
    with pytest.raises(ValidationError) as info:
        services.function_update(user=alice, function=function, trust_group="no spaces")
    assert "trust_group" in info.value.message_dict
    assert Function.objects.get(pk="greeter").trust_group == ""
