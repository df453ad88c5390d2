"""Aliyun OSS signature V1: ``OSS {ak}:base64(HMAC-SHA1(sk, string_to_sign))``.

String to sign: ``VERB\\nContent-MD5\\nContent-Type\\nDate\\n`` + the ``x-oss-*`` headers
(lower-case, sorted, ``name:value\\n``) + ``/bucket/key`` with the key raw, then the
sub-resources (a fixed set of query names, sorted, raw) after ``?``.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Iterable, Mapping
from datetime import datetime

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing._encoding import PreparedHmac, SmallCache, http_date, utf8
from bulkput.remote.signing.base import SignableRequest

TOKEN_HEADER = "x-oss-security-token"

# Query names that are part of the signed resource (oss2 ProviderAuth._subresource_key_set).
SUBRESOURCES = frozenset(
    [
        "response-content-type", "response-content-language", "response-cache-control",
        "logging", "response-content-encoding", "acl", "uploadId", "uploads", "partNumber",
        "group", "link", "delete", "website", "location", "objectInfo", "objectMeta",
        "response-expires", "response-content-disposition", "cors", "lifecycle", "restore",
        "qos", "referer", "stat", "bucketInfo", "append", "position", "security-token", "live",
        "comp", "status", "vod", "startTime", "endTime", "x-oss-process", "symlink", "callback",
        "callback-var", "tagging", "encryption", "versions", "versioning", "versionId", "policy",
        "requestPayment", "x-oss-traffic-limit", "qosInfo", "asyncFetch", "x-oss-request-payer",
        "sequential", "inventory", "inventoryId", "continuation-token", "worm", "wormId",
        "wormExtend", "replication", "replicationLocation", "replicationProgress",
        "transferAcceleration", "cname", "metaQuery", "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-ac-forward-allow", "resourceGroup",
        "style", "styleName", "x-oss-async-process", "regionList",
        "x-oss-write-get-object-response", "bucketArchiveDirectRead", "httpsConfig",
        "redundancyTransition", "x-oss-target-redundancy-type",
        "x-oss-redundancy-transition-taskid", "accessPoint", "accessPointPolicy",
        "publicAccessBlock", "x-oss-access-point-name", "requesterQosInfo", "qosRequester",
        "resourcePoolInfo", "resourcePool", "resourcePoolBuckets",
    ]
)  # fmt: skip


class OssV1Signer:
    """OSS V1 (HMAC-SHA1). ``sign`` adds ``date`` (and ``x-oss-security-token``)."""

    name = "oss-v1"

    def __init__(self) -> None:
        # HMAC-SHA1 keyed by the secret itself: prepared once per credentials
        self._keys: SmallCache[Credentials, PreparedHmac] = SmallCache()

    def __repr__(self) -> str:
        return "OssV1Signer()"

    def sign(
        self, request: SignableRequest, credentials: Credentials, now: datetime
    ) -> dict[str, str]:
        added = {"date": http_date(now)}
        if credentials.session_token:
            added[TOKEN_HEADER] = credentials.session_token
        headers = {**request.headers, **added}
        added["authorization"] = self.authorization(request, credentials, headers)
        return added

    def authorization(
        self, request: SignableRequest, credentials: Credentials, headers: Mapping[str, str]
    ) -> str:
        """Authorization over ``headers`` exactly as sent (lower-case names, with the date)."""
        string_to_sign = self.string_to_sign(request, headers)
        prepared = self._keys.get(credentials)
        if prepared is None:
            prepared = PreparedHmac(utf8(credentials.secret_key, "the secret key"), "sha1")
            self._keys.put(credentials, prepared)
        digest = prepared.digest(utf8(string_to_sign, "the request"))
        return f"OSS {credentials.access_key}:{b2a_base64(digest, newline=False).decode('ascii')}"

    @staticmethod
    def string_to_sign(request: SignableRequest, headers: Mapping[str, str]) -> str:
        oss_headers = sorted(
            (name, value) for name, value in headers.items() if name.startswith("x-oss-")
        )
        canonical_headers = "".join(f"{name}:{value}\n" for name, value in oss_headers)
        date = headers.get("x-oss-date") or headers.get("date", "")
        return (
            f"{request.method}\n{headers.get('content-md5', '')}\n"
            f"{headers.get('content-type', '')}\n{date}\n{canonical_headers}"
            f"{canonical_resource(request.bucket, request.key, request.query)}"
        )


def canonical_resource(
    bucket: str | None, key: str | None, query: Iterable[tuple[str, str | None]]
) -> str:
    """``/bucket/key`` (raw) or ``/``, then ``?`` and the sorted sub-resources."""
    resource = f"/{bucket}/{key or ''}" if bucket else "/"
    subresources = [(name, value) for name, value in query if name in SUBRESOURCES]
    if not subresources:
        return resource
    subresources.sort(key=lambda pair: pair[0])  # by name only, stable, as oss2 does
    return (
        resource
        + "?"
        + "&".join(f"{name}={value}" if value else name for name, value in subresources)
    )
