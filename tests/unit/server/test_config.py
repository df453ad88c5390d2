"""The store's settings: where it may listen with which secret, and bucket names at start."""

from __future__ import annotations

import pytest

from bulkput.remote.credentials import Credentials
from bulkput.server.config import (
    ServerConfig,
    default_credentials,
    exposure_refusal,
    is_loopback,
)

OWN = (Credentials("ak", "a-secret-of-my-own"),)


@pytest.mark.parametrize(
    ("host", "credentials", "refused"),
    [
        ("127.0.0.1", default_credentials(), False),
        ("::1", default_credentials(), False),
        ("localhost", default_credentials(), False),
        ("0.0.0.0", OWN, False),
        ("0.0.0.0", default_credentials(), True),
        ("::", default_credentials(), True),
        ("store.example", default_credentials(), True),
        ("10.1.2.3", (*OWN, *default_credentials()), True),
    ],
)
def test_exposure_refusal(host: str, credentials: tuple[Credentials, ...], refused: bool) -> None:
    assert (exposure_refusal(host, credentials) is not None) is refused


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "myhost", ""))


def test_config_refuses_what_the_store_cannot_start_with() -> None:
    with pytest.raises(ValueError, match="invalid bucket name 'Bad_Name'"):
        ServerConfig(buckets=("good-one", "Bad_Name"))
    with pytest.raises(ValueError, match="default secret"):
        ServerConfig(host="0.0.0.0")
    assert ServerConfig(host="0.0.0.0", credentials=OWN).host == "0.0.0.0"
