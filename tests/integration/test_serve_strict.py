"""`bulkput serve` is strict like the real services: each refusal of issue 3 item 3, in the
dialect's own code, as the official SDK (or a hand-signed request) sees it."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import oss2
import pytest
from baidubce.exception import BceHttpClientError

from bulkput.server.testing import ServerHandle
from tests.integration.serve_clients import bos_client, oss_bucket, s3_client, send_s3


def _s3_code(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    response = refused.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _oss_code(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        call()
    return refused.value.status, refused.value.code


def _bos_code(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(BceHttpClientError) as refused:
        call()
    error = refused.value.last_error
    return error.status_code, error.code


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_content_md5_invalid_and_mismatched(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    s3 = s3_client(bulkput_server)
    put = s3.put_object
    assert _s3_code(lambda: put(Bucket=bulkput_bucket, Key="k", Body=b"abc", ContentMD5="nope")) == (
        400, "InvalidDigest",
    )  # fmt: skip
    wrong = _md5_b64(b"something else")
    assert _s3_code(lambda: put(Bucket=bulkput_bucket, Key="k", Body=b"abc", ContentMD5=wrong)) == (
        400, "BadDigest",
    )  # fmt: skip
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v1")
    assert _oss_code(lambda: oss.put_object("k", b"abc", headers={"Content-MD5": wrong})) == (
        400, "BadDigest",
    )  # fmt: skip
    bos = bos_client(bulkput_server)
    assert _bos_code(
        lambda: bos.put_object_from_string(bulkput_bucket, "k", "abc", content_md5=wrong)
    ) == (400, "BadDigest")
    assert "Contents" not in s3.list_objects_v2(Bucket=bulkput_bucket)  # nothing stored
    assert put(Bucket=bulkput_bucket, Key="k", Body=b"abc", ContentMD5=_md5_b64(b"abc"))


def test_payload_sha256_must_match(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    status, _, body = send_s3(bulkput_server, "PUT", f"/{bulkput_bucket}/k", body=b"data",
                              payload_hash=hashlib.sha256(b"other").hexdigest())  # fmt: skip
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    status, _, _ = send_s3(bulkput_server, "PUT", f"/{bulkput_bucket}/k", body=b"data",
                           payload_hash=hashlib.sha256(b"data").hexdigest())  # fmt: skip
    assert status == 200


def test_missing_content_length(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    status, _headers, body = send_s3(bulkput_server, "PUT", f"/{bulkput_bucket}/k", body=chunked,
                                    headers={"transfer-encoding": "chunked"})  # fmt: skip
    assert status == 411 and b"<Code>MissingContentLength</Code>" in body
    # OSS takes chunked bodies (oss2 sends one for an iterator)
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v4")
    oss.put_object("chunked", iter([b"hel", b"lo"]))
    assert oss.get_object("chunked").read() == b"hello"


def test_body_shorter_than_content_length_times_out(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(buckets=["short-body"], body_timeout=0.3)
    status, _, body = send_s3(server, "PUT", "/short-body/k", body=b"only ten b",
                              content_length=100)  # fmt: skip
    assert status == 400 and b"<Code>RequestTimeout</Code>" in body
    assert server.stats.puts("k") == 0


def test_single_put_over_5_gib(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    status, _, body = send_s3(bulkput_server, "PUT", f"/{bulkput_bucket}/huge",
                              content_length=5 * 1024**3 + 1)  # fmt: skip
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body


def test_unsigned_request_is_refused(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    with socket.create_connection((bulkput_server.host, bulkput_server.port)) as raw:
        raw.sendall(
            f"PUT /{bulkput_bucket}/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx".encode()
        )
        reply = raw.recv(4096)
    assert reply.startswith(b"HTTP/1.1 403") and b"<Code>AccessDenied</Code>" in reply


def test_key_over_1023_bytes(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    long_key = "k" * 1024
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v1")
    assert _oss_code(lambda: oss.put_object(long_key, b"x")) == (400, "InvalidObjectName")
    s3 = s3_client(bulkput_server)
    assert _s3_code(lambda: s3.put_object(Bucket=bulkput_bucket, Key=long_key, Body=b"x")) == (
        400, "KeyTooLongError",
    )  # fmt: skip
    assert s3.put_object(Bucket=bulkput_bucket, Key="é" * 511, Body=b"x")  # 1022 bytes: fine


def test_user_metadata_size_and_characters(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v4")
    big = {f"x-oss-meta-m{i}": "v" * 1000 for i in range(9)}  # over 8 KB in all
    assert _oss_code(lambda: oss.put_object("m", b"x", headers=big)) == (400, "MetadataTooLarge")
    fits = {f"x-oss-meta-m{i}": "v" * 1000 for i in range(7)}
    assert oss.put_object("m", b"x", headers=fits).status == 200
    assert _oss_code(lambda: oss.put_object("m", b"x", headers={"x-oss-meta-bad_name": "v"})) == (
        400, "InvalidArgument",
    )  # fmt: skip
    s3 = s3_client(bulkput_server)
    s3_big = {f"m{i}": "v" * 1000 for i in range(3)}  # S3 allows 2 KB
    assert _s3_code(
        lambda: s3.put_object(Bucket=bulkput_bucket, Key="m", Body=b"x", Metadata=s3_big)
    ) == (400, "MetadataTooLarge")


def test_storage_class_acl_and_encryption_values(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    s3 = s3_client(bulkput_server)
    put = s3.put_object
    assert _s3_code(lambda: put(Bucket=bulkput_bucket, Key="c", Body=b"x", StorageClass="COLDEST")) == (
        400, "InvalidStorageClass",
    )  # fmt: skip
    assert _s3_code(lambda: put(Bucket=bulkput_bucket, Key="c", Body=b"x", ACL="everyone")) == (
        400, "InvalidArgument",
    )  # fmt: skip
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v1")
    assert _oss_code(lambda: oss.put_object("c", b"x", headers={"x-oss-storage-class": "Glacier"})) == (
        400, "InvalidArgument",
    )  # fmt: skip
    assert _oss_code(
        lambda: oss.put_object("c", b"x", headers={"x-oss-server-side-encryption": "DES"})
    ) == (400, "InvalidEncryptionAlgorithmError")
    bos = bos_client(bulkput_server)
    assert _bos_code(
        lambda: bos.put_object_from_string(bulkput_bucket, "c", "x", storage_class="GLACIER")
    ) == (400, "InvalidStorageClass")
    assert put(Bucket=bulkput_bucket, Key="c", Body=b"x", StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket=bulkput_bucket, Key="c")["StorageClass"] == "STANDARD_IA"


def test_clock_skew_beyond_15_minutes(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    late = datetime.now(timezone.utc) - timedelta(minutes=20)
    status, _, body = send_s3(bulkput_server, "GET", f"/{bulkput_bucket}", now=late)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body
    fine = datetime.now(timezone.utc) - timedelta(minutes=10)
    assert send_s3(bulkput_server, "GET", f"/{bulkput_bucket}", now=fine)[0] == 200


def test_session_token_is_checked(bulkput_server_factory: Callable[..., ServerHandle]) -> None:
    server = bulkput_server_factory(credentials=["sts-ak:sts-sk:the-token"], buckets=["sts-bucket"])
    good = s3_client(server)
    good.meta.events.register(
        "before-sign.s3",
        lambda request, **_: request.headers.__setitem__("X-Amz-Security-Token", "the-token"),
    )
    assert good.put_object(Bucket="sts-bucket", Key="k", Body=b"x")
    oss = oss2.Bucket(
        oss2.StsAuth("sts-ak", "sts-sk", "wrong-token"), server.endpoint_url, "sts-bucket"
    )
    status, code = _oss_code(lambda: oss.put_object("k", b"x"))
    assert status == 403 and code == "InvalidSecurityToken"
    assert oss2.Bucket(oss2.StsAuth("sts-ak", "sts-sk", "the-token"), server.endpoint_url,
                       "sts-bucket").put_object("k2", b"y").status == 200  # fmt: skip


def test_multipart_rules(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    s3 = s3_client(bulkput_server)
    upload_id = s3.create_multipart_upload(Bucket=bulkput_bucket, Key="mp")["UploadId"]
    etags = [
        s3.upload_part(
            Bucket=bulkput_bucket, Key="mp", UploadId=upload_id, PartNumber=n, Body=b"small part"
        )["ETag"]
        for n in (1, 2)
    ]

    def complete(parts: list[dict[str, object]]) -> object:
        return s3.complete_multipart_upload(Bucket=bulkput_bucket, Key="mp", UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})  # fmt: skip

    assert _s3_code(lambda: complete([{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": etags[1]}])) == (
        400, "EntityTooSmall",
    )  # fmt: skip
    assert _s3_code(lambda: complete([{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}])) == (
        400, "InvalidPartOrder",
    )  # fmt: skip
    assert _s3_code(lambda: complete([{"PartNumber": 1, "ETag": '"0123"'}])) == (400, "InvalidPart")
    assert _s3_code(
        lambda: s3.upload_part(
            Bucket=bulkput_bucket, Key="mp", UploadId="nope", PartNumber=1, Body=b"x"
        )
    ) == (404, "NoSuchUpload")
    complete([{"PartNumber": 1, "ETag": etags[0]}])  # one part: no minimum
    assert s3.get_object(Bucket=bulkput_bucket, Key="mp")["Body"].read() == b"small part"
