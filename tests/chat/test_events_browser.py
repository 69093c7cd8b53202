"""Plugins' events on the chat page in a real browser (Debian's chromium driven by
Playwright, against the live daphne server, plugins in sandboxed workers): a pipe
emitting every event type, checked on screen as it runs and again after a reload;
notification toasts; an embed in its sandbox; hostile events and icons, inert; and
the screenshots docs/screenshots/sources.png and docs/screenshots/embed.png.

Found as a screen reader finds them (role, label, text); waits are Playwright's own.
What is drawn live is recorded by a MutationObserver in the page while the answer
is still being written (aria-busy), so the test need not race the answer's end.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from chat.models import File
from tests.chat import test_pages_browser as base
from tests.chat.test_pages_browser import (
    DOM_CHECK,
    NEEDS_CHROMIUM,
    answer,
    expect_done,
    off_the_loop,
    send,
    sign_in,
    start_chat,
)
from tests.support.live import ROOT

# The chat pages' browser fixtures: one chromium per module, bob signed in by password,
# plugins installed from tests/plugins.
browser, password_hash, user = base.browser, base.password_hash, base.user
install, context, page = base.install, base.context, base.page

pytestmark = [pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

SOURCES_SHOT = ROOT / "docs" / "screenshots" / "sources.png"
EMBED_SHOT = ROOT / "docs" / "screenshots" / "embed.png"
# A message's screenshot without what floats over it (the composer, the toasts).
UNCOVERED = ".composer-row, .toast-stack { visibility: hidden !important; }"
# tests/plugins/every_event_pipe.py, tests/plugins/notification_pipe.py.
EVERY = "every_event_pipe"
NOTIFIER = "notification_pipe"
ANSWER_TEXT = "The Moon is far away [1]. The tides follow it [2]. Its orbit takes a month [3]."
TITLE = "The Moon and the tides"

# Records what the page showed while an answer was being written.
WATCH_LIVE = """
(title) => {
  const seen = (window.__live = {});
  const look = () => {
    const busy = document.querySelector('article.assistant[aria-busy="true"]');
    if (!busy) return;
    const found = {
      status: busy.querySelector(".status-line"),
      sources: busy.querySelector(".sources li"),
      citation: busy.querySelector("a.citation-ref"),
      files: busy.querySelector(".files a"),
      embed: busy.querySelector("iframe[data-embed]"),
      error: busy.querySelector(".message-error"),
      toast: document.querySelector("#toasts [data-toast]"),
      title: (document.getElementById("chat-title") || {}).textContent === title,
      tags: document.querySelector("#sidebar .tag"),
    };
    for (const [name, there] of Object.entries(found)) if (there) seen[name] = true;
  };
  new MutationObserver(look).observe(document.body, {
    subtree: true, childList: true, attributes: true, characterData: true,
  });
}
"""
LIVE_PARTS = ["status", "sources", "citation", "files", "embed", "error", "toast", "title", "tags"]


def stored_file(owner, file_id: str, name: str, text: str) -> File:
    """A file of `owner`'s in the live server's upload folder (the test data dir's)."""
    folder = Path(settings.DATA_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{file_id}_{name}").write_text(text)
    return File.objects.create(
        id=file_id, user=owner, filename=name, path=f"{file_id}_{name}", meta={"name": name}
    )


def open_ready_chat(page, model: str) -> None:
    """A chat with `model` whose first answer ended, its socket open and the page drawn
    from it: later messages go over the socket, so their events are drawn one by one
    as they come (not from a snapshot), and nothing redraws what the test clicks."""
    page.add_init_script(
        "window.__socketMessages = 0;"
        "document.addEventListener('htmx:wsAfterMessage', () => window.__socketMessages++);"
    )
    sign_in(page)
    start_chat(page, model, "hello")
    expect_done(answer(page, model))
    page.wait_for_function("() => window.__socketMessages > 0")


# 1. Every event type, live and after a reload.


def expect_every_event(page, article) -> None:
    """What every_event_pipe's events show, on the answer and around it."""
    expect(article.locator(".markdown")).to_have_text(ANSWER_TEXT)
    expect(article.locator("a.citation-ref")).to_have_text(["[1]", "[2]", "[3]"])
    sources = article.get_by_role("region", name="Sources")
    expect(sources.get_by_role("listitem")).to_have_count(3)
    moon = sources.get_by_role("link", name="Moon facts")
    expect(moon).to_have_attribute("href", "https://example.org/moon")
    expect(sources.get_by_role("listitem").nth(1)).to_contain_text("Tides handbook")
    expect(sources.get_by_role("link", name="Orbit notes")).to_be_visible()
    first = article.locator("a.citation-ref").first
    anchor = sources.get_by_role("listitem").first
    assert first.get_attribute("href") == f"#{anchor.get_attribute('id')}"
    files = article.get_by_role("region", name="Files")
    expect(files.get_by_role("link", name="moon-report.txt")).to_have_attribute(
        "href", "/chat/files/m1/"
    )
    guide = files.get_by_role("link", name="Moon guide")
    expect(guide).to_have_attribute("href", "https://example.org/moon-guide.pdf")
    frame = article.locator("iframe[title='Embedded content 1']")
    expect(frame).to_have_attribute("sandbox", "allow-scripts")
    chart = article.frame_locator("iframe[title='Embedded content 1']")
    expect(chart.get_by_role("heading", name="Moon distance chart")).to_be_visible()
    expect(chart.get_by_text("Drawn by its script")).to_be_visible()
    # Sized to its content, even when that is shorter than the frame's first height.
    tall = chart.locator("body").evaluate("body => body.scrollHeight")
    frame.evaluate(
        "(frame, tall) => new Promise(done => { const check = () =>"
        " Math.abs(frame.getBoundingClientRect().height - tall) <= 2"
        " ? done() : requestAnimationFrame(check); check(); })",
        tall,
    )
    expect(article.get_by_role("alert")).to_have_text("One source could not be reached.")
    expect(article.get_by_role("status")).to_have_text("Answer written")
    expect(article).to_contain_text("33 tokens (11 in, 22 out)")
    expect(page.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    expect(page).to_have_title(f"{TITLE} · fnplatform")
    chats = page.get_by_role("navigation", name="Chats")
    expect(chats.get_by_role("link", name=TITLE)).to_be_visible()
    tags = chats.get_by_role("list", name=f"Tags of {TITLE}").get_by_role("listitem")
    expect(tags).to_have_text(["space", "tides"])


def test_every_event_type_is_drawn_live_and_again_after_a_reload(page, install, user):
    off_the_loop(stored_file, user, "m1", "moon-report.txt", "The Moon, in one report.")
    install(EVERY, valves={"FILE_ID": "m1"})
    open_ready_chat(page, EVERY)
    page.evaluate(WATCH_LIVE, TITLE)
    send(page, "Show me the events")
    article = answer(page, EVERY, nth=1)
    expect_done(article)
    seen = page.evaluate("() => window.__live")
    assert sorted(seen) == sorted(LIVE_PARTS), f"not drawn while writing: {seen}"
    expect_every_event(page, article)
    # The stored file downloads, under its name.
    with page.expect_download() as download:
        article.get_by_role("link", name="moon-report.txt").click()
    assert download.value.suggested_filename == "moon-report.txt"
    # A reference leads to its source, whose cited text unfolds.
    article.locator("a.citation-ref").first.click()
    expect(page).to_have_url(re.compile(r"#source-"))
    sources = article.get_by_role("region", name="Sources")
    snippet = sources.get_by_text("The Moon is 384,400 km from the Earth, on average.")
    expect(snippet).to_be_hidden()
    sources.get_by_text("Cited text").first.click()
    expect(snippet).to_be_visible()
    SOURCES_SHOT.parent.mkdir(parents=True, exist_ok=True)
    article.screenshot(path=SOURCES_SHOT, style=UNCOVERED)
    assert SOURCES_SHOT.stat().st_size > 10_000
    # Saved with the message: the same after a reload (the toast was never stored).
    page.reload()
    expect_every_event(page, answer(page, EVERY, nth=1))
    expect(page.locator("[data-toast]")).to_have_count(0)


# 2. Notifications.


def test_notifications_are_announced_toasts_that_can_be_dismissed_and_hide(page, install):
    install(NOTIFIER)
    page.clock.install()  # the toasts' timers, run on when the test says
    open_ready_chat(page, NOTIFIER)
    send(page, "please notify me")
    expect_done(answer(page, NOTIFIER, nth=1))
    polite = page.get_by_role("status").filter(has=page.locator("[data-toast]"))
    expect(polite).to_have_attribute("aria-live", "polite")
    toasts = polite.locator("[data-toast]")
    expect(toasts).to_have_count(3)
    for level in ("info", "success", "warning"):
        expect(polite.get_by_text(f"A {level} notification")).to_be_visible()
    alert = page.get_by_role("alert").filter(has_text="A error notification")
    expect(alert).to_have_attribute("aria-live", "assertive")
    expect(alert.locator("[data-toast]")).to_have_class(re.compile(r"\berror\b"))
    # Dismissed at once by its button...
    warning = toasts.filter(has_text="A warning notification")
    warning.get_by_role("button", name="Dismiss notification").click()
    expect(warning).to_have_count(0)
    expect(toasts).to_have_count(2)
    page.mouse.move(1, 1)  # a toast under the pointer waits for it to leave
    # ...the others hide themselves in a while, errors last.
    page.clock.fast_forward(7_000)
    expect(toasts).to_have_count(0)
    expect(alert.locator("[data-toast]")).to_have_count(1)
    page.clock.fast_forward(10_000)
    expect(page.locator("[data-toast]")).to_have_count(0)


# 3. An embed in its sandbox.


def test_an_embed_runs_in_its_sandbox_and_reaches_nothing_of_the_page(page, install, live):
    install(EVERY)
    install("embed_probe_action", is_global=True)
    open_ready_chat(page, EVERY)
    article = answer(page, EVERY)
    article.get_by_role("toolbar", name="Answer tools").get_by_role(
        "button", name="Sandbox probe"
    ).click()

    def probe_reached_nothing(article) -> None:
        frame = article.locator("iframe[title='Embedded content 1']")
        # The action's first call starts its sandboxed worker: allow for a slow machine.
        expect(frame).to_be_attached(timeout=30_000)
        expect(frame).to_have_attribute("sandbox", "allow-scripts")
        assert "allow-same-origin" not in (frame.get_attribute("sandbox") or "")
        expect(frame).to_have_attribute("src", re.compile(r"^/sandbox/embed/[^/]+/$"))
        results = article.frame_locator("iframe[title='Embedded content 1']").get_by_role(
            "listitem"
        )
        expect(results).to_have_text(
            [
                "parent.document: blocked (SecurityError)",
                "document.cookie: blocked (SecurityError)",
                "localStorage: blocked (SecurityError)",
                "parent.__pwned: blocked (SecurityError)",
                re.compile(r"^api: blocked \(TypeError\)$"),
            ]
        )
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        # Sized to its content (the card is 420px tall), not to a fixed box.
        page.wait_for_function(
            "() => document.querySelector('iframe[data-embed]').getBoundingClientRect()"
            ".height >= 420"
        )
        # Never inline in the page.
        expect(page.get_by_role("heading", name="Sandbox probe")).to_have_count(0)
        return frame.get_attribute("src")

    src = probe_reached_nothing(article)
    EMBED_SHOT.parent.mkdir(parents=True, exist_ok=True)
    answer(page, EVERY).screenshot(path=EMBED_SHOT, style=UNCOVERED)
    assert EMBED_SHOT.stat().st_size > 10_000
    # Its route answers without the session, with a policy of its own.
    response = page.request.get(f"{live.url}{src}")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox allow-scripts;") and "frame-ancestors 'self'" in policy
    assert response.headers["cache-control"] == "private, no-store"
    assert "set-cookie" not in response.headers
    page.reload()
    probe_reached_nothing(answer(page, EVERY))


# 4. Hostile events and icons.

IMG = "<img src=x onerror=window.__pwned=1>"
SVG = "<svg onload=alert(1)><script>alert(1)</script></svg>"
SCRIPT = "<script>window.__pwned=1</script>"


def test_hostile_events_and_icons_are_inert_live_and_after_a_reload(page, install):
    install("xss_events_pipe")
    install("xss_icon_action", is_global=True)
    install("xss_icon_filter", is_global=True)
    dialogs: list[str] = []

    def record(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    open_ready_chat(page, "xss_events_pipe")
    send(page, "attack")
    article = answer(page, "xss_events_pipe", nth=1)
    expect_done(article)

    def nothing_ran(article) -> None:
        assert page.locator("body").evaluate(DOM_CHECK) == []
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert dialogs == []
        # Shown as text, where each was put.
        expect(article.get_by_role("status")).to_have_text(IMG + SCRIPT)
        expect(article).to_contain_text(f"See [1] and [2]. {IMG} End of attempts.")
        sources = article.get_by_role("region", name="Sources").get_by_role("listitem")
        expect(sources).to_have_count(2)
        expect(sources.first).to_contain_text(SVG)
        expect(sources.nth(1)).to_contain_text(SCRIPT)
        expect(article.get_by_role("region", name="Sources").get_by_role("link")).to_have_count(0)
        files = article.get_by_role("region", name="Files")
        expect(files.get_by_role("listitem")).to_have_text(
            [re.compile(re.escape(name)) for name in (SVG, IMG, SCRIPT)]
        )
        expect(files.get_by_role("img")).to_have_count(0)
        expect(article.get_by_role("alert")).to_have_text(IMG + SVG)
        expect(page.get_by_role("heading", level=1)).to_have_text(IMG + SCRIPT)
        chats = page.get_by_role("navigation", name="Chats")
        expect(chats.get_by_role("link", name=IMG + SCRIPT)).to_be_visible()
        tags = chats.get_by_role("list", name=re.compile("^Tags of")).get_by_role("listitem")
        expect(tags).to_have_text([SCRIPT, SVG, IMG])
        # The embed's script ran in its frame and reached nothing of the page.
        frame = article.frame_locator("iframe[title='Embedded content 1']")
        expect(frame.get_by_text("An embed that tried its parent.")).to_be_visible()
        expect(page.locator("#thread")).to_be_visible()
        # The icons: an SVG one is only a picture; a javascript: one is not used at all.
        tools = article.get_by_role("toolbar", name="Answer tools")
        icon = tools.get_by_role("button", name="Hostile Icon").locator("img")
        expect(icon).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
        chip = page.get_by_role("group", name="Filters").get_by_role("button", name="Hostile Chip")
        expect(chip.locator("img")).to_have_count(0)

    nothing_ran(article)  # as drawn live, over the socket
    expect(page.get_by_role("alert").filter(has_text=SCRIPT)).to_have_count(1)  # a toast
    expect(page.get_by_role("status").filter(has_text=IMG + SVG)).to_have_count(1)
    page.reload()
    nothing_ran(answer(page, "xss_events_pipe", nth=1))  # as the server draws the page
