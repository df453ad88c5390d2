"""Request building, header spelling, validation and body formats of the three dialects.

Listing and multipart bodies are checked against the official SDKs' own parsers (oss2,
botocore) on the same bytes, so our reading of a format is the SDK's reading.
"""

from __future__ import annotations

import json
import types
import xml.etree.ElementTree as ElementTree
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkput.errors import RemoteError, ServiceError, ValidationError
from bulkput.remote.dialects import dialect_for
from bulkput.remote.dialects.base import with_next
from bulkput.remote.dialects.s3 import S3_XMLNS
from bulkput.remote.store import ObjectHeaders, PartInfo
from bulkput.remote.target import Target, resolve_endpoint
from bulkput.remote.transport import response

LOCAL = "http://127.0.0.1:9000"


# --- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
def test_path_style_request_encodes_key(scheme: str) -> None:
    endpoint = resolve_endpoint(Target.parse(f"{scheme}://bkt"), LOCAL)
    request = dialect_for(scheme).request(
        endpoint,
        "PUT",
        "bkt",
        "dir/a b+c%d#e?f~g=h&i/ü",
        (("partNumber", "3"), ("uploadId", "x/y+z")),
    )
    assert request.path == "/bkt/dir/a%20b%2Bc%25d%23e%3Ff~g%3Dh%26i/%C3%BC"
    assert request.host == "127.0.0.1:9000"
    assert request.url == f"{LOCAL}{request.path}?partNumber=3&uploadId=x%2Fy%2Bz"
    assert request.query == (("partNumber", "3"), ("uploadId", "x/y+z"))


def test_virtual_hosted_request_and_bucket_level_paths() -> None:
    endpoint = resolve_endpoint(Target.parse("oss://bkt"), "https://oss-cn-beijing.aliyuncs.com")
    dialect = dialect_for("oss")
    request = dialect.request(endpoint, "GET", "bkt", "k 1")
    assert (request.host, request.path) == ("bkt.oss-cn-beijing.aliyuncs.com", "/k%201")
    assert request.url == "https://bkt.oss-cn-beijing.aliyuncs.com/k%201"
    listing = dialect.request(endpoint, "POST", "bkt", None, (("delete", None),))
    assert listing.url == "https://bkt.oss-cn-beijing.aliyuncs.com/?delete"
    local = resolve_endpoint(Target.parse("oss://bkt"), LOCAL)
    assert dialect.request(local, "GET", "bkt").path == "/bkt"


def test_with_next_replaces_markers() -> None:
    query = (("prefix", "p"), ("marker", "a"))
    assert with_next(query, {"marker": "b"}) == (("prefix", "p"), ("marker", "b"))


# --- headers and validation ------------------------------------------------------------------

FULL = ObjectHeaders(
    content_type="text/plain",
    cache_control="no-cache",
    content_disposition="attachment; filename=a.txt",
    content_encoding="gzip",
    expires="Thu, 01 Dec 1994 16:00:00 GMT",
    acl="Private",
    storage_class="standard_ia",
    server_side_encryption="aes256",
    metadata={"Mtime": "1700000000", "md5": "0cc175b9c0f1b6a831c399e269772661"},
)


def test_s3_header_spelling() -> None:
    assert dialect_for("s3").object_headers(FULL) == {
        "content-type": "text/plain",
        "cache-control": "no-cache",
        "content-disposition": "attachment; filename=a.txt",
        "content-encoding": "gzip",
        "expires": "Thu, 01 Dec 1994 16:00:00 GMT",
        "x-amz-acl": "private",
        "x-amz-storage-class": "STANDARD_IA",
        "x-amz-server-side-encryption": "AES256",
        "x-amz-meta-mtime": "1700000000",
        "x-amz-meta-md5": "0cc175b9c0f1b6a831c399e269772661",
    }


def test_oss_and_bos_header_spelling() -> None:
    oss = dialect_for("oss").object_headers(
        ObjectHeaders(
            acl="public-read", storage_class="ia", server_side_encryption="kms", metadata={"a": "1"}
        )
    )
    assert oss == {
        "x-oss-object-acl": "public-read",
        "x-oss-storage-class": "IA",
        "x-oss-server-side-encryption": "KMS",
        "x-oss-meta-a": "1",
    }
    bos = dialect_for("bos").object_headers(FULL)
    assert bos["x-bce-acl"] == "private"
    assert bos["x-bce-storage-class"] == "STANDARD_IA"
    assert bos["x-bce-server-side-encryption"] == "AES256"
    assert bos["x-bce-meta-mtime"] == "1700000000"


@pytest.mark.parametrize("scheme", ["s3", "bos"])
def test_full_headers_are_valid(scheme: str) -> None:
    dialect_for(scheme).validate("a/b.txt", FULL)


@pytest.mark.parametrize(
    ("scheme", "headers", "fragment"),
    [
        ("oss", ObjectHeaders(storage_class="GLACIER"), "unknown storage class 'GLACIER' for oss"),
        ("s3", ObjectHeaders(storage_class="Cold"), "unknown storage class"),
        ("bos", ObjectHeaders(acl="authenticated-read"), "unknown ACL"),
        ("oss", ObjectHeaders(server_side_encryption="aws:kms"), "unknown server-side encryption"),
        ("oss", ObjectHeaders(metadata={"my_key": "v"}), "OSS allows only letters, digits and '-'"),
        ("oss", ObjectHeaders(metadata={"k": "é"}), "printable ASCII"),
        ("s3", ObjectHeaders(metadata={"bad name": "v"}), "not a valid header name"),
        ("s3", ObjectHeaders(metadata={"a": "1", "A": "2"}), "given twice"),
        ("oss", ObjectHeaders(metadata={"big": "x" * 8190}), "8192 bytes in all"),
        ("s3", ObjectHeaders(metadata={"big": "x" * 2046}), "2048 bytes"),
        (
            "bos",
            ObjectHeaders(content_type="text/plain\r\nx-bce-acl: public-read"),
            "printable ASCII",
        ),
    ],
)
def test_validation_refuses(scheme: str, headers: ObjectHeaders, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(")) as info:
        dialect_for(scheme).validate("the/key", headers)
    assert info.value.key == "the/key"


def test_validation_limits_are_inclusive() -> None:
    dialect_for("oss").validate("k", ObjectHeaders(metadata={"big": "x" * 8189}))  # 8192 bytes
    dialect_for("s3").validate("k", ObjectHeaders(metadata={"big": "x" * 2045}))  # 2048 bytes
    dialect_for("oss").validate("k", ObjectHeaders(metadata={"x-y-1": 'a "quoted" value'}))


@pytest.mark.parametrize(("scheme", "limit"), [("s3", 1024), ("oss", 1023), ("bos", 1023)])
def test_validation_checks_the_key(scheme: str, limit: int) -> None:
    dialect_for(scheme).validate("k" * limit, ObjectHeaders())
    with pytest.raises(ValidationError, match=f"limit on {scheme} is {limit}"):
        dialect_for(scheme).validate("k" * (limit + 1), ObjectHeaders())


def test_head_answer_becomes_object_info() -> None:
    answer = response(
        200,
        {
            "Content-Length": "12",
            "ETag": '"0CC175B9C0F1B6A831C399E269772661"',
            "Last-Modified": "Tue, 02 Jan 2024 03:04:05 GMT",
            "Content-Type": "text/plain",
            "X-Oss-Meta-Mtime": "17",
            "x-oss-request-id": "R",
        },
    )
    info = dialect_for("oss").object_info("k", answer.headers)
    assert (info.size, info.etag, info.content_type) == (
        12,
        "0cc175b9c0f1b6a831c399e269772661",
        "text/plain",
    )
    assert info.metadata == {"mtime": "17"}


def test_put_result_reads_crc64_and_request_id() -> None:
    answer = response(
        200,
        {
            "ETag": '"ABC-3"',
            "x-oss-hash-crc64ecma": "11085119220186368080",
            "x-oss-request-id": "R",
        },
    )
    result = dialect_for("oss").put_result(answer.headers)
    assert (result.etag, result.crc64, result.request_id) == ("ABC-3", 11085119220186368080, "R")


# --- listings, against the SDKs' parsers -------------------------------------------------------

OSS_LIST = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>bkt</Name><Prefix>a%2B</Prefix><Marker></Marker><MaxKeys>2</MaxKeys><Delimiter></Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextMarker>a%2Bb%20c%C3%BC</NextMarker>
  <Contents><Key>a%2Bb</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>
    <ETag>"5B3E1E4D1F1A8A6A1C0E4C8B5E8A8D1F"</ETag><Type>Normal</Type><Size>344606</Size>
    <StorageClass>Standard</StorageClass><Owner><ID>1</ID><DisplayName>1</DisplayName></Owner></Contents>
  <Contents><Key>a%2Bb%20c%C3%BC</Key><LastModified>2024-01-02T03:04:06.000Z</LastModified>
    <ETag>"X-2"</ETag><Type>Multipart</Type><Size>0</Size><StorageClass>IA</StorageClass></Contents>
</ListBucketResult>"""


def test_oss_listing_matches_oss2() -> None:
    from oss2 import xml_utils

    page = dialect_for("oss").parse_list_objects(OSS_LIST)
    sdk = xml_utils.parse_list_objects(
        types.SimpleNamespace(object_list=[], prefix_list=[]), OSS_LIST
    )
    assert [(o.key, o.size, o.etag) for o in page.items] == [
        (o.key, o.size, o.etag.lower() if o.etag != "X-2" else o.etag) for o in sdk.object_list
    ]
    assert [o.key for o in page.items] == ["a+b", "a+b cü"]
    assert page.next_query == {"marker": sdk.next_marker} == {"marker": "a+b cü"}


@cache
def _botocore_output_shape(operation: str) -> Any:
    import botocore.session

    return (
        botocore.session.get_session()
        .get_service_model("s3")
        .operation_model(operation)
        .output_shape
    )


def _botocore_parse(operation: str, body: bytes) -> dict[str, Any]:
    from botocore.parsers import RestXMLParser

    return RestXMLParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, _botocore_output_shape(operation)
    )


S3_LIST = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bkt</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>a&amp;b</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>&#252;ber</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>
    <ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"""


def test_s3_listing_matches_botocore() -> None:
    page = dialect_for("s3").parse_list_objects(S3_LIST)
    sdk = _botocore_parse("ListObjectsV2", S3_LIST)
    assert [(o.key, o.size, o.etag) for o in page.items] == [
        (c["Key"], c["Size"], c["ETag"].strip('"')) for c in sdk["Contents"]
    ]
    assert page.next_query == {"continuation-token": sdk["NextContinuationToken"]}


def test_s3_url_encoded_listing_is_decoded_like_botocore() -> None:
    body = (
        S3_LIST.replace(b"<Key>a&amp;b</Key>", b"<Key>a%26b+c%2B</Key>")
        .replace(b"<Key>&#252;ber</Key>", b"<Key>%C3%BCber</Key>")  # encoded, as S3 does
        .replace(b"<KeyCount>", b"<EncodingType>url</EncodingType><KeyCount>")
    )
    keys = [item.key for item in dialect_for("s3").parse_list_objects(body).items]
    assert keys == ["a&b c+", "über"]


def test_last_page_has_no_next_query() -> None:
    body = S3_LIST.replace(b"<IsTruncated>true</IsTruncated>", b"<IsTruncated>false</IsTruncated>")
    assert dialect_for("s3").parse_list_objects(body).next_query is None


def test_truncated_listing_without_marker_continues_after_last_key() -> None:
    body = OSS_LIST.replace(b"<NextMarker>a%2Bb%20c%C3%BC</NextMarker>", b"")
    assert dialect_for("oss").parse_list_objects(body).next_query == {"marker": "a+b cü"}


def test_bos_listing() -> None:
    body = json.dumps(
        {
            "name": "bkt",
            "prefix": "",
            "delimiter": "",
            "marker": "",
            "maxKeys": 2,
            "isTruncated": True,
            "nextMarker": "b",
            "contents": [
                {
                    "key": "a",
                    "lastModified": "2024-01-02T03:04:05Z",
                    "eTag": "0cc175b9c0f1b6a831c399e269772661",
                    "size": 1,
                    "storageClass": "STANDARD",
                    "owner": {"id": "x", "displayName": "y"},
                },
                {
                    "key": "b ü",
                    "lastModified": "2024-01-02T03:04:05Z",
                    "eTag": "-",
                    "size": 12,
                    "storageClass": "COLD",
                },
            ],
        }
    ).encode()
    page = dialect_for("bos").parse_list_objects(body)
    assert [(o.key, o.size) for o in page.items] == [("a", 1), ("b ü", 12)]
    assert page.next_query == {"marker": "b"}
    assert dialect_for("bos").list_objects_query("p/", 2) == (("maxKeys", "2"), ("prefix", "p/"))


# --- multi-object delete ---------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["s3", "oss"])
def test_xml_delete_body(scheme: str) -> None:
    import base64
    import hashlib

    query, body, headers = dialect_for(scheme).delete_objects_body(["a&b", "<c>", "ü"])
    root = ElementTree.fromstring(body)
    assert [node.text for node in root.iter("Key")] == ["a&b", "<c>", "ü"]
    assert root.findtext("Quiet") == "true"
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert query[0] == ("delete", None)


def test_s3_delete_result_failures() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>ok</Key></Deleted>
  <Error><Key>locked</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
</DeleteResult>"""
    failures = dialect_for("s3").parse_delete_objects(body)
    assert [(f.key, f.code, f.message) for f in failures] == [
        ("locked", "AccessDenied", "Access Denied")
    ]
    assert dialect_for("oss").parse_delete_objects(b"") == []


def test_bos_delete_body_and_failures() -> None:
    _query, body, headers = dialect_for("bos").delete_objects_body(["a", "b ü"])
    assert json.loads(body) == {"objects": [{"key": "a"}, {"key": "b ü"}]}
    assert headers["content-type"].startswith("application/json")
    answer = json.dumps(
        {"errors": [{"key": "b ü", "code": "NoSuchKey", "message": "gone"}]}
    ).encode()
    failures = dialect_for("bos").parse_delete_objects(answer)
    assert [(f.key, f.code) for f in failures] == [("b ü", "NoSuchKey")]
    assert dialect_for("bos").parse_delete_objects(b"") == []


# --- multipart -------------------------------------------------------------------------------

PARTS = [PartInfo(3, "c" * 32), PartInfo(1, "a" * 32), PartInfo(2, "b" * 32)]


@pytest.mark.parametrize("scheme", ["s3", "oss"])
def test_xml_complete_body_matches_oss2(scheme: str) -> None:
    from oss2 import xml_utils

    body, headers = dialect_for(scheme).complete_body(PARTS)
    sdk = xml_utils.to_complete_upload_request(sorted(PARTS, key=lambda p: p.part_number))
    ours = [(p.findtext("PartNumber"), p.findtext("ETag")) for p in ElementTree.fromstring(body)]
    theirs = [(p.findtext("PartNumber"), p.findtext("ETag")) for p in ElementTree.fromstring(sdk)]
    assert (
        ours
        == theirs
        == [("1", '"' + "a" * 32 + '"'), ("2", '"' + "b" * 32 + '"'), ("3", '"' + "c" * 32 + '"')]
    )
    assert headers["content-type"] == "application/xml"


def test_bos_complete_body_is_the_sdks_json() -> None:
    body, _headers = dialect_for("bos").complete_body(PARTS)
    assert json.loads(body) == {
        "parts": [{"partNumber": n, "eTag": e * 32} for n, e in ((1, "a"), (2, "b"), (3, "c"))]
    }


def test_initiate_answers() -> None:
    xml = b'<?xml version="1.0"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>'
    assert dialect_for("s3").parse_initiate(xml) == "VXBsb2FkIElE"
    assert (
        dialect_for("oss").parse_initiate(
            xml.replace(b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', b"")
        )
        == "VXBsb2FkIElE"
    )
    assert (
        dialect_for("bos").parse_initiate(
            b'{"bucket":"b","key":"k","uploadId":"a44cc9bab11cbd156984767aad637851"}'
        )
        == "a44cc9bab11cbd156984767aad637851"
    )
    with pytest.raises(ValueError):
        dialect_for("bos").parse_initiate(b"{}")


@pytest.mark.parametrize("scheme", ["s3", "oss"])
def test_complete_200_with_error_body_raises_retryable(scheme: str) -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>656c76696e6727732072657175657374</RequestId></Error>'
    with pytest.raises(RemoteError) as info:
        dialect_for(scheme).parse_complete(response(200).headers, body, bucket="b", key="k")
    assert info.value.code == "InternalError" and info.value.retryable
    assert "(in a 200 answer)" in info.value.message


def test_bos_complete_200_with_error_body_raises() -> None:
    body = b'{"code":"InternalError","message":"oops","requestId":"r"}'
    with pytest.raises(ServiceError) as info:
        dialect_for("bos").parse_complete(response(200).headers, body, bucket="b", key="k")
    assert info.value.retryable


def test_complete_success_answers() -> None:
    xml = b'<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>l</Location><Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>'
    assert (
        dialect_for("s3").parse_complete(response(200).headers, xml, bucket="b", key="k").etag
        == "3858f62230ac3c915f300c664312c11f-9"
    )
    bos = b'{"location":"l","bucket":"b","key":"k","eTag":"3858f62230ac3c915f300c664312c11f"}'
    assert (
        dialect_for("bos").parse_complete(response(200).headers, bos, bucket="b", key="k").etag
        == "3858f62230ac3c915f300c664312c11f"
    )


LIST_PARTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag><Size>10485760</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag><Size>10485760</Size></Part>
</ListPartsResult>"""


def test_list_parts_matches_botocore_and_oss2() -> None:
    from oss2 import xml_utils

    page = dialect_for("s3").parse_list_parts(LIST_PARTS)
    sdk = _botocore_parse("ListParts", LIST_PARTS)
    assert [(p.part_number, p.etag, p.size) for p in page.items] == [
        (p["PartNumber"], p["ETag"].strip('"'), p["Size"]) for p in sdk["Parts"]
    ]
    assert page.next_query == {"part-number-marker": str(sdk["NextPartNumberMarker"])}
    oss_body = LIST_PARTS.replace(b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', b"")
    oss_sdk = xml_utils.parse_list_parts(types.SimpleNamespace(parts=[]), oss_body)
    assert [
        (p.part_number, p.etag) for p in dialect_for("oss").parse_list_parts(oss_body).items
    ] == [(p.part_number, p.etag) for p in oss_sdk.parts]


def test_bos_list_parts_and_uploads() -> None:
    parts = json.dumps(
        {
            "bucket": "b",
            "key": "k",
            "uploadId": "u",
            "isTruncated": True,
            "nextPartNumberMarker": 1,
            "maxParts": 1,
            "parts": [
                {"partNumber": 1, "lastModified": "2024-01-02T03:04:05Z", "eTag": "abc", "size": 5}
            ],
        }
    ).encode()
    page = dialect_for("bos").parse_list_parts(parts)
    assert [(p.part_number, p.etag, p.size) for p in page.items] == [(1, "abc", 5)]
    assert page.next_query == {"partNumberMarker": "1"}
    uploads = json.dumps(
        {
            "bucket": "b",
            "isTruncated": False,
            "uploads": [{"key": "k ü", "uploadId": "u1", "initiated": "2024-01-02T03:04:05Z"}],
        }
    ).encode()
    upage = dialect_for("bos").parse_list_uploads(uploads)
    assert [(u.key, u.upload_id) for u in upage.items] == [("k ü", "u1")]
    assert upage.next_query is None


LIST_UPLOADS = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult>
  <Bucket>b</Bucket><EncodingType>url</EncodingType><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>k%20%2B2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>k%201</Key><UploadId>u1</UploadId><Initiated>2024-01-02T03:04:05.000Z</Initiated></Upload>
  <Upload><Key>k%20%2B2</Key><UploadId>u2</UploadId><Initiated>2024-01-02T03:04:05.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"""


def test_oss_list_uploads_matches_oss2() -> None:
    from oss2 import xml_utils

    page = dialect_for("oss").parse_list_uploads(LIST_UPLOADS)
    sdk = xml_utils.parse_list_multipart_uploads(
        types.SimpleNamespace(upload_list=[], prefix_list=[]), LIST_UPLOADS
    )
    assert [(u.key, u.upload_id) for u in page.items] == [
        (u.key, u.upload_id) for u in sdk.upload_list
    ]
    assert page.next_query == {
        "key-marker": sdk.next_key_marker,
        "upload-id-marker": sdk.next_upload_id_marker,
    }
    assert page.next_query == {"key-marker": "k +2", "upload-id-marker": "u2"}


def test_create_bucket_body_only_outside_us_east_1() -> None:
    assert dialect_for("s3").create_bucket_body("us-east-1") == (None, {})
    body, _ = dialect_for("s3").create_bucket_body("eu-west-1")
    assert b"<LocationConstraint>eu-west-1</LocationConstraint>" in (body or b"")
    assert dialect_for("bos").create_bucket_body("bj") == (None, {})


@pytest.mark.parametrize(
    ("scheme", "version", "name"),
    [
        ("s3", "v4", "s3-v4"),
        ("oss", "v1", "oss-v1"),
        ("oss", "v4", "oss-v4"),
        ("bos", "v4", "bce-v1"),
    ],
)
def test_signer_names(scheme: str, version: str, name: str) -> None:
    assert dialect_for(scheme).signer_name(version) == name


def test_virtual_hosted_local_store_is_dialled_at_its_own_address() -> None:
    endpoint = resolve_endpoint(
        Target.parse("s3://bkt"), "http://localhost:9000", addressing="virtual"
    )
    request = dialect_for("s3").request(endpoint, "GET", "bkt", "k")
    assert request.host == "bkt.localhost:9000"  # the Host header names the bucket
    assert request.url == "http://localhost:9000/k"  # the connection goes to the store itself


# --- the fast <Contents> reader gives exactly what the XML parser gives -----------------------

_KEY_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    min_size=1, max_size=30,
).filter(lambda k: all(ch >= " " or ch in "\t\n\r" for ch in k))  # fmt: skip


def _listing_page(
    entries: list[tuple[str, int, str]], pretty: bool, encode: bool, extra: str = ""
) -> bytes:
    from urllib.parse import quote
    from xml.sax.saxutils import escape as xml_escape

    gap = "\n    " if pretty else ""
    contents = "".join(
        f"<Contents>{gap}<Key>{xml_escape(quote(key) if encode else key, {chr(13): '&#13;'})}"
        f"</Key>{gap}"
        f"<LastModified>2024-01-02T03:04:05.000Z</LastModified>{gap}"
        f"<ETag>{xml_escape(etag, {chr(34): '&quot;'})}</ETag>{gap}{extra}<Size>{size}</Size>"
        f"{gap}<StorageClass>STANDARD</StorageClass>{gap}"
        f"<Owner><ID>o</ID><DisplayName>o</DisplayName></Owner></Contents>"
        for key, size, etag in entries
    )
    encoding = "<EncodingType>url</EncodingType>" if encode else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_XMLNS}">'
        f"<Name>b</Name><Prefix></Prefix>{encoding}<IsTruncated>true</IsTruncated>"
        f"<NextContinuationToken>t&amp;1</NextContinuationToken>{contents}"
        f"<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>"
    ).encode()


@given(
    entries=st.lists(
        st.tuples(_KEY_TEXT, st.integers(0, 10**12),
                  st.sampled_from(['"0cc175b9c0f1b6a831c399e269772661"', '"abc-3"', "plain", ""])),
        max_size=8,
    ),
    pretty=st.booleans(),
    encode=st.booleans(),
    extra=st.sampled_from(["", "<Type>Normal</Type>", "<ChecksumAlgorithm>CRC32</ChecksumAlgorithm> "]),
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_fast_contents_reader_equals_the_xml_parser(
    entries: list[tuple[str, int, str]], pretty: bool, encode: bool, extra: str
) -> None:
    from bulkput.remote.dialects.s3 import parse_xml, split_contents

    body = _listing_page(entries, pretty, encode, extra)
    # a plain page with objects takes the fast path (one without needs no shortcut)
    assert (split_contents(body) is not None) == bool(entries)
    for name in ("s3", "oss"):
        dialect = dialect_for(name)
        fast = dialect.parse_list_objects(body)
        slow_items = dialect._contents(parse_xml(body))  # type: ignore[attr-defined]
        assert fast.items == slow_items
        assert [(item.key, item.size) for item in fast.items] == [(k, n) for k, n, _ in entries]
    assert dialect_for("s3").parse_list_objects(body).next_query == {"continuation-token": "t&1"}


@pytest.mark.parametrize(
    "change",
    [
        (b"<Key>", b"<Key><![CDATA[", b"</Key>", b"]]></Key>"),  # CDATA
        (b"<Key>", b'<Key kind="x">', b"", b""),  # an attribute on a field
        (b"<ETag>", b"<ETag/><ETag>", b"", b""),  # a self-closing field
        (b"<Contents>", b"<s3:Contents>", b"</Contents>", b"</s3:Contents>"),  # a prefix
        (b"<Key>a&amp;b", b"<Key>a\rb", b"", b""),  # a raw CR, which XML turns into LF
        (b"<ETag>", b"<Size>1</Size><ETag>", b"", b""),  # fields in another order
    ],
    ids=["cdata", "attribute", "self-closing", "prefixed", "raw-cr", "other-order"],
)
def test_unusual_pages_take_the_xml_parser(change: tuple[bytes, bytes, bytes, bytes]) -> None:
    from bulkput.remote.dialects.s3 import split_contents

    old_open, new_open, old_close, new_close = change
    body = S3_LIST.replace(old_open, new_open)
    if old_close:
        body = body.replace(old_close, new_close)
    assert split_contents(body) is None
