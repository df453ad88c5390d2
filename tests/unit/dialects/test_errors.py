"""Error answers in the three formats, parsed by the dialects and mapped by error_from_response."""

from __future__ import annotations

import base64
import json

import pytest

from bulkput.errors import (
    AuthError,
    NotFoundError,
    RemoteError,
    ServiceError,
    ThrottledError,
)
from bulkput.remote.dialects import dialect_for
from bulkput.remote.transport import response

# (code, status, class, retryable, fatal for the job)
CASES = [
    ("InvalidAccessKeyId", 403, AuthError, False, True),
    ("SignatureDoesNotMatch", 403, AuthError, False, True),
    ("AccessDenied", 403, AuthError, False, True),
    ("NoSuchBucket", 404, NotFoundError, False, True),
    ("NoSuchKey", 404, NotFoundError, False, False),
    ("NoSuchUpload", 404, NotFoundError, False, False),
    ("InvalidObjectName", 400, ServiceError, False, False),
    ("KeyTooLongError", 400, ServiceError, False, False),
    ("InvalidArgument", 400, ServiceError, False, False),
    ("InvalidDigest", 400, ServiceError, False, False),
    ("MetadataTooLarge", 400, ServiceError, False, False),
    ("MissingContentLength", 411, ServiceError, False, False),
    ("RequestTimeout", 400, ServiceError, True, False),
    ("BadDigest", 400, ServiceError, True, False),
    ("RequestTimeTooSkewed", 403, ServiceError, True, False),
    ("RequestExpired", 403, ServiceError, True, False),
    ("InternalError", 500, ServiceError, True, False),
    ("SlowDown", 503, ThrottledError, True, False),
    ("ServiceUnavailable", 503, ThrottledError, True, False),
    ("RequestLimitExceeded", 400, ThrottledError, True, False),
]


def s3_body(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>m {code}</Message><Key>k</Key>"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>host</HostId></Error>"
    ).encode()


def oss_body(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error>\n  <Code>{code}</Code>\n  <Message>m {code}</Message>\n"
        "  <RequestId>5C3D9175B6FC201293AD****</RequestId>\n  <HostId>b.oss-cn-hangzhou.aliyuncs.com</HostId>\n"
        "  <EC>0002-00000040</EC>\n</Error>\n"
    ).encode()


def bos_body(code: str) -> bytes:
    return json.dumps(
        {"code": code, "message": f"m {code}", "requestId": "ae2225f7-1c2e-427a-a1ad"}
    ).encode()


BODIES = {"s3": s3_body, "oss": oss_body, "bos": bos_body}
REQUEST_ID_HEADERS = {
    "s3": "x-amz-request-id",
    "oss": "x-oss-request-id",
    "bos": "x-bce-request-id",
}


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
@pytest.mark.parametrize(("code", "status", "cls", "retryable", "fatal"), CASES)
def test_error_bodies_map_to_the_tree(
    scheme: str, code: str, status: int, cls: type[RemoteError], retryable: bool, fatal: bool
) -> None:
    answer = response(status, {REQUEST_ID_HEADERS[scheme]: "RID-1"}, BODIES[scheme](code))
    error = dialect_for(scheme).error(
        answer.status, answer.headers, answer.body, bucket="b", key="k"
    )
    assert type(error) is cls
    assert (error.code, error.status, error.request_id) == (code, status, "RID-1")
    assert (error.retryable, error.fatal_for_job) == (retryable, fatal)
    assert error.message == f"m {code}"
    assert (error.bucket, error.key) == ("b", "k")


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
def test_request_id_from_body_when_header_missing(scheme: str) -> None:
    error = dialect_for(scheme).error(500, response(500).headers, BODIES[scheme]("InternalError"))
    assert error.request_id
    assert error.retryable


def test_oss_bodiless_answer_reads_x_oss_err() -> None:
    encoded = base64.b64encode(oss_body("NoSuchBucket")).decode()
    answer = response(
        404, {"x-oss-err": encoded, "x-oss-request-id": "R", "x-oss-ec": "0015-00000101"}
    )
    error = dialect_for("oss").error(answer.status, answer.headers, b"")
    assert type(error) is NotFoundError
    assert error.code == "NoSuchBucket" and error.fatal_for_job


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (404, NotFoundError, False),
        (403, AuthError, False),
        (500, ServiceError, True),
        (502, ServiceError, True),
        (503, ThrottledError, True),
        (429, ThrottledError, True),
        (408, ServiceError, True),
        (400, ServiceError, False),
    ],
)
@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
def test_bodiless_answers_map_by_status(
    scheme: str, status: int, cls: type[RemoteError], retryable: bool
) -> None:
    error = dialect_for(scheme).error(status, response(status).headers, b"")
    assert type(error) is cls
    assert error.retryable == retryable
    assert error.code == f"HTTP{status}"


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
def test_foreign_body_keeps_status_and_a_snippet(scheme: str) -> None:
    body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    error = dialect_for(scheme).error(502, response(502).headers, body)
    assert type(error) is ServiceError and error.retryable
    assert "502 Bad Gateway" in error.message
