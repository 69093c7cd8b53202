"""The admin's code editor in a real browser (Debian's chromium driven by Playwright)."""

import os
from pathlib import Path

import pytest

from functions.models import Function

CHROMIUM = os.environ.get("FNPLATFORM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="chromium is not installed (make test installs it)",
    ),
]

PIPE = (
    '"""\ntitle: Browser Pipe\n"""\nclass Pipe:\n    def pipe(self, body):\n        return "hi"\n'
)


@pytest.fixture
def page(live_server, alice):
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "pw-alice")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        yield page
        browser.close()


def set_editor(page, source: str) -> None:
    page.evaluate(
        "(s) => document.querySelector('.django-ace-widget').editor.setValue(s, 1)", source
    )


def test_source_is_edited_in_a_highlighting_code_editor(page, live_server):
    page.goto(f"{live_server.url}/admin/functions/function/add/")
    page.wait_for_selector(".django-ace-widget .ace_content")
    page.fill("#id_id", "browser_pipe")
    page.fill("#id_name", "Browser Pipe")
    set_editor(page, PIPE)
    # Typing goes through the editor, which keeps the indentation of the line above.
    page.evaluate(
        "() => { const e = document.querySelector('.django-ace-widget').editor;"
        " e.focus(); e.navigateFileEnd(); }"
    )
    page.keyboard.type("x = 1")
    assert page.locator(".django-ace-widget .ace_keyword").count() > 0
    # The admin's flex rows once squeezed the editor to a sliver; it must fill the row.
    assert page.locator(".django-ace-widget").bounding_box()["width"] > 800
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    function = Function.objects.get(pk="browser_pipe")
    assert function.content.startswith(PIPE)
    assert function.content.endswith("x = 1")


def test_broken_code_shows_the_exact_error_on_the_form(page, live_server):
    page.goto(f"{live_server.url}/admin/functions/function/add/")
    page.wait_for_selector(".django-ace-widget .ace_content")
    page.fill("#id_id", "broken")
    page.fill("#id_name", "Broken")
    set_editor(page, "class Pipe:\n    def pipe(self, body)\n        return 1\n")
    page.click("input[name=_save]")
    error = page.locator(".errorlist").first.inner_text()
    assert "SyntaxError at line 2" in error
    assert not Function.objects.filter(pk="broken").exists()
