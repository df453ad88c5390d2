"""``abort_incomplete`` counts an upload as aborted only when a second listing no longer shows it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bulkput.commands.abort_incomplete import AbortSummary, abort_incomplete
from bulkput.errors import NotFoundError
from bulkput.remote.store import UploadInfo


class Uploads:
    """The multipart side of a store: ``answers[key]`` is how its abort goes ("abort": gone,
    "ignore": answered OK but kept, "no-such-upload": NoSuchUpload and kept, "gone": NoSuchUpload
    because it is gone already)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.left = {key: f"id-{n}" for n, key in enumerate(answers)}
        self.listings = 0
        self.aborts: list[str] = []

    async def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]:
        self.listings += 1
        for key, upload_id in sorted(self.left.items()):
            if key.startswith(prefix):
                yield UploadInfo(key=key, upload_id=upload_id, initiated=None)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self.aborts.append(key)
        answer = self.answers[key]
        if answer in ("abort", "gone"):
            del self.left[key]
        if answer in ("no-such-upload", "gone"):
            raise NotFoundError("The specified upload does not exist.", code="NoSuchUpload",
                                status=404, key=key)  # fmt: skip


async def run(uploads: Uploads) -> tuple[AbortSummary, list[tuple[str, str]]]:
    told: list[tuple[str, str]] = []
    summary = await abort_incomplete(
        uploads,  # type: ignore[arg-type]
        on_upload=lambda action, upload: told.append((action, upload.key)),
    )
    return summary, told


async def test_an_abort_answered_ok_while_the_upload_stays_is_a_failure() -> None:
    uploads = Uploads({"a": "abort", "kept": "ignore"})
    summary, told = await run(uploads)
    assert [u.key for u in summary.aborted] == ["a"]
    failed = summary.failed
    assert [(u.key, e.code) for u, e in failed] == [("kept", "AbortNotConfirmed")]
    assert "still lists upload id-1" in failed[0][1].one_line()
    assert summary.exit_code == 1
    assert sorted(told) == [("abort", "a"), ("fail", "kept")]
    assert uploads.listings == 2


async def test_no_such_upload_for_an_upload_still_listed_is_a_failure() -> None:
    # SeaweedFS, keys decoded wrongly: the abort named a key the server does not have
    summary, told = await run(Uploads({"a b+c.bin": "no-such-upload"}))
    assert summary.aborted == []
    assert [u.key for u, _ in summary.failed] == ["a b+c.bin"]
    assert "(no such upload)" in summary.failed[0][1].one_line()
    assert told == [("fail", "a b+c.bin")]


async def test_no_such_upload_for_an_upload_gone_meanwhile_counts_as_aborted() -> None:
    summary, told = await run(Uploads({"x": "gone", "y": "abort"}))
    assert [u.key for u in summary.aborted] == ["x", "y"]
    assert summary.failed == [] and summary.exit_code == 0
    assert told == [("abort", "x"), ("abort", "y")]


@pytest.mark.parametrize("dry_run", [True, False])
async def test_nothing_to_abort_lists_once(dry_run: bool) -> None:
    uploads = Uploads({"a": "abort"})
    if dry_run:
        summary = await abort_incomplete(uploads, dry_run=True)  # type: ignore[arg-type]
        assert [u.key for u in summary.aborted] == ["a"] and uploads.aborts == []
    else:
        uploads.left.clear()
        summary = await abort_incomplete(uploads)  # type: ignore[arg-type]
        assert summary.found == 0
    assert uploads.listings == 1
