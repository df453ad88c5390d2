"""Whether the keys of an answer are URL-decoded: one test per row of
:func:`bulkput.remote.dialects.s3.keys_are_url_encoded`, then the answers that led to it."""

from __future__ import annotations

import pytest

from bulkput.remote.dialects import dialect_for
from bulkput.remote.dialects.s3 import keys_are_url_encoded


@pytest.mark.parametrize("encoding_type", [None, "", "  ", "base64"])
def test_row_1_no_url_encoding_answered_keys_stay_as_sent(encoding_type: str | None) -> None:
    assert not keys_are_url_encoded(encoding_type, ["a%20b", "a+b"])


@pytest.mark.parametrize(
    "keys", [["a%20b", "c+d%2B", "%C3%BC/x.bin"], ["a/b/c.txt"], [], ["semi;colon,:@!$'()*"]]
)
def test_row_2_url_answered_and_keys_look_encoded_are_decoded(keys: list[str]) -> None:
    assert keys_are_url_encoded("url", keys)
    assert keys_are_url_encoded(" URL ", keys)


@pytest.mark.parametrize(
    "keys",
    [
        ["a%20b", "a b+c.bin"],  # a space
        ["ünï.txt"],  # beyond ASCII
        ["tab\there"],  # a control character
        ["100%"],  # a "%" that starts no escape
        ["50%/x", "ok"],
        ["a%2", "0b"],  # a "%" at a key's end is not completed by the next key
    ],
)
def test_row_3_url_answered_but_keys_sent_as_they_are_stay_as_sent(keys: list[str]) -> None:
    assert not keys_are_url_encoded("url", keys)


# SeaweedFS 4.48's answer to ListMultipartUploads?encoding-type=url, as it came
SEAWEED_UPLOADS = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>raw-1</Bucket><Delimiter></Delimiter><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><KeyMarker></KeyMarker><MaxUploads>10000</MaxUploads><Prefix></Prefix><Upload><Initiated>2026-12-04T03:20:18Z</Initiated><Key>x/a b+c.bin</Key><UploadId>aa26_5cc7</UploadId></Upload></ListMultipartUploadsResult>"""


@pytest.mark.parametrize("scheme", ["s3", "oss"])
def test_upload_listing_that_claims_url_encoding_but_is_not_keeps_the_key(scheme: str) -> None:
    page = dialect_for(scheme).parse_list_uploads(SEAWEED_UPLOADS)
    assert [(u.key, u.upload_id) for u in page.items] == [("x/a b+c.bin", "aa26_5cc7")]


def test_upload_listing_that_is_url_encoded_is_decoded() -> None:
    body = SEAWEED_UPLOADS.replace(b"x/a b+c.bin", b"x/a+b%2Bc.bin")
    assert [u.key for u in dialect_for("s3").parse_list_uploads(body).items] == ["x/a b+c.bin"]
