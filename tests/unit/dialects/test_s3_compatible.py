"""``s3://`` at an endpoint that is not AWS's: storage classes AWS does not know are sent as
given, with one warning per class; at AWS's own endpoints they are still refused."""

from __future__ import annotations

import logging

import pytest

from bulkput.errors import ValidationError
from bulkput.remote.dialects import OssDialect, S3CompatibleDialect, S3Dialect, dialect_for_endpoint
from bulkput.remote.store import ObjectHeaders
from bulkput.remote.target import Target, resolve_endpoint


def test_a_custom_s3_endpoint_gets_its_own_compatible_dialect() -> None:
    target = Target.parse("s3://bkt")
    custom = resolve_endpoint(target, "https://obs.example.com")
    first, second = dialect_for_endpoint("s3", custom), dialect_for_endpoint("s3", custom)
    assert isinstance(first, S3CompatibleDialect) and first is not second  # warnings per store
    aws = resolve_endpoint(target, region="eu-west-1")
    assert type(dialect_for_endpoint("s3", aws)) is S3Dialect
    aws_given = resolve_endpoint(target, "https://s3.eu-west-1.amazonaws.com")
    assert type(dialect_for_endpoint("s3", aws_given)) is S3Dialect
    oss = resolve_endpoint(Target.parse("oss://bkt"), "https://oss.example.com")
    assert type(dialect_for_endpoint("oss", oss)) is OssDialect


def test_an_unknown_class_is_sent_as_given_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    dialect = S3CompatibleDialect()
    with caplog.at_level(logging.WARNING, logger="bulkput"):
        for key in ("a", "b", "c"):
            dialect.validate(key, ObjectHeaders(storage_class="WARM"))
        dialect.validate("d", ObjectHeaders(storage_class="COLD", content_type="text/plain"))
        dialect.validate("e", ObjectHeaders(storage_class="standard_ia"))  # AWS's: no warning
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "'WARM' is not one of AWS S3's" in warnings[0] and "'COLD'" in warnings[1]
    wire = dialect.object_headers(ObjectHeaders(storage_class="WARM"))
    assert wire["x-amz-storage-class"] == "WARM"
    assert dialect.object_headers(ObjectHeaders(storage_class="standard_ia"))[
        "x-amz-storage-class"
    ] == "STANDARD_IA"


def test_other_header_rules_still_hold_at_a_custom_endpoint() -> None:
    with pytest.raises(ValidationError, match="unknown ACL"):
        S3CompatibleDialect().validate("k", ObjectHeaders(acl="world-writable"))


def test_aws_endpoints_still_refuse_an_unknown_class() -> None:
    with pytest.raises(ValidationError, match="unknown storage class 'WARM' for s3"):
        S3Dialect().validate("k", ObjectHeaders(storage_class="WARM"))
