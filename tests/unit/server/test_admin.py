"""Who may clear the store's counters: one case per row of reset_refusal's table."""

from __future__ import annotations

import pytest

from bulkput.server.admin import reset_refusal

OWN = {"scheme": "http", "host": "127.0.0.1:9000"}


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, True),
        ({"Origin": "http://127.0.0.1:9000"}, True),
        ({"X-Bulkput-Admin": "1"}, False),
        ({"X-Bulkput-Admin": "1", "Origin": "http://127.0.0.1:9000"}, False),
        ({"X-Bulkput-Admin": "1", "Origin": "http://evil.example"}, True),
        ({"X-Bulkput-Admin": "1", "Origin": "null"}, True),
        ({"X-Bulkput-Admin": "1", "Origin": "https://127.0.0.1:9000"}, True),
    ],
)
def test_reset_refusal(headers: dict[str, str], refused: bool) -> None:
    assert (reset_refusal(headers, **OWN) is not None) is refused
