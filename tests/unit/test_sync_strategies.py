"""One test per row of each strategy's truth table (see the docstrings in bulkput/job/sync/strategies.py)."""

from __future__ import annotations

import hashlib

from bulkput.job.listing.formats import format_mtime
from bulkput.job.sync.strategies import (
    Action,
    Checksum,
    Decision,
    IgnoreExisting,
    LocalFile,
    Reason,
    RemoteFile,
    SizeAndMtime,
    SizeOnly,
    Update,
)
from bulkput.remote.store import ObjectInfo

S = 1_000_000_000
T0 = 1_700_000_000 * S + 123_456_789  # the local file's mtime
MD5 = hashlib.md5(b"hello").hexdigest()
OTHER_MD5 = hashlib.md5(b"other").hexdigest()


def local(size: int = 10, mtime_ns: int = T0, md5: str | None = None) -> LocalFile:
    return LocalFile(size, mtime_ns, md5)


def remote(size: int = 10, *, lm: int | None = None, meta: dict[str, str] | None = None,
           etag: str | None = None, etag_is_md5: bool | None = None) -> RemoteFile:
    return RemoteFile(size=size, etag=etag, last_modified_ns=lm, metadata=meta, etag_is_md5=etag_is_md5)


def upload(reason: str) -> Decision:
    return Decision(Action.UPLOAD, reason)


def skip(reason: str) -> Decision:
    return Decision(Action.SKIP, reason)


HEAD = Decision(Action.HEAD, Reason.NEED_HEAD)
HASH = Decision(Action.HASH, Reason.NEED_HASH)


# --- SizeAndMtime -----------------------------------------------------------------------------

class TestSizeAndMtime:
    strategy = SizeAndMtime()

    def test_sizes_differ_upload_size(self) -> None:
        assert self.strategy.decide(local(size=11), remote(lm=T0 + 100 * S)) == upload(Reason.SIZE)

    def test_stored_mtime_equal_skip_unchanged(self) -> None:
        meta = {"mtime": format_mtime(T0)}
        assert self.strategy.decide(local(), remote(lm=T0 - 100 * S, meta=meta)) == skip(Reason.UNCHANGED)

    def test_stored_mtime_differs_upload_mtime(self) -> None:
        meta = {"mtime": format_mtime(T0 - S)}
        # even with a LastModified long after the local mtime: the stored mtime is the authority
        assert self.strategy.decide(local(), remote(lm=T0 + 100 * S, meta=meta)) == upload(Reason.MTIME)

    def test_not_fetched_stored_long_after_the_change_skip(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 + S)) == skip(Reason.UNCHANGED)

    def test_not_fetched_last_modified_is_the_mtime_to_the_millisecond_skip(self) -> None:
        # rclone serve s3 lists the stored mtime as LastModified (milliseconds)
        lm = T0 - T0 % 1_000_000
        assert self.strategy.decide(local(), remote(lm=lm)) == skip(Reason.UNCHANGED)

    def test_not_fetched_otherwise_head(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 + S - 1)) == HEAD
        assert self.strategy.decide(local(), remote(lm=T0 - 60 * S)) == HEAD
        assert self.strategy.decide(local(), remote(lm=T0 - T0 % 1_000_000 - 1_000_000)) == HEAD
        assert self.strategy.decide(local(), remote(lm=None)) == HEAD

    def test_absent_after_head_stored_long_after_skip(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 + 5 * S, meta={})) == skip(Reason.UNCHANGED)

    def test_absent_after_head_stored_before_upload_mtime(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 - S, meta={})) == upload(Reason.MTIME)
        assert self.strategy.decide(local(), remote(lm=None, meta={"other": "x"})) == upload(Reason.MTIME)

    def test_stored_mtime_compared_at_its_own_precision(self) -> None:
        # rclone-style or coarser writers: "1700000000.123" equals any local ns in that millisecond
        coarse = {"mtime": "1700000000.123"}
        assert self.strategy.decide(local(), remote(meta=coarse)) == skip(Reason.UNCHANGED)
        assert self.strategy.decide(local(mtime_ns=T0 + S // 1000), remote(meta=coarse)) == upload(Reason.MTIME)
        seconds_only = {"mtime": "1700000000"}
        assert self.strategy.decide(local(), remote(meta=seconds_only)) == skip(Reason.UNCHANGED)


# --- SizeOnly ---------------------------------------------------------------------------------

class TestSizeOnly:
    strategy = SizeOnly()

    def test_sizes_differ_upload(self) -> None:
        assert self.strategy.decide(local(size=1), remote(size=2)) == upload(Reason.SIZE)

    def test_sizes_equal_skip_whatever_the_times(self) -> None:
        assert self.strategy.decide(local(mtime_ns=T0 + 9999 * S), remote(lm=0)) == skip(Reason.SAME_SIZE)


# --- Checksum ---------------------------------------------------------------------------------

class TestChecksum:
    strategy = Checksum()

    def test_sizes_differ_upload_size(self) -> None:
        assert self.strategy.decide(local(size=3), remote(size=4, etag=MD5)) == upload(Reason.SIZE)

    def test_md5_etag_and_local_unknown_hash(self) -> None:
        assert self.strategy.decide(local(), remote(etag=MD5)) == HASH

    def test_md5_etag_equal_skip(self) -> None:
        assert self.strategy.decide(local(md5=MD5), remote(etag=f'"{MD5.upper()}"')) == skip(Reason.SAME_CHECKSUM)

    def test_md5_etag_differs_not_fetched_head(self) -> None:
        # it may be an encrypted object's ETag: HEAD says
        assert self.strategy.decide(local(md5=OTHER_MD5), remote(etag=MD5)) == HEAD

    def test_md5_etag_differs_plain_object_upload(self) -> None:
        decision = self.strategy.decide(local(md5=OTHER_MD5), remote(etag=MD5, meta={}, etag_is_md5=True))
        assert decision == upload(Reason.CHECKSUM)

    def test_encrypted_object_md5_like_etag_md5_metadata_equal_skip(self) -> None:
        decision = self.strategy.decide(
            local(md5=MD5), remote(etag=OTHER_MD5, meta={"md5": MD5}, etag_is_md5=False)
        )
        assert decision == skip(Reason.SAME_CHECKSUM)

    def test_encrypted_object_md5_like_etag_no_md5_metadata_upload(self) -> None:
        decision = self.strategy.decide(local(md5=MD5), remote(etag=OTHER_MD5, meta={}, etag_is_md5=False))
        assert decision == upload(Reason.NO_CHECKSUM)

    def test_encrypted_object_md5_metadata_differs_upload(self) -> None:
        decision = self.strategy.decide(
            local(md5=MD5), remote(etag=MD5, meta={"md5": OTHER_MD5}, etag_is_md5=False)
        )
        assert decision == upload(Reason.CHECKSUM)

    def test_multipart_etag_not_fetched_head(self) -> None:
        assert self.strategy.decide(local(md5=MD5), remote(etag=f"{OTHER_MD5}-3")) == HEAD

    def test_multipart_etag_no_md5_metadata_upload(self) -> None:
        decision = self.strategy.decide(local(), remote(etag=f"{OTHER_MD5}-3", meta={"mtime": "1"}))
        assert decision == upload(Reason.NO_CHECKSUM)

    def test_multipart_md5_metadata_local_unknown_hash(self) -> None:
        assert self.strategy.decide(local(), remote(etag=f"{OTHER_MD5}-3", meta={"md5": MD5})) == HASH

    def test_multipart_md5_metadata_equal_skip(self) -> None:
        decision = self.strategy.decide(local(md5=MD5), remote(etag=f"{OTHER_MD5}-3", meta={"md5": MD5}))
        assert decision == skip(Reason.SAME_CHECKSUM)

    def test_multipart_md5_metadata_differs_upload(self) -> None:
        decision = self.strategy.decide(local(md5=OTHER_MD5), remote(etag=f"{MD5}-2", meta={"md5": MD5}))
        assert decision == upload(Reason.CHECKSUM)


# --- Update -----------------------------------------------------------------------------------

class TestUpdate:
    strategy = Update()

    def test_not_fetched_stored_after_local_change_skip(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 + 2 * S)) == skip(Reason.NOT_NEWER)

    def test_not_fetched_local_maybe_newer_head(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 - S)) == HEAD
        assert self.strategy.decide(local(), remote(lm=None)) == HEAD

    def test_stored_mtime_older_upload_newer(self) -> None:
        meta = {"mtime": format_mtime(T0 - S)}
        assert self.strategy.decide(local(), remote(meta=meta)) == upload(Reason.NEWER)

    def test_stored_mtime_equal_sizes_differ_upload_size(self) -> None:
        meta = {"mtime": format_mtime(T0)}
        assert self.strategy.decide(local(size=5), remote(size=6, meta=meta)) == upload(Reason.SIZE)

    def test_stored_mtime_equal_sizes_equal_skip(self) -> None:
        meta = {"mtime": format_mtime(T0)}
        assert self.strategy.decide(local(), remote(meta=meta)) == skip(Reason.NOT_NEWER)

    def test_stored_mtime_newer_skip(self) -> None:
        meta = {"mtime": format_mtime(T0 + S)}
        assert self.strategy.decide(local(size=1), remote(size=2, meta=meta)) == skip(Reason.NOT_NEWER)

    def test_no_stored_mtime_last_modified_older_upload(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0 - 1, meta={})) == upload(Reason.NEWER)

    def test_no_stored_mtime_last_modified_newer_or_unknown_skip(self) -> None:
        assert self.strategy.decide(local(), remote(lm=T0, meta={})) == skip(Reason.NOT_NEWER)
        assert self.strategy.decide(local(), remote(lm=None, meta={})) == skip(Reason.NOT_NEWER)


# --- IgnoreExisting ---------------------------------------------------------------------------

def test_ignore_existing_skips_any_existing_object() -> None:
    decision = IgnoreExisting().decide(local(size=1, mtime_ns=T0 + 99 * S), remote(size=2, lm=0))
    assert decision == skip(Reason.EXISTS)


def test_remote_file_from_listing_and_from_head() -> None:
    info = ObjectInfo("k", 3, etag=MD5, last_modified="2024-01-02T03:04:05.000Z", metadata={"Mtime": "1.5"})
    listed = RemoteFile.from_info(info)
    assert listed.metadata is None and listed.stored_mtime is None
    headed = RemoteFile.from_info(info, headed=True)
    assert headed.stored_mtime == (1_500_000_000, 100_000_000)
    assert headed.last_modified_ns == 1704164645 * S
