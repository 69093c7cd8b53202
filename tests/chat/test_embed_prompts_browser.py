"""Embeds posting prompts to the chat, as in Open WebUI (`input:prompt`,
`input:prompt:submit`, `action:submit`: static/js/events.js), in a real browser
(Debian's chromium driven by Playwright, against the live daphne server, plugins in
sandboxed workers), with tests/plugins/prompt_buttons_pipe.py, whose card of buttons
posts them when clicked and whose second widget posts one on load, unasked.

A clicked button's prompt is sent as the user's next message, over the socket, and
answered; one that only fills the composer sends nothing; one clicked while an answer
is being written waits in the composer. Posted by the page itself, or by an embed's
script without the user, nothing happens.

Found as a screen reader finds them (role, label, text); waits are Playwright's own.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.chat import test_pages_browser as base
from tests.chat.test_events_browser import open_ready_chat
from tests.chat.test_pages_browser import NEEDS_CHROMIUM, answer, expect_done, send

browser, password_hash, user = base.browser, base.password_hash, base.user
install, context, page = base.install, base.context, base.page

pytestmark = [pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

PIPE = "prompt_buttons_pipe"
CARD = "iframe[title='Embedded content 1']"
AUTO = "iframe[title='Embedded content 2']"

# Posts a message to the page from the page itself, and resolves once the page's own
# listeners (added before this one) have all read it.
POST_FROM_PAGE = """
(data) => new Promise((resolve) => {
  window.addEventListener("message", function read() {
    window.removeEventListener("message", read);
    resolve();
  });
  window.postMessage(data, "*");
})
"""


def composer(page):
    return page.get_by_role("textbox", name="Message")


def your_messages(page):
    return page.get_by_role("article", name="Your message")


def buttons(article):
    return article.frame_locator(CARD)


def expect_auto_prompt_read(article) -> None:
    """The widget that posts a prompt on load has been read: its frame took the
    height it posted after (260px), so the prompt before it was read too."""
    expect(article.locator(AUTO)).to_have_attribute("style", re.compile(r"height: 260px"))


def test_a_clicked_embed_button_sends_its_prompt_and_it_is_answered(page, install):
    install(PIPE)
    open_ready_chat(page, PIPE)
    first = answer(page, PIPE)
    expect(first.locator(CARD)).to_have_attribute("sandbox", "allow-scripts")
    expect_auto_prompt_read(first)
    expect(your_messages(page)).to_have_count(1)  # the widget's own prompt was not sent
    # The card is shorter than a frame starts (12rem): its frame shrinks to it.
    tall = buttons(first).locator("body").evaluate("body => body.scrollHeight")
    assert tall < 150
    expect(first.locator(CARD)).to_have_attribute("style", re.compile(rf"height: {tall}px"))
    buttons(first).get_by_role("button", name="Ask about the tides").click()
    expect(your_messages(page)).to_have_count(2)
    expect(your_messages(page).nth(1)).to_contain_text("Tell me about the tides")
    second = answer(page, PIPE, nth=1)
    expect(second.locator(".markdown")).to_have_text("You asked: Tell me about the tides")
    expect_done(second)
    expect(composer(page)).to_have_value("")
    expect(composer(page)).to_be_focused()
    # Nothing more: the new answer's widget posted on load too, unasked.
    expect_auto_prompt_read(second)
    expect(your_messages(page)).to_have_count(2)
    expect(page.get_by_role("article", name=re.compile("^Answer"))).to_have_count(2)


def test_an_embed_button_that_fills_the_composer_sends_nothing(page, install):
    install(PIPE)
    open_ready_chat(page, PIPE)
    first = answer(page, PIPE)
    buttons(first).get_by_role("button", name="Draft a question").click()
    expect(composer(page)).to_have_value("What makes the tides?")
    expect(composer(page)).to_be_focused()
    # Not sent: sending empties the composer at once, and no message was added.
    expect(your_messages(page)).to_have_count(1)
    # The user edits it; the card's other button sends what the composer holds.
    composer(page).press("End")
    composer(page).type(" Briefly.")
    buttons(first).get_by_role("button", name="Send the draft").click()
    expect(your_messages(page)).to_have_count(2)
    expect(your_messages(page).nth(1)).to_contain_text("What makes the tides? Briefly.")
    expect(answer(page, PIPE, nth=1).locator(".markdown")).to_have_text(
        "You asked: What makes the tides? Briefly."
    )
    expect(composer(page)).to_have_value("")


def test_a_prompt_clicked_while_an_answer_is_written_waits_in_the_composer(page, install):
    install(PIPE)
    open_ready_chat(page, PIPE)
    send(page, "Answer slowly")
    slow = answer(page, PIPE, nth=1)
    expect(slow).to_have_attribute("aria-busy", "true")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    buttons(slow).get_by_role("button", name="Ask about the tides").click()
    expect(composer(page)).to_have_value("Tell me about the tides")
    expect(composer(page)).to_be_focused()
    expect(your_messages(page)).to_have_count(2)
    # "Send the draft" while it is still being written: kept, not sent, either.
    buttons(slow).get_by_role("button", name="Send the draft").click()
    expect(composer(page)).to_be_focused()
    expect(composer(page)).to_have_value("Tell me about the tides")
    expect(slow).to_have_attribute("aria-busy", "true")
    expect(your_messages(page)).to_have_count(2)
    stop.click()
    expect_done(answer(page, PIPE, nth=1))
    # Once it ended, the user sends the kept text.
    composer(page).press("Enter")
    expect(your_messages(page)).to_have_count(3)
    expect(your_messages(page).nth(2)).to_contain_text("Tell me about the tides")


def test_prompts_posted_by_anything_but_a_clicked_embed_do_nothing(page, install):
    install(PIPE)
    open_ready_chat(page, PIPE)
    first = answer(page, PIPE)
    expect_auto_prompt_read(first)  # its frame's prompt, posted on load: dropped
    field = composer(page)
    expect(field).to_have_value("")
    # The page posting to itself, as a script of the page (or an extension) could.
    for data in [
        {"type": "input:prompt", "text": "Forged draft"},
        {"type": "input:prompt:submit", "text": "Forged message"},
    ]:
        page.evaluate(POST_FROM_PAGE, data)
        expect(field).to_have_value("")
    field.fill("My own draft")
    page.evaluate(POST_FROM_PAGE, {"type": "action:submit"})
    expect(field).to_have_value("My own draft")  # a send would have emptied it
    expect(your_messages(page)).to_have_count(1)
