"""The providers' region table and host names (bulkput.remote.regions), through
resolve_endpoint: which host a region builds, which region a host implies, which addressing
style each endpoint gets, and unknown regions refused with "did you mean"."""

from __future__ import annotations

import pytest

from bulkput.errors import UsageError
from bulkput.remote.regions import ServiceHost, parse_service_host
from bulkput.remote.target import Target, path_style_addressing, resolve_endpoint


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "s3.us-east-1.amazonaws.com"),
        ("cn-north-1", "s3.cn-north-1.amazonaws.com.cn"),  # aws-cn
        ("cn-northwest-1", "s3.cn-northwest-1.amazonaws.com.cn"),
        ("us-gov-west-1", "s3.us-gov-west-1.amazonaws.com"),  # aws-us-gov
    ],
)
def test_s3_region_builds_its_partitions_host(region: str, host: str) -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), None, region)
    assert (endpoint.host, endpoint.region, endpoint.path_style) == (host, region, False)


@pytest.mark.parametrize(
    ("endpoint_url", "region"),
    [
        ("https://s3.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1"),
        ("https://s3.amazonaws.com.cn", "cn-north-1"),
        ("https://s3.dualstack.eu-west-2.amazonaws.com", "eu-west-2"),
        ("https://s3-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("https://s3-fips.dualstack.us-east-2.amazonaws.com", "us-east-2"),
        ("https://s3-us-west-2.amazonaws.com", "us-west-2"),  # legacy dash form
        ("https://bkt.s3.ap-south-1.amazonaws.com", "ap-south-1"),  # bucket domain
    ],
)
def test_s3_endpoint_implies_its_region(endpoint_url: str, region: str) -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), endpoint_url)
    assert endpoint.region == region
    assert endpoint.region_known
    assert not endpoint.path_style  # AWS's own hosts are virtual-hosted


@pytest.mark.parametrize(
    "endpoint_url", ["https://s3-accelerate.amazonaws.com", "https://s3-accelerate.dualstack.amazonaws.com"]
)
def test_accelerate_signs_with_the_buckets_region(endpoint_url: str) -> None:
    target = Target.parse("s3://bkt")
    given = resolve_endpoint(target, endpoint_url, "eu-central-1")
    assert (given.host, given.region) == (endpoint_url.removeprefix("https://"), "eu-central-1")
    guessed = resolve_endpoint(target, endpoint_url)
    assert guessed.region == "us-east-1" and not guessed.region_known  # never "accelerate"


def test_the_global_s3_host_implies_no_region() -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), "https://s3.amazonaws.com")
    assert endpoint.region == "us-east-1" and not endpoint.region_known
    assert endpoint.for_region("eu-west-1").host == "s3.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("endpoint_url", "region", "host"),
    [
        (None, "cn-north-1", "s3.cn-north-1.amazonaws.com.cn"),
        ("https://s3.dualstack.us-east-1.amazonaws.com", "eu-west-1", "s3.dualstack.eu-west-1.amazonaws.com"),
        ("https://s3-fips.us-east-1.amazonaws.com", "us-west-2", "s3-fips.us-west-2.amazonaws.com"),
        ("https://s3-accelerate.amazonaws.com", "eu-west-1", "s3-accelerate.amazonaws.com"),
        ("http://127.0.0.1:9000", "eu-west-1", "127.0.0.1"),
    ],
)
def test_endpoint_for_another_region_keeps_its_variant(
    endpoint_url: str | None, region: str, host: str
) -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), endpoint_url).for_region(region)
    assert (endpoint.host, endpoint.region, endpoint.region_known) == (host, region, True)


def test_oss_internal_endpoint_for_another_region() -> None:
    endpoint = resolve_endpoint(Target.parse("oss://bkt"), "http://oss-cn-hangzhou-internal.aliyuncs.com:8080")
    moved = endpoint.for_region("cn-beijing")
    assert (moved.scheme, moved.host, moved.port) == ("http", "oss-cn-beijing-internal.aliyuncs.com", 8080)


def test_oss_region_with_ossutils_prefix() -> None:
    endpoint = resolve_endpoint(Target.parse("oss://bkt"), None, "oss-cn-beijing")
    assert endpoint.host == "oss-cn-beijing.aliyuncs.com"
    assert endpoint.region == "cn-beijing"


@pytest.mark.parametrize(
    ("endpoint_url", "region", "variant"),
    [
        ("https://oss-cn-shanghai-internal.aliyuncs.com", "cn-shanghai", "internal"),
        ("https://oss-cn-wuhan-lr.aliyuncs.com", "cn-wuhan-lr", "regional"),
        ("https://bkt.oss-ap-southeast-1.aliyuncs.com", "ap-southeast-1", "regional"),
    ],
)
def test_oss_endpoint_implies_its_region(endpoint_url: str, region: str, variant: str) -> None:
    endpoint = resolve_endpoint(Target.parse("oss://bkt"), endpoint_url)
    assert endpoint.region == region
    assert endpoint.service == ServiceHost("oss", variant, region)
    assert not endpoint.path_style


@pytest.mark.parametrize(
    "endpoint_url", ["https://oss-accelerate.aliyuncs.com", "https://oss-accelerate-overseas.aliyuncs.com"]
)
def test_oss_accelerate_signs_with_the_buckets_region(endpoint_url: str) -> None:
    target = Target.parse("oss://bkt")
    assert resolve_endpoint(target, endpoint_url, "oss-cn-beijing").region == "cn-beijing"
    guessed = resolve_endpoint(target, endpoint_url)
    assert guessed.region == "cn-hangzhou" and not guessed.region_known


@pytest.mark.parametrize("region", ["bj", "bd", "su", "gz", "cd", "hkg", "fwh", "fsh"])
def test_bos_regions(region: str) -> None:
    endpoint = resolve_endpoint(Target.parse("bos://bkt"), None, region)
    assert endpoint.host == f"{region}.bcebos.com"


@pytest.mark.parametrize(
    ("url", "region", "suggestion"),
    [
        ("oss://bkt", "cn-hangzho", "cn-hangzhou"),
        ("oss://bkt", "oss-cn-bejing", "cn-beijing"),
        ("s3://bkt", "us-est-1", "us-east-1"),
        ("s3://bkt", "eu-wset-1", "eu-west-1"),
        ("bos://bkt", "gzz", "gz"),
    ],
)
def test_unknown_region_is_a_usage_error_with_did_you_mean(
    url: str, region: str, suggestion: str
) -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(Target.parse(url), None, region)
    message = str(info.value)
    assert "did you mean" in message and suggestion in message.split("did you mean")[1]
    assert info.value.exit_code == 2


def test_unknown_region_on_an_accelerate_host_is_refused() -> None:
    with pytest.raises(UsageError, match="did you mean eu-west-1"):
        resolve_endpoint(Target.parse("s3://bkt"), "https://s3-accelerate.amazonaws.com", "eu-wst-1")


def test_any_region_goes_with_a_custom_endpoint() -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), "http://127.0.0.1:9000", "my-lab-2")
    assert endpoint.region == "my-lab-2" and endpoint.region_known


def test_a_custom_endpoints_region_is_only_a_guess_when_not_given() -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), "http://minio.internal:9000")
    assert endpoint.region == "us-east-1" and not endpoint.region_known
    assert endpoint.service is None


def test_non_provider_hosts_parse_to_none() -> None:
    assert parse_service_host("s3", "minio.example.com") is None
    assert parse_service_host("s3", "s3.bj.bcebos.com") is None
    assert parse_service_host("bos", "s3.bj.bcebos.com") is None  # BOS's S3 gateway
    assert parse_service_host("oss", "oss.example.com") is None


# path_style_addressing: one test per row of its truth table, in order.
_AWS = ServiceHost("s3", "regional", "us-east-1")
_ACCEL = ServiceHost("s3", "accelerate", None)
_OSS = ServiceHost("oss", "regional", "cn-beijing")


@pytest.mark.parametrize(
    ("row", "args", "expected"),
    [
        ("path forces path", ("s3", "s3.us-east-1.amazonaws.com", _AWS, "bkt", True, "path"), True),
        ("virtual forces virtual", ("s3", "127.0.0.1", None, "bkt", False, "virtual"), False),
        ("IP or localhost", ("oss", "127.0.0.1", None, "bkt", False, "auto"), True),
        ("custom s3 host", ("s3", "minio.lan", None, "bkt", False, "auto"), True),
        ("dotted bucket over https", ("s3", "s3.us-east-1.amazonaws.com", _AWS, "a.b", True, "auto"), True),
        ("dotted bucket on accelerate", ("s3", "s3-accelerate.amazonaws.com", _ACCEL, "a.b", True, "auto"), False),
        ("AWS host", ("s3", "s3.us-east-1.amazonaws.com", _AWS, "bkt", True, "auto"), False),
        ("OSS host", ("oss", "oss-cn-beijing.aliyuncs.com", _OSS, "bkt", True, "auto"), False),
        ("custom OSS host (a CNAME)", ("oss", "files.example.com", None, "bkt", True, "auto"), False),
    ],
)
def test_addressing_rule(row: str, args: tuple, expected: bool) -> None:
    assert path_style_addressing(*args) is expected, row


def test_custom_s3_endpoint_defaults_to_path_style() -> None:
    endpoint = resolve_endpoint(Target.parse("s3://bkt"), "http://myhost:9000")
    assert endpoint.path_style
    assert endpoint.bucket_host("bkt") == "myhost:9000"
