"""Which service a request talks to, and each service's error codes."""

from __future__ import annotations

from bulkput.server.services import SERVICES, detect_service


def test_service_detection_by_authorization() -> None:
    assert detect_service("bce-auth-v1/ak/...", {}, {}).name == "bos"
    assert detect_service(None, {"authorization": "bce-auth-v1/..."}, {}).name == "bos"
    assert detect_service("OSS ak:sig", {}, {}).name == "oss"
    assert detect_service("OSS4-HMAC-SHA256 Credential=...", {}, {}).name == "oss"
    assert detect_service("AWS4-HMAC-SHA256 Credential=...", {}, {}).name == "s3"


def test_codes_per_service() -> None:
    assert SERVICES["oss"].error_spec("EntityTooLarge").code == "InvalidArgument"
    assert SERVICES["s3"].error_spec("EntityTooLarge").code == "EntityTooLarge"
    assert SERVICES["oss"].error_spec("KeyTooLongError").code == "InvalidObjectName"
    assert SERVICES["s3"].error_spec("MissingContentLength").status == 411
