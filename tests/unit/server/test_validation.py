"""The pure request checks of the store: keys, Content-MD5, ranges, metadata."""

from __future__ import annotations

import pytest

from bulkput.server.services import SERVICES, ServeError
from bulkput.server.validation import check_key, parse_content_md5, parse_metadata, parse_range


def test_request_checks() -> None:
    with pytest.raises(ServeError, match="too long"):
        check_key("k" * 1024)
    check_key("é" * 511)
    with pytest.raises(ServeError) as bad_md5:
        parse_content_md5("bm90IDE2IGJ5dGVz")  # valid base64, wrong length
    assert bad_md5.value.name == "InvalidDigest"
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=95-", 100) == (95, 100)
    assert parse_range("bytes=5-200", 100) == (5, 100)
    assert parse_range("items=1-2", 100) is None
    with pytest.raises(ServeError):
        parse_range("bytes=100-", 100)
    oss = SERVICES["oss"]
    assert parse_metadata(oss, {"x-oss-meta-A-b": "v 1", "content-type": "x"}) == {"a-b": "v 1"}
    with pytest.raises(ServeError):
        parse_metadata(oss, {"x-oss-meta-x": "caf\u00e9"})
