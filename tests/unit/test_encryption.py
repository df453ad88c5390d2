"""SSE-C keys (bulkput.remote.encryption) and which answers say an ETag is not the MD5."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bulkput.errors import UsageError
from bulkput.remote.dialects import dialect_for
from bulkput.remote.encryption import CustomerKey

KEY = bytes(range(100, 132))


def test_key_file_raw_or_base64(tmp_path: Path) -> None:
    (tmp_path / "raw").write_bytes(KEY)
    (tmp_path / "b64").write_text(base64.b64encode(KEY).decode() + "\n")
    assert CustomerKey.from_file(tmp_path / "raw") == CustomerKey.from_file(tmp_path / "b64")


def test_key_never_in_repr() -> None:
    key = CustomerKey(KEY)
    shown = repr(key) + str(key)
    assert base64.b64encode(KEY).decode() not in shown and KEY.hex() not in shown
    assert key.key_md5 in shown


def test_bad_key_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"x" * 31)
    with pytest.raises(UsageError, match="expected a 32-byte key"):
        CustomerKey.from_file(tmp_path / "short")
    with pytest.raises(UsageError, match="--sse-c-key-file"):
        CustomerKey.from_file(tmp_path / "missing")


@pytest.mark.parametrize(
    ("scheme", "headers", "expected"),
    [
        ("s3", {"x-amz-server-side-encryption": "aws:kms"}, False),
        ("s3", {"x-amz-server-side-encryption": "aws:kms:dsse"}, False),
        ("s3", {"x-amz-server-side-encryption-customer-algorithm": "AES256"}, False),
        ("s3", {"x-amz-server-side-encryption": "AES256"}, True),
        ("s3", {}, True),
        ("oss", {"x-oss-server-side-encryption": "KMS"}, False),
        ("oss", {"x-oss-server-side-encryption": "AES256"}, True),
        ("bos", {"x-bce-server-side-encryption": "AES256"}, True),
    ],
)
def test_etag_is_md5(scheme: str, headers: dict[str, str], expected: bool) -> None:
    assert dialect_for(scheme).put_result(headers).etag_is_md5 is expected
    assert dialect_for(scheme).object_info("k", headers).etag_is_md5 is expected
