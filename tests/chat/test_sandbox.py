"""chat.sandbox's embed URLs (its route is tested with the events' rendering, in
tests/chat/test_event_rendering.py)."""

import pytest

from chat.sandbox import embed_url


@pytest.mark.parametrize(
    ("embed", "framed"),
    [
        ("https://example.org/chart", "https://example.org/chart"),
        ("  https://example.org/a?b=1  ", "https://example.org/a?b=1"),
        # The page frames https only: plain http would be a blank frame.
        ("http://example.org/chart", None),
        ("javascript:alert(1)", None),
        ("https://", None),
        ("https://example.org/<script>", None),
        ("<p>https://example.org/</p>", None),
        (42, None),
    ],
)
def test_only_an_https_url_with_a_host_is_framed_as_it_is(embed, framed):
    assert embed_url(embed) == framed
