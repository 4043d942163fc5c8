"""Which pages may open the WebSocket (``server.web.guard``)."""

from __future__ import annotations

import pytest

from server.web.guard import origin_allowed, origin_refusal


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, (), True),  # no Origin: not a browser page
        ("http://localhost:8080", (), True),  # the page's own origin
        ("HTTP://LocalHost:8080/", (), True),  # as browsers may spell it
        ("http://localhost:9090", (), False),  # another port is another origin
        ("https://localhost:8080", (), False),  # another scheme too
        ("https://evil.example", (), False),
        ("https://kiosk.example", ("https://Kiosk.example/",), True),
        ("https://evil.example", ("https://kiosk.example",), False),
        ("https://evil.example", ("*",), True),
    ],
)
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...], expected: bool) -> None:
    assert origin_allowed(origin, "localhost:8080", "http", allowed) is expected


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("127.0.0.1:8080", (), True),
        ("[::1]:8080", (), True),
        ("10.1.2.3", (), True),
        ("genre.example:8080", (), False),  # what a DNS-rebinding page presents too
        ("genre.example:8080", ("http://genre.example:8080",), True),
    ],
)
def test_the_pages_own_origin_counts_only_under_an_address_or_localhost(
    host: str, allowed: tuple[str, ...], expected: bool
) -> None:
    assert origin_allowed(f"http://{host}", host, "http", allowed) is expected


def test_a_refusal_names_the_origin_and_the_setting() -> None:
    message = origin_refusal("https://evil.example", ("https://kiosk.example",))
    assert "'https://evil.example'" in message
    assert "GENRE_HTTP_ORIGINS: https://kiosk.example;" in message
