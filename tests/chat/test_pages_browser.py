"""The chat pages in a real browser (Debian's chromium driven by Playwright), against a
live daphne server (the chat's websocket included) whose plugins run in sandboxed
workers: streaming, status lines, toggle filters, actions, reloads, a second tab, a
phone-sized screen, hostile answers, and the screenshot in docs/screenshots/chat.png.

Elements are found as a screen reader finds them: by role, label and text. Waits are
Playwright's own (`expect` retries until it holds, or fails); nothing sleeps.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from playwright.sync_api import expect

from functions.services.functions import function_create
from tests.conftest import read_plugin
from tests.support.live import ROOT
from valves.services import valves_update_global

# As tests/functions/test_admin_browser.py.
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

# Every chat browser module's: skipped only off CI (where make test installs it).
NEEDS_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="chromium is not installed (make test installs it)",
)

pytestmark = [pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

SCREENSHOT = ROOT / "docs" / "screenshots" / "chat.png"
DESKTOP = {"width": 1200, "height": 800}
PHONE = {"width": 390, "height": 844}

# tests/plugins/slow_markdown_pipe.py: its model, its answer's first and last words,
# and its status lines (the last one done).
SLOW = "slow_markdown_pipe"
HEADING = "FizzBuzz in Python"
LAST_WORDS = "That is the whole program."
STATUSES = ["Reading the question", "Writing the code", "Answer written (done)"]
# tests/plugins/streaming_generator_pipe.py: says the user's message back, word by word
# (slowly: a new chat's first answer must still be running when its page opens; see
# test_an_answer_that_ends_before_its_page_joins_is_drawn_whole).
ECHO = "streaming_generator_pipe"
ECHO_VALVES = {"DELAY_SECONDS": 0.2}
# Any answer, whatever its model: a page that joined a run mid-way names it "Answer"
# until it ends (see test_a_page_that_joins_a_running_answer_names_its_model).
ANY_ANSWER = re.compile(r"^Answer\b")


# Fixtures.


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM
    # calls (creating users) are plain sync code all the same.
    was_set = "DJANGO_ALLOW_ASYNC_UNSAFE" in os.environ
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if not was_set:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def password_hash() -> str:
    """bob's password as the server checks it (the tests' own MD5 hasher is not one of
    the server's), hashed once for the module."""
    return PBKDF2PasswordHasher().encode("pw-bob", "browser-tests-salt")


@pytest.fixture
def user(bob, password_hash):
    bob.password = password_hash
    bob.save(update_fields=["password"])
    return bob


def off_the_loop(fn, /, *args, **kwargs):
    """Run fn in a thread of its own: Playwright's sync API keeps an event loop running
    in this one, where this process's caches (fnplatform.state) refuse to load."""

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def install(live, alice):
    """Save and activate a plugin of tests/plugins (global: on every model)."""

    def make(name: str, *, is_global: bool = False, valves: dict | None = None):
        function = function_create(
            user=alice, id=name, content=read_plugin(name), is_active=True, is_global=is_global
        )
        if valves:
            valves_update_global(user=alice, function=function, values=valves)
        return function

    return lambda name, **options: off_the_loop(make, name, **options)


@pytest.fixture
def context(browser, live, user):
    context = browser.new_context(viewport=DESKTOP, base_url=live.url)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    """A tab, not signed in yet: a test installs its plugins first, then signs in."""
    return context.new_page()


# Steps.


def sign_in(page) -> None:
    """Through the login page, as bob; a signed-in user lands on the new chat page."""
    page.goto("/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("pw-bob")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()


def start_chat(page, model: str, text: str) -> str:
    """On the new chat page: pick the model, write, press Enter. The chat's URL."""
    page.get_by_label("Model").select_option(model)
    composer = page.get_by_role("textbox", name="Message")
    composer.fill(text)
    composer.press("Enter")
    # The answer starts before the page moves on, and a model's first call starts its
    # sandboxed worker: a safety net for a loaded machine, not a timing relied on.
    expect(page).to_have_url(re.compile(r"/chat/c/[^/]+/$"), timeout=30_000)
    return page.url


def send(page, text: str) -> None:
    """On a chat page: write, press Enter (sent over the socket, which empties it)."""
    composer = page.get_by_role("textbox", name="Message")
    composer.fill(text)
    composer.press("Enter")
    expect(composer).to_have_value("")


def answer(page, model: str = SLOW, nth: int = -1):
    return page.get_by_role("article", name=f"Answer from {model}").nth(nth)


def expect_done(article) -> None:
    """The answer ended: no longer busy, its tools shown."""
    expect(article).not_to_have_attribute("aria-busy", "true")
    expect(article.get_by_role("toolbar", name="Answer tools")).to_be_visible()


def expect_markdown(article) -> None:
    """slow_markdown_pipe's whole answer, rendered: a heading, a list, highlighted code."""
    expect(article.get_by_role("heading", name=HEADING, level=2)).to_be_visible()
    expect(article.get_by_role("list").get_by_role("listitem")).to_have_text(
        ["counts from 1 to 15", "says Fizz, Buzz or both"]
    )
    code = article.get_by_role("code").filter(has_text="def fizzbuzz(n):")
    expect(code).to_be_visible()
    # Highlighted by Pygments: `def` a keyword, `fizzbuzz` a function's name, a string.
    expect(article.locator(".highlight span.k")).to_have_text(["def", "return"])
    expect(article.locator(".highlight span.nf")).to_have_text("fizzbuzz")
    expect(article.locator(".highlight span.s2").first).to_contain_text("Fizz")
    expect(article).to_contain_text(LAST_WORDS)
    # Drawn, not shown as typed.
    expect(article).not_to_contain_text("```")
    expect(article).not_to_contain_text("## ")


def expect_streaming(article) -> None:
    """Part of slow_markdown_pipe's answer is shown while it is still being written."""
    expect(article).to_contain_text(HEADING)
    expect(article).to_have_attribute("aria-busy", "true")
    expect(article).not_to_contain_text(LAST_WORDS)


def status_history(article):
    """The answer's collapsible history of status lines (a <details>: a group)."""
    return article.get_by_role("group").filter(has_text="Status history")


# 1. Streaming.


def test_an_answer_streams_in_then_shows_as_rendered_markdown(page, install):
    install(SLOW)
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz")
    expect(page.get_by_role("article", name="Your message")).to_contain_text("Write FizzBuzz")
    # The new chat's answer: partial while it streams, then whole and drawn.
    first = page.get_by_role("article", name=ANY_ANSWER)
    expect_streaming(first)
    expect_done(answer(page))
    expect_markdown(answer(page))
    # Sent with Enter on the chat page: over its socket, with a Stop button meanwhile.
    send(page, "Once more")
    expect(page.get_by_role("article", name="Your message").nth(1)).to_contain_text("Once more")
    second = answer(page, nth=1)
    expect_streaming(second)
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    expect_done(second)
    expect_markdown(second)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.get_by_role("article", name=ANY_ANSWER)).to_have_count(2)


# 2. Status lines.


def test_status_lines_show_while_streaming_and_stay_in_a_history(page, install):
    install(SLOW)
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz")
    streaming = page.get_by_role("article", name=ANY_ANSWER)
    expect(streaming.get_by_role("status")).to_have_text("Writing the code")
    expect(streaming).to_have_attribute("aria-busy", "true")
    expect(status_history(streaming)).to_contain_text("Status history (2)")
    done = answer(page)
    expect_done(done)
    expect(done.get_by_role("status")).to_have_text("Answer written")
    history = status_history(done)
    summary = history.get_by_text("Status history (3)")
    lines = history.get_by_role("listitem")
    expect(lines.first).to_be_hidden()  # folded until asked for
    summary.click()
    expect(lines).to_have_text(STATUSES)
    expect(lines.first).to_be_visible()


def test_a_status_history_opened_while_streaming_stays_open_to_the_end(page, install):
    install(SLOW, valves={"DELAY_SECONDS": 0.25})  # long enough to open it mid-answer
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz")
    streaming = page.get_by_role("article", name=ANY_ANSWER)
    expect(streaming).to_have_attribute("aria-busy", "true")
    status_history(streaming).get_by_text(re.compile(r"^Status history")).click()
    expect(status_history(streaming).get_by_role("listitem").first).to_be_visible()
    # Opened while the answer still streams (else the redraws below were not tested).
    assert streaming.get_attribute("aria-busy") == "true"
    # Drawn again with each status and at the end: still open, not folded shut.
    done = answer(page)
    expect_done(done)
    lines = status_history(done).get_by_role("listitem")
    expect(lines).to_have_text(STATUSES)
    expect(lines.first).to_be_visible()


# 3. Toggle filters.


def test_a_toggle_filter_chip_switches_its_filter_for_the_chat(page, install):
    install(ECHO, valves=ECHO_VALVES)
    install("shout_toggle_filter", is_global=True)  # Shout: uppercases the user's message
    sign_in(page)
    page.get_by_label("Model").select_option(ECHO)
    # On the new chat page the chip is a checkbox, sent with the first message.
    new_chip = page.get_by_role("group", name="Filters").get_by_role("checkbox", name="Shout")
    expect(new_chip).not_to_be_checked()
    new_chip.check()
    composer = page.get_by_role("textbox", name="Message")
    composer.fill("hello there my friend")
    composer.press("Enter")
    expect(answer(page, ECHO)).to_contain_text("HELLO THERE MY FRIEND")
    # On the chat page it is a button that says whether it is on.
    chip = page.get_by_role("group", name="Filters").get_by_role("button", name="Shout")
    expect(chip).to_have_attribute("aria-pressed", "true")
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "false")
    send(page, "quiet please")
    expect(answer(page, ECHO, nth=1)).to_contain_text("quiet please")
    expect(answer(page, ECHO, nth=1)).not_to_contain_text("QUIET PLEASE")
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    send(page, "loud again")
    expect(answer(page, ECHO, nth=2)).to_contain_text("LOUD AGAIN")
    # What the user wrote is kept as written; only what the model read was changed.
    expect(page.get_by_role("article", name="Your message").nth(2)).to_contain_text("loud again")
    # The chat keeps its switch.
    page.reload()
    expect(chip).to_have_attribute("aria-pressed", "true")


# 4. Actions.


def test_an_action_button_changes_the_answer(page, install):
    install(ECHO, valves=ECHO_VALVES)
    install("replace_action", is_global=True)  # Rewrite: a "replace" event
    sign_in(page)
    start_chat(page, ECHO, "please rewrite this now")
    article = answer(page, ECHO)
    expect_done(article)
    expect(article).to_contain_text("please rewrite this now")
    tools = article.get_by_role("toolbar", name="Answer tools")
    tools.get_by_role("button", name="Rewrite").click()
    expect(article).to_contain_text("Rewritten by the action.")
    expect(article).not_to_contain_text("please rewrite this now")
    expect(article.get_by_role("strong")).to_have_text("Rewritten")
    # Saved onto the message, not only drawn.
    page.reload()
    expect(answer(page, ECHO)).to_contain_text("Rewritten by the action.")


# 5. Reload.


def test_a_reloaded_chat_is_intact(page, install):
    install(SLOW)
    sign_in(page)
    url = start_chat(page, SLOW, "Write FizzBuzz")
    expect_done(answer(page))
    send(page, "And again")
    expect_done(answer(page, nth=1))
    messages = page.get_by_role("article")
    before = messages.all_inner_texts()
    assert len(before) == 4
    page.reload()
    expect(page).to_have_url(url)
    expect(messages).to_have_count(4)
    expect(page.get_by_role("article", name="Your message")).to_have_text(
        [re.compile(r"^\s*Write FizzBuzz\s*$"), re.compile(r"^\s*And again\s*Edit\s*$")]
    )
    for nth in (0, 1):
        expect_markdown(answer(page, nth=nth))
        expect(status_history(answer(page, nth=nth))).to_contain_text("Status history (3)")
    assert messages.all_inner_texts() == before
    # The chat is in the sidebar under its first message, found by its search.
    chats = page.get_by_role("navigation", name="Chats")
    expect(chats.get_by_role("link", name="Write FizzBuzz")).to_be_visible()
    chats.get_by_role("searchbox", name="Search chats").fill("no such words")
    expect(chats).to_contain_text("No chat matches “no such words”.")
    expect(chats.get_by_role("link", name="Write FizzBuzz")).to_have_count(0)
    chats.get_by_role("searchbox", name="Search chats").fill("fizzbuzz")
    expect(chats.get_by_role("link", name="Write FizzBuzz")).to_be_visible()


# 6. A second tab.


def test_a_second_tab_follows_the_answer_live(page, context, install):
    install(SLOW, valves={"DELAY_SECONDS": 0.2})  # some 3 s of streaming
    sign_in(page)
    url = start_chat(page, SLOW, "Write FizzBuzz")
    expect_streaming(page.get_by_role("article", name=ANY_ANSWER))
    other = context.new_page()
    other.goto(url)
    joined = other.get_by_role("article", name=ANY_ANSWER)
    # Mid-run, the second tab draws what is written so far and follows on live.
    expect_streaming(joined)
    expect(joined.get_by_role("status")).to_have_text("Writing the code")
    expect_done(answer(other))
    expect_done(answer(page))
    expect_markdown(answer(other))
    assert answer(other).inner_text() == answer(page).inner_text()
    assert other.get_by_role("article").all_inner_texts() == (
        page.get_by_role("article").all_inner_texts()
    )


# 7. A phone.


def test_on_a_phone_the_chat_list_folds_away_and_nothing_scrolls_sideways(context, install):
    install(SLOW)
    page = context.new_page()
    page.set_viewport_size(PHONE)
    sign_in(page)

    def no_sideways_scrolling() -> None:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide"

    toggle = page.get_by_role("button", name="Chats")
    chats = page.get_by_role("navigation", name="Chats")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(chats).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(chats).to_be_visible()
    expect(chats.get_by_role("searchbox", name="Search chats")).to_be_visible()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(chats).to_be_hidden()
    no_sideways_scrolling()
    page.get_by_label("Model").select_option(SLOW)
    page.get_by_role("textbox", name="Message").fill("Write FizzBuzz")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/c/[^/]+/$"))
    expect_done(answer(page))
    # The chat page's Send button sends over the socket.
    page.get_by_role("textbox", name="Message").fill("Once more")
    page.get_by_role("button", name="Send").click()
    expect_done(answer(page, nth=1))
    expect_markdown(answer(page, nth=1))
    expect(page.get_by_role("button", name="Chats")).to_have_attribute("aria-expanded", "false")
    expect(chats).to_be_hidden()
    # The code block's long line scrolls inside the block, not the page.
    no_sideways_scrolling()
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_in_viewport()
    box = composer.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


# 8. Hostile answers.

# Whatever of this runs sets window.__pwned, or opens a dialog.
HOSTILE_MESSAGE = '<img src=x onerror="window.__pwned=1"><script>alert(1)</script>'

# What the DOM must not hold anywhere in the chat: inline handlers, script URLs; and
# inside what models and plugins wrote (answers, status lines, the user's messages):
# no htmx or socket attributes, no script, SVG, frames or objects.
DOM_CHECK = """
(root) => {
  const found = [];
  const scriptUrl = /^\\s*(javascript|vbscript|data:text\\/html)/i;
  for (const el of root.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\u0000-\\u0020]/g, "");
      if (name.startsWith("on")) found.push(`${el.tagName} ${name}`);
      if (["href", "src", "action", "formaction", "xlink:href", "data"].includes(name)
          && scriptUrl.test(value)) found.push(`${el.tagName} ${name}=${attr.value}`);
      const written = el.closest(".message-body, .status");
      if (written && /^(hx-|data-hx-|ws-|data-ws-)/.test(name)) {
        found.push(`${el.tagName} ${name} in written text`);
      }
    }
  }
  for (const body of root.querySelectorAll(".message-body, .status")) {
    for (const el of body.querySelectorAll("script, svg, iframe, object, embed, form, style")) {
      found.push(`<${el.tagName.toLowerCase()}> in written text`);
    }
  }
  return found;
}
"""


def test_a_hostile_answer_is_shown_as_text_and_runs_nothing(page, install, live):
    install("xss_pipe")
    dialogs: list[str] = []

    def record(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    sign_in(page)
    url = start_chat(page, "xss_pipe", HOSTILE_MESSAGE)
    article = answer(page, "xss_pipe")
    expect_done(article)
    expect(article).to_contain_text("End of attempts.")

    def nothing_ran() -> None:
        chat = page.get_by_role("region", name="Chat")
        assert chat.evaluate(DOM_CHECK) == []
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert dialogs == []
        # Shown as the model wrote it: text, not markup.
        expect(article).to_contain_text("<script>alert(1)</script>")
        expect(article).to_contain_text('<a href="javascript:alert(1)" onclick="alert(1)">x</a>')
        expect(article.get_by_role("status")).to_have_text("<img src=x onerror=window.__pwned=1>")
        expect(article.get_by_role("link")).to_have_count(0)
        expect(page.get_by_role("article", name="Your message")).to_contain_text(HOSTILE_MESSAGE)
        images = article.get_by_role("img")
        for nth in range(images.count()):
            assert not (images.nth(nth).get_attribute("src") or "").startswith("javascript")

    nothing_ran()  # as streamed over the socket
    response = page.reload()
    assert response is not None and response.url == url
    nothing_ran()  # as the server draws the page
    # The page's policy: scripts only with its nonce, never eval.
    policy = response.headers["content-security-policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert re.search(r"'nonce-[A-Za-z0-9+/=_-]{16,}'", script_src), policy
    assert "'unsafe-eval'" not in policy
    assert "'unsafe-inline'" not in script_src
    # No inline script at all: each is a file of this site, any nonce the header's.
    nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
    scripts = page.evaluate("() => [...document.scripts].map(s => [s.src, s.text.trim(), s.nonce])")
    assert scripts
    for src, text, script_nonce in scripts:
        assert src.startswith(f"{live.url}/static/") and not text, src
        assert script_nonce in ("", nonce), src


# 9. The screenshot.


def test_screenshot_of_a_chat(page, install):
    install(SLOW)
    install("ping_action", is_global=True)
    install("replace_action", is_global=True)
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz in Python, with a short explanation")
    article = answer(page)
    expect_done(article)
    expect_markdown(article)
    tools = article.get_by_role("toolbar", name="Answer tools")
    expect(tools.get_by_role("button")).to_have_text(["Ping Action", "Rewrite", "Regenerate"])
    status_history(article).get_by_text("Status history (3)").click()
    expect(status_history(article).get_by_role("listitem")).to_have_text(STATUSES)
    page.get_by_role("textbox", name="Message").blur()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


# A page that opens while an answer is being written (the new chat's first answer, a
# second tab, a reload) follows it from the run's snapshot: named by its model, with
# Stop offered; and one whose answer ended before its socket joined draws it ended.


def test_a_page_that_joins_a_running_answer_names_its_model(page, install):
    install(SLOW)
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz")
    expect_streaming(answer(page).filter(has_text=HEADING))


def test_a_page_that_joins_a_running_answer_offers_stop(page, install):
    install(SLOW)
    sign_in(page)
    start_chat(page, SLOW, "Write FizzBuzz")
    expect_streaming(page.get_by_role("article", name=ANY_ANSWER))
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)


def test_an_answer_that_ends_before_its_page_joins_is_drawn_whole(page, context, install):
    install(SLOW)
    # The page's socket is held back (the page sees it open) until the answer has
    # ended, as when the answer is quicker than the page's load: a fast model, a
    # refusal, a slow network.
    held = []
    page.route_web_socket(re.compile(r"/ws/chat/"), lambda ws: held.append(ws))
    sign_in(page)
    url = start_chat(page, SLOW, "Write FizzBuzz")
    expect(page.get_by_role("article", name=ANY_ANSWER)).to_have_attribute("aria-busy", "true")
    other = context.new_page()  # sees the answer end
    other.goto(url)
    expect_done(answer(other))
    assert len(held) == 1
    held[0].connect_to_server()
    expect_done(answer(page))
    expect_markdown(answer(page))
