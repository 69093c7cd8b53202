"""Plugins' dialogs in a real browser (Debian's chromium driven by Playwright), against
the live daphne server whose plugins run in sandboxed workers: an action's input
answered in its modal dialog, a confirmation cancelled with Escape, a dialog that
survives a reload, and an "execute" script that runs in its sandboxed frame, without
the page's cookies, document or session, and still hands the user a download. Saves
docs/screenshots/dialog.png.

Elements are found as a screen reader finds them (role, name, label); waits are
Playwright's own `expect`; nothing sleeps.
"""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.chat import test_pages_browser as pages
from tests.chat.test_pages_browser import NEEDS_CHROMIUM, answer, expect_done, sign_in, start_chat
from tests.support.live import ROOT

# The chat pages' browser fixtures: a chromium for the module, bob signed in, plugins.
browser, password_hash, user = pages.browser, pages.password_hash, pages.user
install, context, page = pages.install, pages.context, pages.page

pytestmark = [pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

SCREENSHOT = ROOT / "docs" / "screenshots" / "dialog.png"
MODEL = "echo_pipe"


def an_answer_with(page, install, action: str):
    """Signed in, on a chat with one answer (echo_pipe's) offering the action."""
    install(MODEL)
    install(action, is_global=True)
    sign_in(page)
    start_chat(page, MODEL, "hello there")
    article = answer(page, MODEL)
    expect_done(article)
    return article


def click_tool(article, name: str) -> None:
    article.get_by_role("toolbar", name="Answer tools").get_by_role("button", name=name).click()


def test_a_runs_question_is_a_modal_whose_answer_resumes_the_answer(page, install):
    install("asking_pipe")
    sign_in(page)
    start_chat(page, "asking_pipe", "hi")
    composer = page.get_by_role("textbox", name="Message")
    asked = page.get_by_role("dialog", name="Your name?")
    name = asked.get_by_role("textbox", name="Who is asking?")
    expect(name).to_be_focused()
    expect(name).to_have_attribute("placeholder", "Name")
    expect(composer).not_to_be_focused()  # the rest of the page is out of reach
    name.fill("Ada")
    name.press("Enter")
    expect(asked).to_be_hidden()
    expect(composer).to_be_focused()  # back where it was
    article = answer(page, "asking_pipe")
    expect_done(article)
    expect(article).to_contain_text("Asking. You said: 'Ada'")


def test_an_action_asks_for_input_and_the_answer_lands_in_its_message(page, install):
    article = an_answer_with(page, install, "dialog_action")  # "Ask And Confirm"
    click_tool(article, "Ask And Confirm")
    asked = page.get_by_role("dialog", name="Add a note")
    expect(asked).to_be_visible()
    expect(asked).to_have_attribute("aria-modal", "true")
    note = asked.get_by_role("textbox", name="What should be appended to this reply?")
    expect(note).to_be_focused()  # focus moved into the dialog
    expect(note).to_have_attribute("placeholder", "Type your note")
    note.fill("Remember the milk")
    # Focus stays in the dialog: Tab goes round its own controls.
    for _ in range(3):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('dialog[open]')")
    page.screenshot(path=SCREENSHOT)
    asked.get_by_role("button", name="OK").click()
    expect(asked).to_be_hidden()
    confirm = page.get_by_role("dialog", name="Append note?")
    expect(confirm).to_contain_text("Append: Remember the milk")
    confirm.get_by_role("button", name="Confirm").click()
    expect(confirm).to_be_hidden()
    expect(article).to_contain_text("Remember the milk")
    # Saved with the message, and no dialog waits any more.
    page.reload()
    expect(answer(page, MODEL)).to_contain_text("Remember the milk")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_a_confirmation_cancelled_with_escape_gives_the_action_false(page, install):
    article = an_answer_with(page, install, "confirm_echo_action")  # "Confirm Echo"
    click_tool(article, "Confirm Echo")
    asked = page.get_by_role("dialog", name="Really rewrite?")
    expect(asked).to_contain_text("This replaces the answer.")
    expect(asked.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Escape")
    expect(asked).to_be_hidden()
    expect(answer(page, MODEL)).to_contain_text("Confirmed: False")


def test_a_dialog_survives_a_reload_and_answering_it_resumes_the_action(page, install):
    article = an_answer_with(page, install, "confirm_echo_action")
    click_tool(article, "Confirm Echo")
    expect(page.get_by_role("dialog", name="Really rewrite?")).to_be_visible()
    page.reload()  # the action's request goes with the old page; the action does not
    asked = page.get_by_role("dialog", name="Really rewrite?")
    expect(asked).to_be_visible()
    asked.get_by_role("button", name="Confirm").click()
    expect(asked).to_be_hidden()
    expect(answer(page, MODEL)).to_contain_text("Confirmed: True")


def test_an_execute_script_runs_sandboxed_and_its_value_reaches_the_action(page, install):
    article = an_answer_with(page, install, "sandbox_probe_action")  # "Sandbox Probe"
    # What the page itself has: a readable cookie, and the API with its session.
    assert "csrftoken=" in page.evaluate("() => document.cookie")
    status = page.evaluate(
        "async () => (await fetch('/api/v1/auths/', {credentials: 'include'})).status"
    )
    assert status == 200
    with page.expect_download() as offered:
        click_tool(article, "Sandbox Probe")
    # The script got none of them, and its value went back to the plugin.
    expect(answer(page, MODEL).get_by_role("paragraph")).to_have_text(
        "Sandbox: cookie=None, parent=None, fetch=None, value=42"
    )
    # Its download still reached the user.
    download = offered.value
    assert download.suggested_filename == "sandbox.txt"
    assert Path(download.path()).read_text() == "made in the sandbox"
    # The frame is gone once answered, and the page ran no plugin code itself.
    expect(page.locator("iframe[data-dialog-frame]")).to_have_count(0)


def test_an_emitted_script_runs_sandboxed_once_and_its_download_reaches_the_user(page, install):
    article = an_answer_with(page, install, "export_script_action")  # "Export Answer"
    with page.expect_download() as offered:
        click_tool(article, "Export Answer")
    download = offered.value
    assert download.suggested_filename == "answer.txt"
    assert Path(download.path()).read_text() == "echo: hello there"  # the answer
    expect(page.get_by_text("Exported.")).to_be_visible()
    # Done, its frame goes; the page itself ran no plugin code (its CSP has no eval).
    expect(page.locator("iframe[data-dialog-frame]")).to_have_count(0)
