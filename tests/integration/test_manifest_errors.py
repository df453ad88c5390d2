"""Bad manifests end to end (`bulkput put --manifest` against `bulkput serve`): a malformed line
fails alone with its line number while the rest is stored; a manifest in an unknown encoding
gives one clear error; stdin works."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

from bulkput.cli import main
from bulkput.remote.client import open_store
from bulkput.remote.target import Target, resolve_endpoint


def put(server, manifest: str, dest: str, tmp_path: Path, *extra: str) -> int:
    return main([
        "put", "--manifest", manifest, "--report", str(tmp_path / "report.jsonl"),
        "--progress", "none", "--endpoint", server.endpoint_url,
        "--access-key", server.access_key, "--secret-key", server.secret_key,
        "--state-dir", str(tmp_path / "state"), *extra, dest,
    ])  # fmt: skip


def report(tmp_path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(x) for x in (tmp_path / "report.jsonl").read_text().splitlines()]
    return lines[:-1], lines[-1]["summary"]


def stored_objects(server, dest: str) -> dict[str, bytes]:
    async def fetch() -> dict[str, bytes]:
        target = Target.parse(dest)
        store = open_store(
            target,
            endpoint=resolve_endpoint(target, server.endpoint_url, None, "path"),
            credentials=server.credentials[0],
        )
        try:
            out = {}
            async for info in store.list_objects(target.prefix):
                out[info.key] = await store.get_object(info.key) if info.size else b""
            return out
        finally:
            await store.close()

    return asyncio.run(fetch())


def make_files(root: Path, names: list[str]) -> dict[str, bytes]:
    files = {}
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"contents of {name}\n".encode() * 3
        path.write_bytes(data)
        files[name] = data
    return files


def test_malformed_csv_line_fails_alone_with_its_line_number(
    bulkput_server, bulkput_bucket, tmp_path, capsys
):
    src = tmp_path / "src"
    files = make_files(src, ["a.txt", "b.txt", "c.txt", "d.txt"])
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,key,meta_n\n"
        f"{src / 'a.txt'},a.txt,1\n"
        f"{src / 'b.txt'},b.txt\n"  # line 3: a column short
        f"{src / 'c.txt'},c.txt,3\n"
        f"{src / 'd.txt'},d.txt,4\n"
    )
    dest = f"s3://{bulkput_bucket}/csv"
    assert put(bulkput_server, str(manifest), dest, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"{manifest} line 3: expected 3 columns, found 2" in err
    assert stored_objects(bulkput_server, dest) == {
        f"csv/{name}": files[name] for name in ("a.txt", "c.txt", "d.txt")
    }
    lines, summary = report(tmp_path)
    assert summary["stored"] == 3 and summary["failed"] == 1 and summary["exit_code"] == 1
    [failed] = [line for line in lines if line["status"] == "failed"]
    assert failed["error_code"] == "ManifestError" and "line 3" in failed["message"]


def test_manifest_in_an_unknown_encoding_gives_one_clear_error(
    bulkput_server, bulkput_bucket, tmp_path, capsys
):
    src = tmp_path / "src"
    files = make_files(src, ["first.txt", "second.txt", "café.txt", "last.txt"])
    manifest = tmp_path / "latin1.txt"
    manifest.write_bytes(
        "\n".join(str(src / name) for name in files).encode("latin-1") + b"\n"
    )
    dest = f"oss://{bulkput_bucket}/enc"
    assert put(bulkput_server, str(manifest), dest, tmp_path) == 1
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert f"{manifest} line 3: not UTF-8" in error_lines[0]
    # the lines before the undecodable one were stored; nothing after it was guessed at
    # (absolute paths with no key or base directory: keys relative to their common folder, src)
    assert set(stored_objects(bulkput_server, dest)) == {"enc/first.txt", "enc/second.txt"}
    _, summary = report(tmp_path)
    assert summary["stored"] == 2 and summary["failed"] == 1


def test_manifest_from_stdin_with_unicode_keys(
    bulkput_server, bulkput_bucket, tmp_path, monkeypatch
):
    src = tmp_path / "src"
    files = make_files(src, ["日本/ファイル.txt", "naïve name.txt"])
    lines = [json.dumps({"path": str(src / name), "key": name}) for name in files]
    data = ("\n".join(lines) + "\n").encode()

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]

    monkeypatch.setattr(sys, "stdin", Stdin())
    dest = f"bos://{bulkput_bucket}/in"
    assert put(bulkput_server, "-", dest, tmp_path) == 0
    assert stored_objects(bulkput_server, dest) == {f"in/{k}": v for k, v in files.items()}
