"""Both storage backends: ordering, listing pages, multipart, crash leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkput.server.listing import build_page
from bulkput.server.storage import (
    DirStorage,
    MemoryStorage,
    NoSuchUploadError,
    ObjectMeta,
    Storage,
    StoredPart,
)


@pytest.fixture(params=["memory", "dir"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    store: Storage = MemoryStorage() if request.param == "memory" else DirStorage(tmp_path)
    store.create_bucket("bkt")
    return store


def _put(store: Storage, key: str, data: bytes) -> None:
    writer = store.new_writer()
    writer.write(data)
    store.commit_object(
        "bkt", writer, ObjectMeta(key=key, size=len(data), etag="e", last_modified=0)
    )


def _read(store: Storage, key: str) -> bytes:
    meta = store.head_object("bkt", key)
    assert meta is not None
    return b"".join(store.read_object("bkt", key, 0, meta.size))


def test_keys_list_in_utf8_byte_order_and_overwrite(storage: Storage) -> None:
    keys = ["b", "a/z", "a/b", "é", "Z", "a", "\U0001f600", "a b"]
    for key in keys:
        _put(storage, key, key.encode())
    _put(storage, "a", b"second")
    listed = [m.key for m in storage.iter_objects("bkt", "", "")]
    assert listed == sorted(keys, key=lambda k: k.encode())
    assert _read(storage, "a") == b"second"
    assert [m.key for m in storage.iter_objects("bkt", "a/", "")] == ["a/b", "a/z"]
    assert [m.key for m in storage.iter_objects("bkt", "", "a/b")][:2] == ["a/z", "b"]
    assert storage.delete_object("bkt", "a") and not storage.delete_object("bkt", "a")
    assert "a" not in [m.key for m in storage.iter_objects("bkt", "", "")]


def test_pages_with_delimiter_never_repeat(storage: Storage) -> None:
    keys = ["x/1", "x/2", "x/3", "y", "z/1", "zz"]
    for key in keys:
        _put(storage, key, b"")
    seen: list[str] = []
    after = ""
    while True:
        page = build_page(storage, "bkt", prefix="", delimiter="/", after=after, max_keys=1)
        seen += [m.key for m in page.objects] + list(page.prefixes)
        if not page.truncated:
            break
        assert page.next_marker is not None
        after = page.next_marker
    assert seen == ["x/", "y", "z/", "zz"]


def test_multipart_parts_complete_and_abort(storage: Storage) -> None:
    template = ObjectMeta(key="mp", size=0, etag="", last_modified=0)
    upload = storage.create_upload("bkt", template)
    for number, data in ((2, b"world"), (1, b"hello ")):
        writer = storage.new_writer()
        writer.write(data)
        storage.put_part(upload, StoredPart(number, len(data), "00", 0.0), writer)
    parts = storage.list_parts(upload)
    assert [p.number for p in parts] == [1, 2]
    assert [u.upload_id for u in storage.iter_uploads("bkt", "")] == [upload.upload_id]
    storage.complete_upload(
        upload, parts, ObjectMeta(key="mp", size=11, etag="x-2", last_modified=0)
    )
    assert _read(storage, "mp") == b"hello world"
    assert list(storage.iter_uploads("bkt", "")) == []
    with pytest.raises(NoSuchUploadError):
        storage.get_upload("bkt", upload.upload_id)


@pytest.mark.parametrize("crc64", [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, None])
def test_part_crc64_keeps_every_unsigned_64_bit_value(storage: Storage, crc64: int | None) -> None:
    # OSS parts carry a CRC-64, half of which are >= 2**63: the dir backend's SQLite integers
    # are signed (a 600 MiB OSS upload failed with HTTP 500 on every such part before).
    upload = storage.create_upload("bkt", ObjectMeta(key="crc", size=0, etag="", last_modified=0))
    writer = storage.new_writer()
    writer.write(b"part")
    storage.put_part(upload, StoredPart(1, 4, "00", 0.0, crc64), writer)
    assert [p.crc64 for p in storage.list_parts(upload)] == [crc64]


def test_dir_backend_discards_half_written_bodies(tmp_path: Path) -> None:
    store = DirStorage(tmp_path)
    store.create_bucket("bkt")
    writer = store.new_writer()
    writer.write(b"half")  # a crash here: never committed
    leftover = tmp_path / ".bulkput" / "tmp"
    assert any(leftover.iterdir())
    store.close()
    reopened = DirStorage(tmp_path)
    assert not any(leftover.iterdir())
    assert list(reopened.iter_objects("bkt", "", "")) == []
