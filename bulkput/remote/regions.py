"""The providers' regions and service host names: which host serves a region, which region a
host name implies, and whether a region name is one the provider has.

A :class:`ServiceHost` is one of a provider's own host names read back: its ``variant`` (the
plain regional host, dual-stack, FIPS, internal, or a transfer-acceleration host that serves
every region) and the region the name implies, if any. Hosts that are not the provider's
(MinIO, Ceph, a CNAME) parse to None: bulkput then trusts the user's region as given.

S3 host names, after an optional ``BUCKET.`` (virtual-hosted names) and before the partition's
suffix (``amazonaws.com``; ``amazonaws.com.cn`` for aws-cn):

======================================  ======================  ================================
host                                    variant                 region implied
======================================  ======================  ================================
``s3`` (legacy global host)             global                  none (cn: cn-north-1)
``s3.R`` / ``s3-R`` (legacy)            regional                R (``s3-external-1``: us-east-1)
``s3.dualstack.R``                      dualstack               R
``s3-fips.R`` / ``s3-fips-R``           fips                    R
``s3-fips.dualstack.R``                 fips-dualstack          R
``s3-accelerate[.dualstack]``           accelerate[-dualstack]  none
======================================  ======================  ================================

Where no region is implied, the region given (or found, see
:meth:`bulkput.remote.target.Endpoint.for_region`) signs the requests.

OSS: ``oss-R`` (regional), ``oss-R-internal`` (internal), ``oss-accelerate`` and
``oss-accelerate-overseas`` (no region) under ``aliyuncs.com``; ossutil's region spelling
``oss-cn-beijing`` is the same region as ``cn-beijing``. BOS: ``R.bcebos.com``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bulkput.errors import UsageError
from bulkput.suggest import did_you_mean

# Region used when nobody names one, per provider (the providers' own SDK defaults).
DEFAULT_REGION = {"bos": "bj", "oss": "cn-hangzhou", "s3": "us-east-1"}

# The regions each provider serves from its public endpoints. A region not listed here can
# still be used with an explicit ``--endpoint`` (bulkput then signs for it as given).
AWS_PARTITIONS: dict[str, tuple[str, ...]] = {
    "aws": (
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "af-south-1",
        "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-7",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ca-central-1", "ca-west-1",
        "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "eu-south-1", "eu-south-2", "eu-north-1",
        "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
    ),
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
    "aws-us-gov": ("us-gov-west-1", "us-gov-east-1"),
}  # fmt: skip
KNOWN_REGIONS: dict[str, tuple[str, ...]] = {
    "s3": tuple(region for regions in AWS_PARTITIONS.values() for region in regions),
    "oss": (
        "cn-hangzhou", "cn-shanghai", "cn-nanjing", "cn-fuzhou", "cn-wuhan-lr", "cn-qingdao",
        "cn-beijing", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu", "cn-shenzhen",
        "cn-heyuan", "cn-guangzhou", "cn-chengdu", "cn-hongkong",
        "us-west-1", "us-east-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1",
        "ap-southeast-3", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
        "eu-central-1", "eu-west-1", "me-east-1", "me-central-1",
    ),
    "bos": ("bj", "bd", "su", "gz", "cd", "hkg", "fwh", "fsh"),
}  # fmt: skip
PROVIDER_NAME = {"bos": "BOS", "oss": "OSS", "s3": "AWS S3"}

_AWS_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+"
_S3_HOST = re.compile(
    r"(?:^|\.)(?:"
    r"(?P<accelerate>s3-accelerate)(?P<accel_dual>\.dualstack)?"
    r"|s3(?P<fips>-fips)?(?:[.-](?P<dual>dualstack))?[.-](?P<region>" + _AWS_REGION + r"|external-1)"
    r"|(?P<global>s3)"
    r")$"
)
_S3_SUFFIX = re.compile(r"\.amazonaws\.com(?P<cn>\.cn)?$")
_OSS_HOST = re.compile(
    r"(?:^|\.)(?:(?P<accelerate>oss-accelerate(?:-overseas)?)"
    r"|oss-(?P<region>[a-z]{2}-[a-z0-9-]+?)(?P<internal>-internal)?)\.aliyuncs\.com$"
)
_BOS_HOST = re.compile(r"^(?:(?P<first>[^.]+)\.)?(?P<region>[a-z]+)\.bcebos\.com$")


@dataclass(frozen=True, slots=True)
class ServiceHost:
    """One of a provider's own host names: its variant and the region it implies (None for a
    host that serves every region, whose requests are signed with the bucket's region)."""

    scheme: str
    variant: str
    region: str | None

    @property
    def regional(self) -> bool:
        """True when the host serves one region (accelerate hosts serve every region)."""
        return not self.variant.startswith("accelerate")

    def host_for(self, region: str) -> str:
        """The host of this variant serving ``region`` (the same host when it serves all)."""
        return service_host(self.scheme, region, self.variant)


def aws_partition(region: str) -> str:
    """``aws``, ``aws-cn`` or ``aws-us-gov`` (by the region's shape when it is not listed)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def service_host(scheme: str, region: str, variant: str = "regional") -> str:
    """The provider's host name of ``variant`` for ``region``."""
    if scheme == "s3":
        suffix = "amazonaws.com.cn" if aws_partition(region) == "aws-cn" else "amazonaws.com"
        template = {
            "regional": "s3.{r}.{s}",
            "global": "s3.{r}.{s}",  # re-resolved for a region: the regional host
            "dualstack": "s3.dualstack.{r}.{s}",
            "fips": "s3-fips.{r}.{s}",
            "fips-dualstack": "s3-fips.dualstack.{r}.{s}",
            "accelerate": "s3-accelerate.amazonaws.com",
            "accelerate-dualstack": "s3-accelerate.dualstack.amazonaws.com",
        }[variant]
        return template.format(r=region, s=suffix)
    if scheme == "oss":
        return {
            "regional": "oss-{r}.aliyuncs.com",
            "internal": "oss-{r}-internal.aliyuncs.com",
            "accelerate": "oss-accelerate.aliyuncs.com",
            "accelerate-overseas": "oss-accelerate-overseas.aliyuncs.com",
        }[variant].format(r=region)
    if scheme == "bos":
        return f"{region}.bcebos.com"
    raise ValueError(f"unknown scheme {scheme!r}")


def parse_service_host(scheme: str, host: str) -> ServiceHost | None:
    """What ``host`` says when it is one of the provider's own names (a leading ``BUCKET.``
    allowed), else None."""
    host = host.lower().rstrip(".")
    if scheme == "s3":
        return _parse_s3_host(host)
    if scheme == "oss":
        match = _OSS_HOST.search(host)
        if match is None:
            return None
        if match["accelerate"]:
            return ServiceHost("oss", match["accelerate"].removeprefix("oss-"), None)
        return ServiceHost("oss", "internal" if match["internal"] else "regional", match["region"])
    if scheme == "bos":
        match = _BOS_HOST.search(host)
        if match is None or match["first"] == "s3":  # s3.R.bcebos.com: BOS's S3 gateway
            return None
        return ServiceHost("bos", "regional", match["region"])
    raise ValueError(f"unknown scheme {scheme!r}")


def _parse_s3_host(host: str) -> ServiceHost | None:
    suffix = _S3_SUFFIX.search(host)
    if suffix is None:
        return None
    china = bool(suffix["cn"])
    match = _S3_HOST.search(host[: suffix.start()])
    if match is None:
        return None
    if match["accelerate"]:
        return ServiceHost("s3", "accelerate-dualstack" if match["accel_dual"] else "accelerate", None)
    if match["global"]:
        # the legacy global host: aws-cn has one region to imply; on aws the bucket may be
        # anywhere (it answers with the bucket's region)
        return ServiceHost("s3", "global", "cn-north-1" if china else None)
    region = "us-east-1" if match["region"] == "external-1" else match["region"]
    if match["fips"]:
        variant = "fips-dualstack" if match["dual"] else "fips"
    else:
        variant = "dualstack" if match["dual"] else "regional"
    return ServiceHost("s3", variant, region)


def bucket_domain_service_host(scheme: str, host: str, bucket: str) -> str | None:
    """``host`` without its leading ``BUCKET.`` when it is the console's "bucket domain" of
    ``bucket`` on one of the provider's hosts (``bkt.oss-cn-beijing.aliyuncs.com``), else None."""
    prefix = f"{bucket}."
    if host.startswith(prefix) and parse_service_host(scheme, host[len(prefix) :]) is not None:
        return host[len(prefix) :]
    return None


def normalize_region(scheme: str, region: str) -> str:
    """``region`` as the provider signs it: trimmed, lower case, and for OSS without ossutil's
    ``oss-`` prefix (``oss-cn-beijing`` is ``cn-beijing``)."""
    region = region.strip().lower()
    if scheme == "oss":
        region = region.removeprefix("oss-")
    return region


def check_region(scheme: str, region: str) -> None:
    """Raise UsageError (with "did you mean") when ``region`` is not one the provider serves
    from its public endpoints."""
    known = KNOWN_REGIONS[scheme]
    if region in known:
        return
    hint = did_you_mean(region, known) or f"known: {', '.join(known)}."
    raise UsageError(
        f"region {region!r} is not a region of {PROVIDER_NAME[scheme]}; {hint} "
        "(for another region give --endpoint URL)"
    )
