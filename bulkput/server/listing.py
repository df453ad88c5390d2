"""Cutting listings into pages: objects (ListObjects, V1 and V2) and multipart uploads.

Pure over the :class:`~bulkput.server.storage.Storage` scans, which yield in key order: a page
is cut by prefix, delimiter (common prefixes folded into one entry each) and a maximum count,
without reading more of the store than the page needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bulkput.server.storage import ObjectMeta, PendingUpload, Storage

MAX_LIST = 1000  # the services' ceiling for max-keys, max-parts and max-uploads


@dataclass(frozen=True, slots=True)
class ListingPage:
    """One page of an object listing, already cut by prefix, delimiter and max-keys."""

    objects: Sequence[ObjectMeta]
    prefixes: Sequence[str]
    truncated: bool
    next_marker: str | None  # last key or prefix returned, when truncated


@dataclass(frozen=True, slots=True)
class UploadsPage:
    """One page of a multipart-upload listing."""

    uploads: Sequence[PendingUpload]
    prefixes: Sequence[str]
    truncated: bool


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` folds into under ``delimiter``, or None when it stands alone."""
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return key[: cut + len(delimiter)] if cut >= 0 else None


def build_page(
    storage: Storage, bucket: str, *, prefix: str, delimiter: str, after: str, max_keys: int
) -> ListingPage:
    """One listing page: objects after ``after`` under ``prefix``, grouped by ``delimiter``."""
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    if max_keys == 0:
        return ListingPage(objects, prefixes, False, None)
    last: str | None = None
    position = after
    while True:
        restarted = False
        for meta in storage.iter_objects(bucket, prefix, position):
            common = _common_prefix(meta.key, prefix, delimiter)
            if common is not None and common <= after:
                continue  # the page before ended on this common prefix
            if len(objects) + len(prefixes) == max_keys:
                return ListingPage(objects, prefixes, True, last)
            if common is not None:
                prefixes.append(common)
                last = common
                # skip the rest of this common prefix without walking it
                position = common + "\U0010ffff"
                restarted = True
                break
            objects.append(meta)
            last = meta.key
        if not restarted:
            return ListingPage(objects, prefixes, False, None)


def build_uploads_page(
    storage: Storage,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
) -> UploadsPage:
    """Uploads after (``key_marker``, ``upload_id_marker``) under ``prefix``, in (key, initiated)
    order, grouped by ``delimiter``. With a key marker and no upload-id marker, every upload of
    that key is skipped (the services' rule)."""
    uploads: list[PendingUpload] = []
    prefixes: list[str] = []
    passed_id_marker = not upload_id_marker
    for upload in storage.iter_uploads(bucket, prefix):
        if key_marker and upload.key < key_marker:
            continue
        if key_marker and upload.key == key_marker:
            if not passed_id_marker:
                passed_id_marker = upload.upload_id == upload_id_marker
                continue
            if not upload_id_marker:
                continue
        common = _common_prefix(upload.key, prefix, delimiter)
        if common is not None and prefixes and prefixes[-1] == common:
            continue
        if len(uploads) + len(prefixes) == max_uploads:
            return UploadsPage(uploads, prefixes, True)
        if common is not None:
            prefixes.append(common)
        else:
            uploads.append(upload)
    return UploadsPage(uploads, prefixes, False)
