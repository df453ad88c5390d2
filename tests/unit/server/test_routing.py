"""The routing table of `bulkput serve`: one case per row and per rule before the table."""

from __future__ import annotations

import pytest

from bulkput.server.routing import ROUTES, Target, route_for

SVC, BKT, OBJ = Target.SERVICE, Target.BUCKET, Target.OBJECT


@pytest.mark.parametrize(
    ("method", "target", "params", "operation"),
    [
        ("GET", SVC, {}, "ListBuckets"),
        ("PUT", BKT, {}, "CreateBucket"),
        ("HEAD", BKT, {}, "HeadBucket"),
        ("DELETE", BKT, {}, "DeleteBucket"),
        ("GET", BKT, {"uploads": ""}, "ListMultipartUploads"),
        ("GET", BKT, {"location": ""}, "GetBucketLocation"),
        ("GET", BKT, {"list-type": "2", "prefix": "a/"}, "ListObjectsV2"),
        ("GET", BKT, {"prefix": "a/"}, "ListObjects"),
        ("POST", BKT, {"delete": ""}, "DeleteObjects"),
        ("PUT", OBJ, {"partNumber": "3", "uploadId": "u"}, "UploadPart"),
        ("PUT", OBJ, {}, "PutObject"),
        ("GET", OBJ, {"uploadId": "u"}, "ListParts"),
        ("GET", OBJ, {}, "GetObject"),
        ("HEAD", OBJ, {}, "HeadObject"),
        ("DELETE", OBJ, {"uploadId": "u"}, "AbortMultipartUpload"),
        ("DELETE", OBJ, {}, "DeleteObject"),
        ("POST", OBJ, {"uploads": ""}, "InitiateMultipartUpload"),
        ("POST", OBJ, {"uploadId": "u"}, "CompleteMultipartUpload"),
    ],
)
def test_each_row_of_the_table(
    method: str, target: Target, params: dict[str, str], operation: str
) -> None:
    route = route_for(method, target, params, {})
    assert route.operation == operation
    assert route in ROUTES


def test_every_row_is_tested() -> None:
    names = [r.operation for r in ROUTES]
    assert len(names) == len(set(names)) == 18


@pytest.mark.parametrize(
    ("method", "target", "params", "headers", "operation"),
    [
        ("GET", SVC, {"acl": ""}, {}, "ListBuckets"),  # sub-resources ignored on the account
        ("PUT", SVC, {}, {}, "MethodNotAllowed"),
        ("HEAD", SVC, {}, {}, "MethodNotAllowed"),
        ("GET", BKT, {"acl": ""}, {}, "NotImplemented"),
        ("GET", BKT, {"uploads": "", "tagging": ""}, {}, "ListMultipartUploads"),
        ("PUT", OBJ, {"tagging": ""}, {}, "NotImplemented"),
        ("PUT", OBJ, {}, {"x-amz-copy-source": "/b/k"}, "NotImplemented"),
        ("PUT", OBJ, {"partNumber": "1", "uploadId": "u"}, {"x-oss-copy-source": "/b/k"},
         "NotImplemented"),
        ("PATCH", OBJ, {}, {}, "NotImplemented"),
        ("POST", OBJ, {}, {}, "NotImplemented"),
        ("POST", BKT, {}, {}, "NotImplemented"),
    ],
)  # fmt: skip
def test_rules_before_the_table(
    method: str, target: Target, params: dict[str, str], headers: dict[str, str], operation: str
) -> None:
    assert route_for(method, target, params, headers).operation == operation
