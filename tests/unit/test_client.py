"""HttpObjectStore with a scripted transport: signing at send time, the clock offset learned
from a skew answer, one request per call, and malformed or erroneous answers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from bulkput.errors import NotFoundError, ServiceError, ThrottledError
from bulkput.remote.client import HttpObjectStore, open_store
from bulkput.remote.credentials import Credentials
from bulkput.remote.store import Body, ObjectHeaders, PartInfo
from bulkput.remote.target import Target, resolve_endpoint
from bulkput.remote.transport import PAGE_ANSWER_LIMIT, SMALL_ANSWER_LIMIT, Response, response

FIXED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


class Scripted:
    """Answers in order; records what was sent."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], Body | None]] = []
        self.limits: list[int] = []

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body | None = None,
        *,
        answer_limit: int = SMALL_ANSWER_LIMIT,
        answer_size: int = 0,
    ) -> Response:
        self.sent.append((method, url, dict(headers), body))
        self.limits.append(answer_limit)
        return self.answers.pop(0)

    async def close(self) -> None:
        pass


def store_for(
    scheme: str, transport: Scripted, clock=lambda: FIXED, version: str = "v4"
) -> HttpObjectStore:
    target = Target.parse(f"{scheme}://bkt")
    return open_store(
        target,
        endpoint=resolve_endpoint(target, "http://127.0.0.1:9000"),
        credentials=Credentials("AKID", "SECRET-KEY-NEVER-SHOWN", "TOKEN-1"),
        transport=transport,  # type: ignore[arg-type]
        signature_version=version,
        clock=clock,
    )


@pytest.mark.parametrize(
    ("scheme", "version", "date_header", "token_header"),
    [
        ("s3", "v4", "x-amz-date", "x-amz-security-token"),
        ("oss", "v4", "x-oss-date", "x-oss-security-token"),
        ("oss", "v1", "date", "x-oss-security-token"),
        ("bos", "v4", "x-bce-date", "x-bce-security-token"),
    ],
)
async def test_put_is_one_signed_request(
    scheme: str, version: str, date_header: str, token_header: str
) -> None:
    transport = Scripted(response(200, {"ETag": '"900150983CD24FB0D6963F7D28E17F72"'}))
    store = store_for(scheme, transport, version=version)
    result = await store.put_object(
        "a b/c",
        b"abc",
        content_md5="kAFQmDzST7DWlj99KOF/cg==",
        headers=ObjectHeaders(content_type="text/plain"),
    )
    assert result.etag == "900150983cd24fb0d6963f7d28e17f72"
    [(method, url, headers, body)] = transport.sent
    assert (method, url, body) == ("PUT", "http://127.0.0.1:9000/bkt/a%20b/c", b"abc")
    assert headers["content-length"] == "3" and headers["content-md5"] == "kAFQmDzST7DWlj99KOF/cg=="
    assert headers["host"] == "127.0.0.1:9000"
    assert headers["authorization"]
    assert headers[token_header] == "TOKEN-1"
    assert "2024" in headers[date_header] or "Jan" in headers[date_header]
    assert all("SECRET-KEY-NEVER-SHOWN" not in value for value in headers.values())


async def test_skew_answer_teaches_the_clock_offset_and_the_retry_signs_with_it() -> None:
    server_time = FIXED + timedelta(minutes=37)
    skew = response(
        403,
        {"Date": format_datetime(server_time, usegmt=True)},
        b"<Error><Code>RequestTimeTooSkewed</Code><Message>skewed</Message></Error>",
    )
    transport = Scripted(skew, response(200, {"ETag": '"x"'}))
    store = store_for("s3", transport)
    with pytest.raises(ServiceError) as info:
        await store.put_object("k", b"", content_md5=None, headers=ObjectHeaders())
    assert info.value.retryable
    assert store.clock_offset == timedelta(minutes=37)
    await store.put_object("k", b"", content_md5=None, headers=ObjectHeaders())
    assert transport.sent[0][2]["x-amz-date"] == "20240102T030405Z"
    assert transport.sent[1][2]["x-amz-date"] == "20240102T034105Z"  # signed again, server time


async def test_bos_request_expired_also_teaches_the_offset() -> None:
    answer = response(
        403,
        {"Date": format_datetime(FIXED - timedelta(hours=1), usegmt=True)},
        b'{"code":"RequestExpired","message":"expired","requestId":"r"}',
    )
    store = store_for("bos", Scripted(answer))
    with pytest.raises(ServiceError):
        await store.head_object("k")
    assert store.clock_offset == timedelta(hours=-1)


async def test_head_missing_key_is_none_but_missing_bucket_raises() -> None:
    missing_key = response(404)
    import base64

    no_bucket = response(
        404,
        {
            "x-oss-err": base64.b64encode(
                b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>"
            ).decode()
        },
    )
    store = store_for("oss", Scripted(missing_key, no_bucket))
    assert await store.head_object("k") is None
    with pytest.raises(NotFoundError) as info:
        await store.head_object("k")
    assert info.value.fatal_for_job


async def test_listing_is_lazy_one_request_per_page() -> None:
    page1 = b'{"isTruncated":true,"nextMarker":"b","contents":[{"key":"a","size":1},{"key":"b","size":2}]}'
    page2 = b'{"isTruncated":false,"contents":[{"key":"c","size":3}]}'
    transport = Scripted(response(200, {}, page1), response(200, {}, page2))
    store = store_for("bos", transport)
    listing = store.list_objects("", page_size=2)
    assert transport.sent == []  # nothing until iterated
    first = await listing.__anext__()
    assert first.key == "a" and len(transport.sent) == 1
    rest = [info.key async for info in listing]
    assert rest == ["b", "c"] and len(transport.sent) == 2
    assert transport.sent[1][1].endswith("?maxKeys=2&prefix=&marker=b")


async def test_repeated_marker_stops_the_listing() -> None:
    page = b'{"isTruncated":true,"nextMarker":"a","contents":[{"key":"a","size":1}]}'
    store = store_for("bos", Scripted(*(response(200, {}, page) for _ in range(3))))
    with pytest.raises(ServiceError, match="same next-page marker"):
        _ = [info async for info in store.list_objects("")]


async def test_malformed_listing_is_a_retryable_service_error() -> None:
    store = store_for(
        "s3", Scripted(response(200, {"x-amz-request-id": "R"}, b"<ListBucketResult><oops"))
    )
    with pytest.raises(ServiceError) as info:
        _ = [info async for info in store.list_objects("")]
    assert info.value.retryable and info.value.request_id == "R"


async def test_complete_200_with_error_body_raises_through_the_store() -> None:
    body = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
    store = store_for("s3", Scripted(response(200, {}, body)))
    with pytest.raises(ServiceError) as info:
        await store.complete_multipart_upload("k", "u", [PartInfo(1, "e")])
    assert info.value.retryable and info.value.key == "k"


async def test_delete_objects_limits() -> None:
    store = store_for("s3", Scripted())
    assert await store.delete_objects([]) == []
    with pytest.raises(ValueError):
        await store.delete_objects([str(i) for i in range(1001)])


async def test_validation_happens_before_any_request() -> None:
    transport = Scripted()
    store = store_for("oss", transport)
    from bulkput.errors import ValidationError

    with pytest.raises(ValidationError):
        await store.put_object(
            "k", b"", content_md5=None, headers=ObjectHeaders(storage_class="Glacier")
        )
    with pytest.raises(ValidationError):
        await store.create_multipart_upload("k" * 1024, ObjectHeaders())
    assert transport.sent == []


async def test_repr_hides_the_secret() -> None:
    store = store_for("s3", Scripted())
    assert "SECRET-KEY-NEVER-SHOWN" not in repr(store)
    assert "TOKEN-1" not in repr(store)


async def test_listing_pages_are_read_up_to_the_page_limit_and_a_cut_page_is_refused() -> None:
    page = b"<ListBucketResult><IsTruncated>false</IsTruncated>" + b" " * 100
    transport = Scripted(response(200, {"x-amz-request-id": "R"}, page, truncated=True))
    store = store_for("s3", transport)
    with pytest.raises(ServiceError) as info:
        _ = [item async for item in store.list_objects("")]
    assert info.value.code == "AnswerTooLarge" and not info.value.retryable
    assert transport.limits == [PAGE_ANSWER_LIMIT]


async def test_a_cut_error_body_still_gives_the_service_error() -> None:
    body = b"<Error><Code>SlowDown</Code><Message>reduce your rate</Message></Error>"
    transport = Scripted(response(503, {}, body + b" " * 10, truncated=True))
    store = store_for("s3", transport)
    with pytest.raises(ThrottledError) as info:
        await store.put_object("k", b"x", content_md5=None, headers=ObjectHeaders())
    assert info.value.code == "SlowDown"
    assert transport.limits == [SMALL_ANSWER_LIMIT]
