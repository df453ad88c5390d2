"""One suite every dialect passes (as arrow-rs object_store's): the ``HttpObjectStore`` against
``bulkput serve`` in each dialect (BOS, OSS V1, OSS V4, S3) and against three S3 servers of
others: ``rclone serve s3``, SeaweedFS (``weed server -s3``) and moto's server.

What a user would check: the bytes read back equal the bytes sent, keys come back exactly
(spaces, unicode, reserved characters), listings are complete, ordered and paginated,
metadata and content headers survive, multipart assembles parts in number order whatever
order they were sent in, and failures arrive as the right error class.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bulkput.config import TransferConfig
from bulkput.errors import AuthError, NotFoundError, RemoteError
from bulkput.remote.client import HttpObjectStore, open_store
from bulkput.remote.credentials import Credentials
from bulkput.remote.store import FileRange, ObjectHeaders
from bulkput.remote.target import Target, resolve_endpoint

MiB = 1024 * 1024
KEYS = [
    "plain.txt",
    "with space/a b.txt",
    "unicode/ünïcödé-日本語.txt",
    "reserved/a+b%c#d?e~f=g&h.bin",
    "reserved/semi;colon,comma:colon@at!$'()*",
    "deep/very/deep/path/x",
]
_bucket_numbers = itertools.count(1)


@dataclass(frozen=True)
class Case:
    scheme: str
    signature_version: str
    server: str  # "bulkput" | "rclone" | "seaweedfs" | "moto"

    @property
    def id(self) -> str:
        version = f"-{self.signature_version}" if self.scheme == "oss" else ""
        return f"{self.scheme}{version}@{self.server}"


CASES = [
    Case("bos", "v4", "bulkput"),
    Case("oss", "v1", "bulkput"),
    Case("oss", "v4", "bulkput"),
    Case("s3", "v4", "bulkput"),
    Case("s3", "v4", "rclone"),
    Case("s3", "v4", "seaweedfs"),
    Case("s3", "v4", "moto"),
]


# What a server of others cannot do, per row: the row is skipped there with the reason.
CANNOT = {
    ("rclone", "expires"): "rclone serve s3 does not keep Expires",
    ("rclone", "clock"): "rclone serve s3 does not check the request time",
    ("moto", "clock"): "moto's server does not check the request time",
    ("moto", "signature"): "moto's server checks no signature without IAM auth (tests/fixtures/moto.py)",
    ("rclone", "virtual"): "rclone serve s3 runs path-style here",
    ("rclone", "dot-segments"): "rclone serve s3 refuses these names (a file system behind it)",
    ("seaweedfs", "dot-segments"): "SeaweedFS refuses these names (InvalidRequest: a file system behind it)",
}


def skip_where_it_cannot(case: Case, row: str) -> None:
    reason = CANNOT.get((case.server, row))
    if reason is not None:
        pytest.skip(reason)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def make_store(
    case: Case, endpoint_url: str, credentials: Credentials, bucket: str, **options: Any
) -> HttpObjectStore:
    target = Target.parse(f"{case.scheme}://{bucket}")
    endpoint = resolve_endpoint(target, endpoint_url)
    return open_store(
        target,
        endpoint=endpoint,
        credentials=credentials,
        config=TransferConfig(concurrency=8, chunk_size=64 * 1024),
        signature_version=case.signature_version,
        **options,
    )


@dataclass
class Env:
    case: Case
    store: HttpObjectStore
    endpoint_url: str
    credentials: Credentials
    bucket: str

    def other_store(self, **options: Any) -> HttpObjectStore:
        creds = options.pop("credentials", self.credentials)
        bucket = options.pop("bucket", self.bucket)
        return make_store(self.case, self.endpoint_url, creds, bucket, **options)


@pytest.fixture(params=CASES, ids=lambda case: case.id)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    case: Case = request.param
    if case.server == "bulkput":
        server = request.getfixturevalue("bulkput_server")
        bucket = request.getfixturevalue("bulkput_bucket")
        endpoint_url = server.endpoint_url
        credentials = Credentials(server.access_key, server.secret_key)
        store = make_store(case, endpoint_url, credentials, bucket)
    else:
        server = request.getfixturevalue(f"{case.server}_server")
        bucket = f"suite-{next(_bucket_numbers)}"
        endpoint_url = server.endpoint
        credentials = Credentials(server.access_key, server.secret_key)
        store = make_store(case, endpoint_url, credentials, bucket)
        await store.create_bucket()
    try:
        yield Env(case, store, endpoint_url, credentials, bucket)
    finally:
        await store.close()


async def test_put_head_get_round_trip(env: Env) -> None:
    store = env.store
    for number, key in enumerate(KEYS):
        body = f"{key}\n".encode() * (number + 1)
        result = await store.put_object(
            key, body, content_md5=md5_b64(body), headers=ObjectHeaders()
        )
        assert result.etag == md5_hex(body)
        info = await store.head_object(key)
        assert info is not None
        assert (info.key, info.size, info.etag) == (key, len(body), md5_hex(body))
        assert await store.get_object(key) == body
        assert await store.get_object(key, (1, 4)) == body[1:5]


async def test_empty_object(env: Env) -> None:
    result = await env.store.put_object(
        "empty", b"", content_md5=md5_b64(b""), headers=ObjectHeaders()
    )
    assert result.etag == md5_hex(b"")
    info = await env.store.head_object("empty")
    assert info is not None and info.size == 0
    assert await env.store.get_object("empty") == b""


async def test_head_of_missing_object_is_none(env: Env) -> None:
    assert await env.store.head_object("no/such key") is None


async def test_metadata_and_content_headers_round_trip(env: Env) -> None:
    headers = ObjectHeaders(
        content_type="text/csv",
        cache_control="max-age=60",
        content_disposition='attachment; filename="r.csv"',
        content_encoding="identity",
        expires="Thu, 01 Dec 2044 16:00:00 GMT",
        metadata={
            "mtime-ns": "1700000000123456789",
            "md5": "0cc175b9c0f1b6a831c399e269772661",
            "note": 'a "b" c',
        },
    )
    body = b"a,b\n1,2\n"
    await env.store.put_object("meta/r.csv", body, content_md5=md5_b64(body), headers=headers)
    info = await env.store.head_object("meta/r.csv")
    assert info is not None
    assert info.content_type == "text/csv"
    assert info.metadata == headers.metadata
    answer = await env.store._send("HEAD", "meta/r.csv")
    assert answer.headers["cache-control"] == "max-age=60"
    assert answer.headers["content-disposition"] == 'attachment; filename="r.csv"'
    assert answer.headers["content-encoding"] == "identity"
    if (env.case.server, "expires") not in CANNOT:
        assert answer.headers["expires"] == "Thu, 01 Dec 2044 16:00:00 GMT"


async def test_file_range_body_streams_the_slice(env: Env, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, several 64 KiB chunks
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    piece = data[1000 : 1000 + 200_001]
    body = FileRange(str(path), 1000, len(piece))
    result = await env.store.put_object(
        "slice.bin", body, content_md5=md5_b64(piece), headers=ObjectHeaders()
    )
    assert result.etag == md5_hex(piece)
    assert await env.store.get_object("slice.bin") == piece


async def test_list_with_prefix_and_pagination(env: Env) -> None:
    keys = sorted([*KEYS, "list/0", "list/1", "list/2", "list/3", "list/4", "lisu", "lis"])
    for key in keys:
        await env.store.put_object(
            key, key.encode(), content_md5=md5_b64(key.encode()), headers=ObjectHeaders()
        )
    listed = [info async for info in env.store.list_objects("", page_size=2)]
    assert [info.key for info in listed] == sorted(keys, key=lambda k: k.encode())
    assert all(info.size == len(info.key.encode()) for info in listed)
    assert all(info.etag == md5_hex(info.key.encode()) for info in listed)
    under = [info.key async for info in env.store.list_objects("list/", page_size=2)]
    assert under == ["list/0", "list/1", "list/2", "list/3", "list/4"]
    reserved = [info.key async for info in env.store.list_objects("reserved/a+b%c#", page_size=1)]
    assert reserved == ["reserved/a+b%c#d?e~f=g&h.bin"]
    assert [info async for info in env.store.list_objects("nothing-here/")] == []


async def test_delete_objects(env: Env) -> None:
    for key in KEYS:
        await env.store.put_object(key, b"x", content_md5=md5_b64(b"x"), headers=ObjectHeaders())
    failures = await env.store.delete_objects([*KEYS[:4], "never/existed"])
    assert failures == []
    remaining = [info.key async for info in env.store.list_objects("")]
    assert remaining == sorted(KEYS[4:], key=lambda k: k.encode())
    assert await env.store.head_object(KEYS[0]) is None


async def test_multipart_out_of_order(env: Env) -> None:
    store = env.store
    key = "multi/part ü+#.bin"
    parts_data = [bytes([n]) * (5 * MiB) for n in (1, 2)] + [b"tail" * 1000]
    headers = ObjectHeaders(
        content_type="application/x-test", metadata={"whole-md5": md5_hex(b"".join(parts_data))}
    )
    upload_id = await store.create_multipart_upload(key, headers)
    uploads = [u async for u in store.list_multipart_uploads("multi/")]
    assert [(u.key, u.upload_id) for u in uploads] == [(key, upload_id)]
    sent = {}
    for number in (3, 1, 2):
        data = parts_data[number - 1]
        part = await store.upload_part(key, upload_id, number, data, content_md5=md5_b64(data))
        assert part.part_number == number and part.etag.strip('"').lower() == md5_hex(data)
        sent[number] = part
    listed = await store.list_parts(key, upload_id)
    assert [(p.part_number, p.size) for p in listed] == [
        (n, len(parts_data[n - 1])) for n in (1, 2, 3)
    ]
    result = await store.complete_multipart_upload(key, upload_id, [sent[3], sent[1], sent[2]])
    assert result.etag
    assert await store.get_object(key) == b"".join(parts_data)
    info = await store.head_object(key)
    assert info is not None and info.size == sum(map(len, parts_data))
    assert info.metadata == headers.metadata and info.content_type == "application/x-test"
    assert [u async for u in store.list_multipart_uploads("multi/")] == []


async def test_abort_multipart(env: Env) -> None:
    store = env.store
    upload_id = await store.create_multipart_upload("aborted", ObjectHeaders())
    await store.upload_part("aborted", upload_id, 1, b"abc", content_md5=md5_b64(b"abc"))
    await store.abort_multipart_upload("aborted", upload_id)
    assert [u async for u in store.list_multipart_uploads("")] == []
    with pytest.raises(NotFoundError):
        await store.list_parts("aborted", upload_id)
    assert await store.head_object("aborted") is None


async def test_wrong_secret_is_a_job_fatal_auth_error(env: Env) -> None:
    skip_where_it_cannot(env.case, "signature")
    store = env.other_store(
        credentials=Credentials(env.credentials.access_key, "wrong-secret-0000")
    )
    try:
        with pytest.raises(AuthError) as info:
            await store.put_object("k", b"x", content_md5=md5_b64(b"x"), headers=ObjectHeaders())
    finally:
        await store.close()
    assert info.value.fatal_for_job
    assert "wrong-secret-0000" not in info.value.one_line()


async def test_missing_bucket_is_job_fatal(env: Env) -> None:
    store = env.other_store(bucket="no-such-bucket-here")
    try:
        with pytest.raises(RemoteError) as info:
            await store.put_object("k", b"x", content_md5=md5_b64(b"x"), headers=ObjectHeaders())
    finally:
        await store.close()
    assert info.value.code == "NoSuchBucket"
    assert isinstance(info.value, NotFoundError) and info.value.fatal_for_job


async def test_clock_skew_is_learned_from_the_server(env: Env) -> None:
    skip_where_it_cannot(env.case, "clock")
    store = env.other_store(clock=lambda: datetime.now(timezone.utc) - timedelta(hours=2))
    try:
        with pytest.raises(RemoteError) as info:
            await store.put_object("skew", b"x", content_md5=md5_b64(b"x"), headers=ObjectHeaders())
        assert info.value.retryable
        assert timedelta(hours=1, minutes=55) < store.clock_offset < timedelta(hours=2, minutes=5)
        await store.put_object("skew", b"x", content_md5=md5_b64(b"x"), headers=ObjectHeaders())
    finally:
        await store.close()
    assert await env.store.get_object("skew") == b"x"


async def test_session_token_is_sent_and_checked(env: Env, request: pytest.FixtureRequest) -> None:
    if env.case.server != "bulkput":
        pytest.skip("a bulkput serve row: it starts its own server with session credentials")
    factory = request.getfixturevalue("bulkput_server_factory")
    server = factory(credentials=["sts-ak:sts-sk:sts-token-1"], buckets=["sts-bucket"])
    good = make_store(
        env.case, server.endpoint_url, Credentials("sts-ak", "sts-sk", "sts-token-1"), "sts-bucket"
    )
    bad = make_store(
        env.case, server.endpoint_url, Credentials("sts-ak", "sts-sk", "sts-token-2"), "sts-bucket"
    )
    try:
        await good.put_object("t", b"tok", content_md5=md5_b64(b"tok"), headers=ObjectHeaders())
        assert await good.get_object("t") == b"tok"
        with pytest.raises(AuthError) as info:
            await bad.put_object("t", b"tok", content_md5=md5_b64(b"tok"), headers=ObjectHeaders())
    finally:
        await good.close()
        await bad.close()
    assert "sts-token-2" not in info.value.one_line()


async def test_virtual_hosted_addressing(env: Env) -> None:
    skip_where_it_cannot(env.case, "virtual")
    target = Target.parse(f"{env.case.scheme}://{env.bucket}")
    local = env.endpoint_url.replace("127.0.0.1", "localhost")
    endpoint = resolve_endpoint(target, local, addressing="virtual")
    assert not endpoint.path_style
    store = open_store(
        target,
        endpoint=endpoint,
        credentials=env.credentials,
        signature_version=env.case.signature_version,
    )
    key = "virtual/a b+c#d?e.txt"
    try:
        await store.put_object(key, b"vh", content_md5=md5_b64(b"vh"), headers=ObjectHeaders())
        assert await store.get_object(key) == b"vh"
        assert [info.key async for info in store.list_objects("virtual/")] == [key]
    finally:
        await store.close()
    assert await env.store.get_object(key) == b"vh"  # the same bucket, seen path-style


async def test_create_bucket_is_idempotent(env: Env) -> None:
    bucket = f"made-{env.case.scheme}-{next(_bucket_numbers)}"
    store = env.other_store(bucket=bucket)
    try:
        await store.create_bucket()
        await store.create_bucket()  # already yours: not an error
        await store.put_object("k", b"v", content_md5=md5_b64(b"v"), headers=ObjectHeaders())
        assert [info.key async for info in store.list_objects("")] == ["k"]
    finally:
        await store.close()


async def test_keys_with_dot_segments_and_repeated_slashes(env: Env) -> None:
    skip_where_it_cannot(env.case, "dot-segments")
    keys = ["a//b", "dot/./x", "dd/../y", "trail/"]  # sent as is: no path normalisation
    for key in keys:
        await env.store.put_object(
            key, key.encode(), content_md5=md5_b64(key.encode()), headers=ObjectHeaders()
        )
    for key in keys:
        assert await env.store.get_object(key) == key.encode()
    assert [info.key async for info in env.store.list_objects("")] == sorted(keys)
