"""The admin add form: new code typed in under a taken id is checked as no function's
own, so it cannot read that function's source or valves (a hostile saver)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_PIPE = '''
"""
title: Secret pipe
"""
API_KEY = "sk-hardcoded-in-source-123"

class Pipe:
    def pipe(self, body):
        return "hi"
'''

PEEK = """
from open_webui.models.functions import Functions

row = Functions.get_function_by_id("secret_pipe")
valves = Functions.get_function_valves_by_id("secret_pipe")
raise RuntimeError(f"LEAK {row.content if row else None!r} VALVES {valves!r}")

class Pipe:
    def pipe(self, body):
        return ""
"""


def test_new_code_under_a_taken_id_cannot_read_that_functions_source(settings, alice, staff_with):
    from django.test import Client

    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = "inline"
    function_create(user=alice, id="secret_pipe", content=SECRET_PIPE)
    adder = staff_with("adam", "functions.add_function")  # no view_function
    client = Client()
    client.force_login(adder)
    # adam cannot view the function itself
    assert client.get("/admin/functions/function/secret_pipe/change/").status_code in (302, 403)
    response = client.post(
        "/admin/functions/function/add/",
        {"id": "secret_pipe", "name": "", "content": PEEK, "trust_group": "", "note": ""},
    )
    body = response.content.decode()
    assert "LEAK None VALVES None" in body  # the code ran, as no function's own
    assert "sk-hardcoded-in-source-123" not in body
