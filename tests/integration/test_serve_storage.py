"""The directory backend keeps every key inside --dir, never on another object, and survives
a restart; hostile keys are stored and read back byte-exact like any other."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bulkput.server.testing import ServerHandle
from tests.integration.serve_clients import s3_client, send_s3

HOSTILE_KEYS = [
    "../escape",
    "../../../../etc/passwd",
    "/absolute/path",
    "a/../../b",
    "./dot",
    "..",
    "a/./b/../c",
    ".bulkput/meta.sqlite3",
    ".bulkput/objects/x",
    "meta.sqlite3",
    "\\..\\windows",
    "x" * 1000,
    "a//b",
    "trailing/",
]


def _files_under(root: Path) -> set[Path]:
    return {Path(d, f) for d, _, files in os.walk(root) for f in files}


def test_hostile_keys_stay_inside_dir(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    outside_before = _files_under(tmp_path)
    server = bulkput_server_factory(memory=False, dir=store, buckets=["safe"])
    for index, key in enumerate(HOSTILE_KEYS):
        status, _, body = send_s3(server, "PUT", f"/safe/{key}", body=f"body {index}".encode())
        assert status == 200, (key, body)
    for index, key in enumerate(HOSTILE_KEYS):
        status, _, body = send_s3(server, "GET", f"/safe/{key}")
        assert (status, body) == (200, f"body {index}".encode()), key
    s3 = s3_client(server)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="safe")["Contents"]]
    assert listed == sorted(HOSTILE_KEYS)
    # every file the store wrote is under DIR/.bulkput, and nothing else changed
    written = _files_under(tmp_path) - outside_before
    assert written and all(store / ".bulkput" in path.parents for path in written)
    assert not any(path.name in {"passwd", "escape", "windows"} for path in written)
    server.stop()
    # a restart on the same directory serves the same objects
    again = bulkput_server_factory(memory=False, dir=store)
    for index, key in enumerate(HOSTILE_KEYS):
        assert send_s3(again, "GET", f"/safe/{key}")[2] == f"body {index}".encode()


def test_nul_and_invalid_utf8_keys_are_refused(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    status, _, body = send_s3(bulkput_server, "PUT", f"/{bulkput_bucket}/a\x00b", body=b"x")
    assert status == 400 and b"InvalidObjectName" in body
