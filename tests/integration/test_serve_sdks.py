"""The official clients are the judge: boto3, oss2 (V1 and V4) and bce-python-sdk upload,
read, list and multipart-upload against `bulkput serve`, and are refused with a wrong secret."""

from __future__ import annotations

import hashlib
import io
import os

import botocore.exceptions
import oss2
import pytest
from baidubce.exception import BceHttpClientError, BceServerError
from boto3.s3.transfer import TransferConfig

from bulkput.server.testing import ServerHandle
from tests.integration.serve_clients import bos_client, oss_bucket, s3_client

MiB = 1024 * 1024


def _data(size: int, seed: int = 0) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


# -- S3 (boto3) ------------------------------------------------------------------------------


def test_boto3_put_head_get_exact(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    s3 = s3_client(bulkput_server)
    body = _data(100_000)
    key = "dir/a b+c~é.bin"
    reply = s3.put_object(
        Bucket=bulkput_bucket, Key=key, Body=body, ContentType="application/x-test",
        CacheControl="max-age=60", ContentDisposition="attachment", Metadata={"mtime": "1700000000.5"},
    )  # fmt: skip
    assert reply["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    head = s3.head_object(Bucket=bulkput_bucket, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/x-test"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == "attachment"
    assert head["Metadata"] == {"mtime": "1700000000.5"}
    assert s3.get_object(Bucket=bulkput_bucket, Key=key)["Body"].read() == body
    ranged = s3.get_object(Bucket=bulkput_bucket, Key=key, Range="bytes=10-19")
    assert ranged["Body"].read() == body[10:20]
    assert ranged["ContentRange"] == f"bytes 10-19/{len(body)}"


def test_boto3_lists_v1_v2_with_pages_and_delimiter(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    s3 = s3_client(bulkput_server)
    keys = sorted([f"p/{i:02d}" for i in range(7)] + ["p/sub/x", "p/sub/y", "q", "p/ü", "p/a b"])
    for key in keys:
        s3.put_object(Bucket=bulkput_bucket, Key=key, Body=key.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bulkput_bucket, Prefix="p/", PaginationConfig={"PageSize": 3}
    )
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == [k for k in keys if k.startswith("p/")]
    v1 = s3.get_paginator("list_objects").paginate(
        Bucket=bulkput_bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
    )
    objects, prefixes = [], []
    for page in v1:
        objects += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert objects == ["q"] and prefixes == ["p/"]
    nested = s3.list_objects_v2(Bucket=bulkput_bucket, Prefix="p/", Delimiter="/")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["p/sub/"]
    assert len(nested["Contents"]) == 9


def test_boto3_multipart_low_level_and_upload_file(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: os.PathLike[str]
) -> None:
    s3 = s3_client(bulkput_server)
    parts_data = [_data(5 * MiB, 1), _data(5 * MiB, 2), _data(1234, 3)]
    upload = s3.create_multipart_upload(Bucket=bulkput_bucket, Key="mp", Metadata={"k": "v"})
    upload_id = upload["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bulkput_bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("mp", upload_id)]
    etags = []
    for number, chunk in enumerate(parts_data, 1):
        reply = s3.upload_part(Bucket=bulkput_bucket, Key="mp", UploadId=upload_id,
                               PartNumber=number, Body=chunk)  # fmt: skip
        etags.append(reply["ETag"])
    parts = s3.list_parts(Bucket=bulkput_bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (n, e, len(d)) for n, (e, d) in enumerate(zip(etags, parts_data, strict=True), 1)
    ]
    done = s3.complete_multipart_upload(
        Bucket=bulkput_bucket, Key="mp", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )  # fmt: skip
    md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    assert s3.get_object(Bucket=bulkput_bucket, Key="mp")["Body"].read() == b"".join(parts_data)
    assert s3.head_object(Bucket=bulkput_bucket, Key="mp")["Metadata"] == {"k": "v"}
    assert bulkput_server.stats.part_uploads("mp", bulkput_bucket) == {1: 1, 2: 1, 3: 1}
    # abort leaves nothing behind
    aborted = s3.create_multipart_upload(Bucket=bulkput_bucket, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=bulkput_bucket, Key="gone", UploadId=aborted)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bulkput_bucket)
    # the high-level transfer manager, concurrently
    path = os.path.join(tmp_path, "big.bin")
    big = _data(11 * MiB, 4)
    with open(path, "wb") as handle:
        handle.write(big)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(path, bulkput_bucket, "big.bin", Config=config)
    out = io.BytesIO()
    s3.download_fileobj(bulkput_bucket, "big.bin", out)
    assert out.getvalue() == big


def test_boto3_delete_objects(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    s3 = s3_client(bulkput_server)
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bulkput_bucket, Key=key, Body=b"x")
    reply = s3.delete_objects(
        Bucket=bulkput_bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}
    )
    assert sorted(d["Key"] for d in reply["Deleted"]) == ["a", "b"]
    s3.delete_object(Bucket=bulkput_bucket, Key="c")
    assert s3.list_objects_v2(Bucket=bulkput_bucket)["KeyCount"] == 0


def test_boto3_refused_with_wrong_secret_or_key(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as wrong_secret:
        s3_client(bulkput_server, secret="not-the-secret").put_object(
            Bucket=bulkput_bucket, Key="k", Body=b"x"
        )
    assert wrong_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert wrong_secret.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as wrong_key:
        s3_client(bulkput_server, access="nobody").list_objects_v2(Bucket=bulkput_bucket)
    assert wrong_key.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        s3_client(bulkput_server).put_object(Bucket="no-such-bucket", Key="k", Body=b"x")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"


def test_boto3_virtual_hosted_addressing(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    from tests.integration.serve_clients import send_s3

    host = f"{bulkput_bucket}.localhost:{bulkput_server.port}"
    status, _, _ = send_s3(bulkput_server, "PUT", "/v/key 1", body=b"virtual", host=host)
    assert status == 200
    s3 = s3_client(bulkput_server)
    assert s3.get_object(Bucket=bulkput_bucket, Key="v/key 1")["Body"].read() == b"virtual"
    status, _, body = send_s3(bulkput_server, "GET", "/v/key 1", host=host)
    assert (status, body) == (200, b"virtual")


# -- OSS (oss2, V1 and V4) -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_put_get_head_list(
    bulkput_server: ServerHandle, bulkput_bucket: str, version: str
) -> None:
    bucket = oss_bucket(bulkput_server, bulkput_bucket, version)  # CRC-64 checks on (default)
    body = _data(300_000, 5)
    reply = bucket.put_object(
        "o/file 1.bin", body,
        headers={"Content-Type": "image/png", "x-oss-meta-owner": "team a", "Cache-Control": "no-cache",
                 "x-oss-storage-class": "IA"},
    )  # fmt: skip
    assert reply.etag == hashlib.md5(body).hexdigest().upper()
    assert bucket.get_object("o/file 1.bin").read() == body
    assert bucket.get_object("o/file 1.bin", byte_range=(5, 9)).read() == body[5:10]
    head = bucket.head_object("o/file 1.bin")
    assert head.content_length == len(body)
    assert head.content_type == "image/png"
    assert head.headers["x-oss-meta-owner"] == "team a"
    assert head.headers["Cache-Control"] == "no-cache"
    assert head.headers["x-oss-storage-class"] == "IA"
    for i in range(5):
        bucket.put_object(f"o/n/{i}", b"n")
    listed = [o.key for o in oss2.ObjectIterator(bucket, prefix="o/", max_keys=2)]
    assert listed == ["o/file 1.bin"] + [f"o/n/{i}" for i in range(5)]
    top = oss2.ObjectIterator(bucket, prefix="o/", delimiter="/", max_keys=1)
    assert [(o.key, o.is_prefix()) for o in top] == [("o/file 1.bin", False), ("o/n/", True)]
    v2 = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="o/n/", max_keys=2)]
    assert v2 == [f"o/n/{i}" for i in range(5)]
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("o/missing")  # the code travels in x-oss-err on a bodiless answer
    result = bucket.batch_delete_objects([f"o/n/{i}" for i in range(5)])
    assert sorted(result.deleted_keys) == [f"o/n/{i}" for i in range(5)]


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_multipart(bulkput_server: ServerHandle, bulkput_bucket: str, version: str) -> None:
    bucket = oss_bucket(bulkput_server, bulkput_bucket, version)
    chunks = [_data(100 * 1024, 6), _data(100 * 1024, 7), _data(777, 8)]
    upload_id = bucket.init_multipart_upload("mp/x", headers={"x-oss-meta-a": "1"}).upload_id
    assert [u.upload_id for u in oss2.MultipartUploadIterator(bucket)] == [upload_id]
    parts = []
    for number, chunk in enumerate(chunks, 1):
        reply = bucket.upload_part("mp/x", upload_id, number, chunk)  # checks the part's CRC-64
        parts.append(oss2.models.PartInfo(number, reply.etag))
    listed = list(oss2.PartIterator(bucket, "mp/x", upload_id, max_parts=2))
    assert [(p.part_number, p.size) for p in listed] == [(1, 102400), (2, 102400), (3, 777)]
    bucket.complete_multipart_upload("mp/x", upload_id, parts)  # checks the object's CRC-64
    whole = b"".join(chunks)
    assert bucket.get_object("mp/x").read() == whole
    head = bucket.head_object("mp/x")
    assert head.headers["x-oss-object-type"] == "Multipart"
    assert head.headers["x-oss-meta-a"] == "1"
    assert head.etag.endswith("-3")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_refused_with_wrong_secret(
    bulkput_server: ServerHandle, bulkput_bucket: str, version: str
) -> None:
    bad = oss_bucket(bulkput_server, bulkput_bucket, version, secret="wrong-secret")
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bad.put_object("k", b"x")
    assert (refused.value.status, refused.value.code) == (403, "SignatureDoesNotMatch")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        oss_bucket(bulkput_server, "no-such-bucket", version).put_object("k", b"x")


# -- BOS (bce-python-sdk) --------------------------------------------------------------------


def test_bos_put_get_meta_list(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    bos = bos_client(bulkput_server)
    body = _data(50_000, 9)
    bos.put_object(bulkput_bucket, "b/one two.bin", io.BytesIO(body), len(body),
                   content_type="text/csv", user_metadata={"origin": "local"})  # fmt: skip
    assert bos.get_object_as_string(bulkput_bucket, "b/one two.bin") == body
    assert bos.get_object_as_string(bulkput_bucket, "b/one two.bin", range=[1, 3]) == body[1:4]
    meta = bos.get_object_meta_data(bulkput_bucket, "b/one two.bin").metadata
    assert int(meta.content_length) == len(body)
    assert meta.content_type == "text/csv"
    assert meta.etag == hashlib.md5(body).hexdigest()
    assert meta.bce_meta_origin == "local"
    for i in range(4):
        bos.put_object_from_string(bulkput_bucket, f"b/n/{i}", "n")
    first = bos.list_objects(bulkput_bucket, max_keys=2, prefix="b/")
    assert first.is_truncated
    rest = bos.list_objects(bulkput_bucket, prefix="b/", marker=first.next_marker)
    keys = [c.key for c in first.contents] + [c.key for c in rest.contents]
    assert keys == ["b/n/0", "b/n/1", "b/n/2", "b/n/3", "b/one two.bin"]
    grouped = bos.list_objects(bulkput_bucket, prefix="b/", delimiter="/")
    assert [p.prefix for p in grouped.common_prefixes] == ["b/n/"]
    bos.delete_multiple_objects(bulkput_bucket, [f"b/n/{i}" for i in range(4)])
    assert [c.key for c in bos.list_objects(bulkput_bucket).contents] == ["b/one two.bin"]


def test_bos_multipart(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    bos = bos_client(bulkput_server)
    chunks = [_data(5 * MiB, 10), _data(4321, 11)]
    upload_id = bos.initiate_multipart_upload(bulkput_bucket, "mp/bos").upload_id
    uploads = bos.list_multipart_uploads(bulkput_bucket).uploads
    assert [u.upload_id for u in uploads] == [upload_id]
    part_list = []
    for number, chunk in enumerate(chunks, 1):
        reply = bos.upload_part(bulkput_bucket, "mp/bos", upload_id, number, len(chunk),
                                io.BytesIO(chunk))  # fmt: skip
        part_list.append({"partNumber": number, "eTag": reply.metadata.etag})
    listed = bos.list_parts(bulkput_bucket, "mp/bos", upload_id)
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, 5 * MiB), (2, 4321)]
    done = bos.complete_multipart_upload(bulkput_bucket, "mp/bos", upload_id, part_list)
    assert done.etag.endswith("-2")
    assert bos.get_object_as_string(bulkput_bucket, "mp/bos") == b"".join(chunks)


def test_bos_refused_with_wrong_secret(bulkput_server: ServerHandle, bulkput_bucket: str) -> None:
    bad = bos_client(bulkput_server, secret="wrong-secret")
    with pytest.raises(BceHttpClientError) as refused:
        bad.put_object_from_string(bulkput_bucket, "k", "x")
    error = refused.value.last_error
    assert isinstance(error, BceServerError)
    assert (error.status_code, error.code) == (403, "SignatureDoesNotMatch")
    with pytest.raises(BceHttpClientError) as missing:
        bos_client(bulkput_server).put_object_from_string("no-such-bucket", "k", "x")
    error = missing.value.last_error
    assert (error.status_code, error.code) == (404, "NoSuchBucket")


def test_bos_sdk_super_object_upload_with_whole_object_crc32(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path
) -> None:
    """The SDK's own multipart path sends the whole object's x-bce-content-crc32 on complete."""
    data = _data(11 * MiB + 123, 12)
    path = tmp_path / "super.bin"
    path.write_bytes(data)
    bos = bos_client(bulkput_server)
    assert bos.put_super_object_from_file(bulkput_bucket, "mp/super", str(path), chunk_size=5,
                                          thread_num=2)  # fmt: skip
    assert bos.get_object_as_string(bulkput_bucket, "mp/super") == data
