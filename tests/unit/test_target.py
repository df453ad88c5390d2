"""Targets, endpoints, addressing, bucket and key rules."""

from __future__ import annotations

import pytest

from bulkput.errors import UsageError, ValidationError
from bulkput.remote.target import Target, resolve_endpoint, validate_bucket_name, validate_key


@pytest.mark.parametrize(
    ("url", "scheme", "bucket", "prefix"),
    [
        ("bos://my-bucket/photos/2024/", "bos", "my-bucket", "photos/2024/"),
        ("oss://bucket1/a", "oss", "bucket1", "a"),
        ("s3://data.example/", "s3", "data.example", ""),
        ("s3://abc", "s3", "abc", ""),
        ("S3://abc/x y/ü", "s3", "abc", "x y/ü"),
    ],
)
def test_parse_targets(url: str, scheme: str, bucket: str, prefix: str) -> None:
    target = Target.parse(url)
    assert (target.scheme, target.bucket, target.prefix) == (scheme, bucket, prefix)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("gs://bucket/x", "unknown scheme 'gs'"),
        ("bucket/prefix", "not a URL"),
        ("s3:///prefix", "names no bucket"),
        ("oss://Upper/x", "not valid for oss"),
        ("bos://a_b/x", "not valid for bos"),
        ("s3://ab/x", "3 to 63 characters"),
        ("s3://192.168.1.1/x", "IP address"),
        ("s3://a..b/x", "'..'"),
        ("oss://dotted.name/x", "not valid for oss"),
    ],
)
def test_bad_targets_are_usage_errors(url: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        Target.parse(url)
    assert fragment in str(info.value)
    assert info.value.exit_code == 2


def test_key_for_joins_with_one_slash() -> None:
    assert Target("s3", "b", "").key_for("a/b") == "a/b"
    assert Target("s3", "b", "p").key_for("a") == "p/a"
    assert Target("s3", "b", "p/").key_for("a") == "p/a"


def test_local_endpoint_is_path_style_with_port() -> None:
    endpoint = resolve_endpoint(Target.parse("oss://bkt/x"), "http://127.0.0.1:9000")
    assert endpoint.path_style
    assert endpoint.base_url == "http://127.0.0.1:9000"
    assert endpoint.bucket_host("bkt") == "127.0.0.1:9000"
    assert endpoint.region == "cn-hangzhou"


def test_localhost_is_path_style_and_default_port_is_dropped() -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), "https://localhost")
    assert endpoint.path_style and endpoint.port == 443
    assert endpoint.netloc == "localhost"


def test_named_host_is_virtual_hosted() -> None:
    endpoint = resolve_endpoint(Target.parse("bos://bkt"), "https://su.bcebos.com:8443")
    assert not endpoint.path_style
    assert endpoint.bucket_host("bkt") == "bkt.su.bcebos.com:8443"
    assert endpoint.region == "su"  # read from the host name


def test_addressing_override() -> None:
    target = Target.parse("s3://bkt")
    assert not resolve_endpoint(target, "http://127.0.0.1:1", addressing="virtual").path_style
    assert resolve_endpoint(target, "https://s3.example.com", addressing="path").path_style


@pytest.mark.parametrize(
    ("url", "region", "host", "bucket_host"),
    [
        (
            "oss://b1b",
            "cn-beijing",
            "oss-cn-beijing.aliyuncs.com",
            "b1b.oss-cn-beijing.aliyuncs.com",
        ),
        ("bos://b1b", "gz", "gz.bcebos.com", "b1b.gz.bcebos.com"),
        ("s3://b1b", "eu-west-1", "s3.eu-west-1.amazonaws.com", "b1b.s3.eu-west-1.amazonaws.com"),
    ],
)
def test_public_endpoints(url: str, region: str, host: str, bucket_host: str) -> None:
    endpoint = resolve_endpoint(Target.parse(url), None, region)
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("https", host, 443)
    assert endpoint.bucket_host("b1b") == bucket_host
    assert endpoint.region == region


def test_default_regions() -> None:
    assert resolve_endpoint(Target.parse("s3://bbb")).host == "s3.us-east-1.amazonaws.com"
    assert resolve_endpoint(Target.parse("oss://bbb")).region == "cn-hangzhou"


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:9000",
        "ftp://127.0.0.1",
        "http://127.0.0.1:9000/path",
        "http://:9000",
        "http://u:p@h",
    ],
)
def test_bad_endpoints(url: str) -> None:
    with pytest.raises(UsageError):
        resolve_endpoint(Target.parse("s3://bbb"), url)


def test_bad_endpoint_message_hides_credentials() -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(Target.parse("s3://bbb"), "http://user:hunter2@h")
    assert "hunter2" not in str(info.value)


def test_bucket_name_rules() -> None:
    validate_bucket_name("s3", "a.b-c")
    with pytest.raises(UsageError):
        validate_bucket_name("s3", "-abc")
    with pytest.raises(UsageError):
        validate_bucket_name("bos", "x" * 64)


def test_key_limits() -> None:
    assert validate_key("é" * 511, "oss") == ("é" * 511).encode()  # 1022 bytes
    validate_key("a" * 1024, "s3")  # S3 allows 1,024 bytes
    validate_key("é" * 512, "s3")
    with pytest.raises(ValidationError, match="1025 bytes of UTF-8; the limit on s3 is 1024"):
        validate_key("a" * 1025, "s3")
    validate_key("a" * 1023, "oss")
    for scheme in ("oss", "bos"):
        with pytest.raises(ValidationError, match=f"1024 bytes of UTF-8; the limit on {scheme} is 1023"):
            validate_key("a" * 1024, scheme)
    with pytest.raises(ValidationError, match="empty"):
        validate_key("", "bos")
    with pytest.raises(ValidationError, match="UTF-8"):
        validate_key("bad\udcffname", "s3")
    with pytest.raises(ValidationError, match="NUL"):
        validate_key("a\x00b", "s3")
    with pytest.raises(ValidationError, match="must not start"):
        validate_key("/abs", "oss")
    validate_key("/abs", "s3")  # S3 allows a leading slash


def test_bucket_domain_as_endpoint_is_not_doubled() -> None:
    endpoint = resolve_endpoint(
        Target.parse("oss://bkt"), "https://bkt.oss-cn-beijing.aliyuncs.com"
    )
    assert endpoint.host == "oss-cn-beijing.aliyuncs.com"
    assert endpoint.bucket_host("bkt") == "bkt.oss-cn-beijing.aliyuncs.com"
    assert endpoint.region == "cn-beijing"
