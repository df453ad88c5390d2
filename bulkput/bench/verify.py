"""After every run: list the bucket and compare it with the dataset.

The listing is streamed page by page into the same digest the dataset's stamp holds (sorted
``key<TAB>size<TAB>md5`` lines; the MD5 is compared through the ETag when every file of the
dataset is sent with a single PUT). A run whose listing differs in count, bytes, keys or MD5
is a failed run, whatever its exit code said. The listing also counts the objects written
after a given moment, so a re-sync that rewrote objects is caught on any server.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulkput.bench.datasets import Dataset, ListingDigest

if TYPE_CHECKING:
    from bulkput.bench.servers import RunningServer


def s3_client(server: RunningServer) -> Any:
    """A boto3 S3 client for the server (every store the harness runs speaks S3)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )


@dataclass(frozen=True)
class Verification:
    ok: bool
    objects: int
    bytes: int
    message: str
    written_after: int | None = None  # objects whose LastModified is at or after `since`


def verify_listing(server: RunningServer, dataset: Dataset,
                   since: dt.datetime | None = None) -> Verification:
    """List the whole bucket and check it holds exactly the dataset."""
    digest = ListingDigest(with_md5=dataset.md5_checked)
    written_after = 0
    try:
        pages = s3_client(server).get_paginator("list_objects_v2").paginate(
            Bucket=server.bucket, PaginationConfig={"PageSize": 1000})
        for page in pages:
            for entry in page.get("Contents", ()):
                digest.add(entry["Key"], int(entry["Size"]), entry.get("ETag"))
                if since is not None and entry["LastModified"] >= since:
                    written_after += 1
    except Exception as exc:  # any listing failure makes the run unverifiable, hence failed
        return Verification(False, digest.count, digest.bytes,
                            f"listing failed: {exc.__class__.__name__}: {exc}")
    problems = []
    if digest.count != dataset.files:
        problems.append(f"{digest.count} objects, expected {dataset.files}")
    if digest.bytes != dataset.bytes:
        problems.append(f"{digest.bytes} bytes, expected {dataset.bytes}")
    if digest.out_of_order:
        problems.append("listing not in key order")
    if not problems and digest.hexdigest() != dataset.listing_digest:
        what = "keys, sizes or MD5s" if dataset.md5_checked else "keys or sizes"
        problems.append(f"{what} differ from the dataset")
    return Verification(not problems, digest.count, digest.bytes,
                        "; ".join(problems) or "listing matches the dataset",
                        written_after if since is not None else None)
