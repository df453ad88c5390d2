"""Where an error answer says the bucket lives, per dialect (Dialect.bucket_location), and
the store moving once on such an answer (HttpObjectStore with a scripted transport)."""

from __future__ import annotations

import pytest

from bulkput.errors import RemoteError
from bulkput.remote.dialects import dialect_for
from bulkput.remote.dialects.base import BucketLocation
from bulkput.remote.transport import response
from tests.unit.test_client import Scripted, store_for

_REDIRECT = (
    b"<Error><Code>PermanentRedirect</Code><Message>must be addressed using the specified "
    b"endpoint</Message><Bucket>bkt</Bucket><Endpoint>bkt.s3-ap-southeast-2.amazonaws.com"
    b"</Endpoint></Error>"
)
_MALFORMED = (
    b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is "
    b"wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>"
)
_OSS_403 = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>The "
    b"bucket you are attempting to access must be addressed using the specified endpoint."
    b"</Message><Endpoint>oss-cn-beijing.aliyuncs.com</Endpoint></Error>"
)


@pytest.mark.parametrize(
    ("scheme", "status", "headers", "body", "expected"),
    [
        ("s3", 301, {"x-amz-bucket-region": "eu-west-1"}, b"", BucketLocation("eu-west-1")),
        ("s3", 301, {}, _REDIRECT, BucketLocation("ap-southeast-2", "bkt.s3-ap-southeast-2.amazonaws.com")),
        ("s3", 400, {}, _MALFORMED, BucketLocation("eu-west-1")),
        ("s3", 403, {"x-amz-bucket-region": "us-west-2"}, b"", BucketLocation("us-west-2")),
        ("oss", 403, {}, _OSS_403, BucketLocation("cn-beijing", "oss-cn-beijing.aliyuncs.com")),
        ("bos", 307, {"location": "https://bkt.gz.bcebos.com/key"}, b"", BucketLocation("gz", "bkt.gz.bcebos.com")),
        ("s3", 400, {}, b"<Error><Code>InvalidArgument</Code></Error>", None),
        ("s3", 403, {}, b"<Error><Code>AccessDenied</Code></Error>", None),
        ("oss", 403, {}, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", None),
        ("bos", 403, {}, b'{"code": "AccessDenied"}', None),
        ("s3", 500, {}, b"<html>proxy error</html>", None),
    ],
)
def test_bucket_location(
    scheme: str, status: int, headers: dict[str, str], body: bytes, expected: BucketLocation | None
) -> None:
    assert dialect_for(scheme).bucket_location(status, headers, body) == expected


async def test_a_region_answer_moves_the_store_once_and_resends() -> None:
    transport = Scripted(
        response(301, {"x-amz-bucket-region": "eu-west-1"}, _REDIRECT),
        response(200, {"ETag": '"900150983cd24fb0d6963f7d28e17f72"'}),
    )
    store = store_for("s3", transport)
    result = await store.put_object("k", b"abc", content_md5=None, headers=_headers())
    assert result.etag == "900150983cd24fb0d6963f7d28e17f72"
    first, second = transport.sent
    assert "/us-east-1/s3/" in first[2]["authorization"]
    assert "/eu-west-1/s3/" in second[2]["authorization"]
    assert second[3] == b"abc" and second[2]["content-length"] == "3"
    assert store.endpoint.region == "eu-west-1"


async def test_a_second_region_answer_is_an_error_naming_the_region() -> None:
    transport = Scripted(
        response(301, {"x-amz-bucket-region": "eu-west-1"}, b""),
        response(301, {"x-amz-bucket-region": "us-west-2"}, b""),
    )
    store = store_for("s3", transport)
    with pytest.raises(RemoteError) as info:
        await store.put_object("k", b"abc", content_md5=None, headers=_headers())
    assert len(transport.sent) == 2  # moved once, never again
    assert "give --region us-west-2" in info.value.one_line()


async def test_an_endpoint_the_store_cannot_map_is_named_in_the_error() -> None:
    body = (
        b"<Error><Code>PermanentRedirect</Code><Message>use the specified endpoint</Message>"
        b"<Endpoint>files.example.net</Endpoint></Error>"
    )
    transport = Scripted(response(301, {}, body))
    store = store_for("s3", transport)
    with pytest.raises(RemoteError) as info:
        await store.put_object("k", b"abc", content_md5=None, headers=_headers())
    assert len(transport.sent) == 1
    assert "give --endpoint http://files.example.net" in info.value.one_line()


def _headers():  # type: ignore[no-untyped-def]
    from bulkput.remote.store import ObjectHeaders

    return ObjectHeaders()
