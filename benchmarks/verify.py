"""After every run: list the bucket and compare it with the dataset.

The listing is streamed page by page into the same digest the dataset's stamp holds (sorted
``key<TAB>size<TAB>md5`` lines; the MD5 is compared through the ETag when every file of the
dataset is sent with a single PUT). A run whose listing differs in count, bytes, keys or MD5
is a failed run, whatever its exit code said. The listing also counts the objects written
after a given moment, so a re-sync that rewrote objects is caught on any server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.datasets import Dataset, ListingDigest
from benchmarks.servers import RunningServer, s3_client
from bulkput.local.digest import md5_file


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
    read_back = 0
    try:
        client = s3_client(server)
        for entry in _listed(client, server.bucket):
            etag = _listed_etag(entry)
            if not etag and dataset.md5_checked:
                # A store may list an object without its ETag (rclone's directory backend
                # does, now and then): read the object back instead of failing the run.
                etag = _object_md5(client, server.bucket, entry["Key"])
                read_back += 1
            digest.add(entry["Key"], int(entry["Size"]), etag)
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
        problems.append(_describe_difference(server, dataset) or f"{what} differ from the dataset")
    matches = "listing matches the dataset"
    if read_back:
        matches += f" ({read_back} listed without an ETag, read back and hashed)"
    return Verification(not problems, digest.count, digest.bytes,
                        "; ".join(problems) or matches,
                        written_after if since is not None else None)


def _describe_difference(server: RunningServer, dataset: Dataset) -> str | None:
    """Which objects differ, and how (a second listing, each entry checked against its file).

    Only for a dataset of files (a manifest's keys are not file paths) and only after the digest
    already said the run failed; one file is read at a time, so memory stays flat.
    """
    if dataset.manifest is not None:
        return None
    unknown = wrong_size = wrong_md5 = 0
    examples: list[str] = []
    try:
        client = s3_client(server)
        for entry in _listed(client, server.bucket):
            key, size = entry["Key"], int(entry["Size"])
            path = dataset.source_dir / key
            if not path.is_file():
                unknown += 1
                problem = f"{key}: not in the dataset"
            elif path.stat().st_size != size:
                wrong_size += 1
                problem = f"{key}: {size} bytes, file has {path.stat().st_size}"
            elif dataset.md5_checked and (
                etag := _listed_etag(entry).lower() or _object_md5(client, server.bucket, key)
            ) != _file_md5(path):
                wrong_md5 += 1
                problem = f"{key}: ETag {etag} is not the file's MD5"
            else:
                continue
            if len(examples) < 2:
                examples.append(problem)
    except Exception:  # the first listing worked; a failing second one only loses the detail
        return None
    counts = [f"{n} object{'s' * (n != 1)} {what}" for n, what in (
        (unknown, "not in the dataset"), (wrong_size, "of the wrong size"),
        (wrong_md5, "whose ETag is not the file's MD5")) if n]  # fmt: skip
    if not counts:
        return None
    return ", ".join(counts) + " (e.g. " + "; ".join(examples) + ")"


def _listed(client: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Every entry of the bucket's listing, page by page."""
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1000})
    for page in pages:
        yield from page.get("Contents", ())


def _listed_etag(entry: dict[str, Any]) -> str:
    return str(entry.get("ETag") or "").strip('"')


def _file_md5(path: Path) -> str:
    return md5_file(str(path))[0].hex()


def _object_md5(client: Any, bucket: str, key: str) -> str:
    digest = hashlib.md5()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    while chunk := body.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def verify_directory(bucket_dir: Path, dataset: Dataset) -> Verification:
    """Check the files a directory-backed store wrote (``rclone serve s3 DIR``) against the dataset.

    What the backend holds is what is stored. rclone's S3 front end can keep a stale entry in
    its directory cache after concurrent PUTs race its temp-file renames ("Dir.Rename error" in
    its log): the listing then shows an object without an ETag whose GET breaks off, while the
    file on disk is complete. Keys are sorted in memory: the datasets on this backend are small.
    """
    digest = ListingDigest(with_md5=dataset.md5_checked)
    keys = sorted(
        (p.relative_to(bucket_dir).as_posix() for p in bucket_dir.rglob("*") if p.is_file()),
        key=str.encode,
    )
    for key in keys:
        path = bucket_dir / key
        digest.add(key, path.stat().st_size, _file_md5(path) if dataset.md5_checked else None)
    same = (digest.count, digest.bytes, digest.hexdigest()) == (
        dataset.files, dataset.bytes, dataset.listing_digest)
    message = "files on disk match the dataset" if same else (
        f"files on disk differ from the dataset ({digest.count} files, {digest.bytes} bytes)")
    return Verification(same, digest.count, digest.bytes, message)
