"""Bad input (issue 8 item 4): each case fails with one line naming the object and the cause,
while the rest of the job completes; or, for job-level problems, stops the job at once.

Each object-level case is checked three ways, as a user would: the exit code (1), one
``error:`` line on stderr naming the object and the cause, and one failed line in the
``--report`` file with the same; every other object is stored.

Covered elsewhere (not repeated here): a missing path (tests/integration/test_put_cli.py
``test_bad_objects_fail_alone_and_exit_1`` and ``test_exit_codes``); an empty file stored as 0
bytes (test_put_cli.py ``TRICKY_NAMES`` "empty.dat", test_multipart_dialects.py size 0); a
malformed manifest line and an unknown encoding (test_manifest_errors.py); an endpoint that
refuses connections (test_put_cli.py ``test_exit_codes``); a non-UTF-8 name in ``sync``
(test_sync_cli.py ``test_non_utf8_name_fails_alone_exit_1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkput.api import open_destination
from bulkput.cli import main
from bulkput.server.testing import ServerHandle


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_"))
    }
    return {**base, **extra}


def run_bulkput(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", *args],
        capture_output=True, text=True, timeout=timeout, env=clean_env(env),
    )  # fmt: skip


def read_report(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines and "summary" in lines[-1], "the report has no summary line"
    return lines[:-1], lines[-1]["summary"]


def good_files(root: Path, count: int = 5) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for n in range(count):
        (root / f"good{n}.txt").write_bytes(f"good file {n}\n".encode() * (n + 1))
        names.append(f"good{n}.txt")
    return names


def assert_fails_alone(
    done: subprocess.CompletedProcess[str],
    report: Path,
    key: str,
    causes: tuple[str, ...],
    stored: int,
) -> dict[str, Any]:
    """Exit 1; one stderr ``error:`` line and one failed report line, both naming ``key`` and
    one of ``causes``; ``stored`` other objects stored. Returns the failed report line."""
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert key[:200] in errors[0] and any(c in errors[0] for c in causes), errors[0]
    lines, summary = read_report(report)
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["key"] == key, failed
    assert any(c in failed[0]["message"] for c in causes), failed[0]
    assert "\n" not in failed[0]["message"]
    assert summary["failed"] == 1 and summary["stored"] == stored, summary
    return failed[0]


def put_args(server: ServerHandle, dest: str, tmp: Path, report: Path) -> list[str]:
    return [
        "--endpoint", server.endpoint_url, "--report", str(report), "--progress", "none",
        "--state-dir", str(tmp / "state"), dest,
    ]  # fmt: skip


def write_manifest(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- one object fails, the job goes on ---------------------------------------------------------


def test_directory_in_a_manifest_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    names = good_files(tmp_path / "src")
    (tmp_path / "src" / "adir").mkdir()
    manifest = tmp_path / "m.txt"
    manifest.write_text(
        "".join(f"{tmp_path / 'src' / n}\n" for n in [*names[:2], "adir", *names[2:]])
    )
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "put", "--manifest", str(manifest), *put_args(bulkput_server, f"s3://{bulkput_bucket}/m/", tmp_path, report),
        env=bulkput_server.env("s3"),
    )  # fmt: skip
    key = "m/adir"  # absolute paths: keys relative to their common folder (src)
    assert_fails_alone(done, report, key, ("is a directory",), stored=len(names))


def permissions_apply() -> list[str]:
    """A command prefix under which file permissions hold. Root ignores them, so as root the job
    runs through ``setpriv`` without any capability (CAP_DAC_OVERRIDE gone): still uid 0, so it
    can run this Python (under /root), but a mode-000 file is unreadable to it. (Switching to
    user nobody cannot work here: nobody cannot execute the interpreter under /root.)"""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to apply")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all"]


def test_unreadable_file_fails_alone_with_permission_denied(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    names = good_files(src)
    secret = src / "secret.txt"
    secret.write_bytes(b"not for this job")
    secret.chmod(0o000)
    report = tmp_path / "r.jsonl"
    done = subprocess.run(
        [*permissions_apply(), sys.executable, "-m", "bulkput", "put", str(src),
         *put_args(bulkput_server, f"s3://{bulkput_bucket}/u/", tmp_path, report)],
        capture_output=True, text=True, timeout=120, env=clean_env(bulkput_server.env("s3")),
    )  # fmt: skip
    assert_fails_alone(done, report, "u/secret.txt", ("permission denied",), stored=len(names))


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_file_changing_during_upload_is_never_stored_with_a_wrong_checksum(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, change: str
) -> None:
    """A large file (hashed, then streamed from disk) is appended to or truncated by a thread for
    the whole job. Either it fails with FileChangedError, or what is stored is exactly what the
    report's MD5 says; never a stored object whose bytes differ from its reported checksum."""
    names = good_files(tmp_path / "src")
    moving = tmp_path / "src" / "moving.bin"
    moving.write_bytes(os.urandom(24 * 1024 * 1024))
    stop = threading.Event()

    def keep_changing() -> None:
        with open(moving, "r+b") as handle:
            while not stop.is_set():
                if change == "grows":
                    handle.seek(0, os.SEEK_END)
                    handle.write(os.urandom(4096))
                else:
                    size = handle.seek(0, os.SEEK_END)
                    handle.truncate(max(0, size - 4096))
                handle.flush()
                time.sleep(0.001)

    changer = threading.Thread(target=keep_changing, daemon=True)
    changer.start()
    report = tmp_path / "r.jsonl"
    dest = f"s3://{bulkput_bucket}/c/"
    try:
        done = run_bulkput("put", str(tmp_path / "src"), *put_args(bulkput_server, dest, tmp_path, report),
                           env=bulkput_server.env("s3"))  # fmt: skip
    finally:
        stop.set()
        changer.join()
    lines, summary = read_report(report)
    [line] = [entry for entry in lines if entry["key"] == "c/moving.bin"]
    assert summary["stored"] >= len(names)
    if line["status"] == "failed":
        assert done.returncode == 1 and line["error_code"] == "FileChangedError", line
        errors = [e for e in done.stderr.splitlines() if e.startswith("error:")]
        assert len(errors) == 1 and "c/moving.bin" in errors[0] and "changed" in errors[0]
    else:
        assert done.returncode == 0 and line["status"] == "stored", done.stderr
        data = asyncio.run(get_objects(bulkput_server, dest, ["c/moving.bin"]))["c/moving.bin"]
        assert hashlib.md5(data).hexdigest() == line["md5"] == line["etag"].lower()


async def get_objects(server: ServerHandle, dest: str, keys: list[str]) -> dict[str, bytes]:
    _t, store = await open_destination(dest, endpoint=server.endpoint_url, env=server.env("s3"))
    try:
        return {key: await store.get_object(key) for key in keys}
    finally:
        await store.close()


def test_symlink_loop_in_a_put_directory_is_skipped_with_a_warning(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    names = good_files(src)
    (src / "sub").mkdir()
    (src / "sub" / "loop").symlink_to(src)
    report = tmp_path / "r.jsonl"
    done = run_bulkput("put", str(src), *put_args(bulkput_server, f"s3://{bulkput_bucket}/l/", tmp_path, report),
                       env=bulkput_server.env("s3"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines, summary = read_report(report)
    assert summary["stored"] == len(names) and summary["failed"] == 0
    [skipped] = [line for line in lines if line["status"] == "skipped"]
    assert skipped["key"] == "l/sub/loop" and skipped["reason"] == "symlink"
    assert "sub/loop" in done.stderr and "symbolic link" in done.stderr


def test_symlink_loop_with_follow_symlinks_on_sync_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    names = good_files(src)
    (src / "sub").mkdir()
    (src / "sub" / "inner.txt").write_bytes(b"inner")
    (src / "sub" / "loop").symlink_to(src)
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "sync", "--follow-symlinks", str(src), "--endpoint", bulkput_server.endpoint_url, "--report", str(report),
        "--progress", "none", f"s3://{bulkput_bucket}/s/", env=bulkput_server.env("s3"),
    )  # fmt: skip
    assert_fails_alone(done, report, "s/sub/loop/", ("loop",), stored=len(names) + 1)


def test_symlink_loop_with_follow_symlinks_on_put_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    names = good_files(src)
    (src / "sub").mkdir()
    (src / "sub" / "loop").symlink_to(src)
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "put", "--follow-symlinks", str(src), *put_args(bulkput_server, f"s3://{bulkput_bucket}/pf/", tmp_path, report),
        env=bulkput_server.env("s3"),
    )  # fmt: skip
    assert_fails_alone(done, report, "pf/sub/loop/", ("loop",), stored=len(names))


def test_non_utf8_file_name_in_a_put_directory_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    names = good_files(src)
    with open(os.path.join(os.fsencode(src), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"latin-1 name")
    report = tmp_path / "r.jsonl"
    done = run_bulkput("put", str(src), *put_args(bulkput_server, f"s3://{bulkput_bucket}/n/", tmp_path, report),
                       env=bulkput_server.env("s3"))  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "caf" in errors[0] and "UTF-8" in errors[0], done.stderr
    lines, summary = read_report(report)
    [failed] = [line for line in lines if line["status"] == "failed"]
    assert "UTF-8" in failed["message"] and summary["stored"] == len(names)


def test_key_over_1023_bytes_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    names = good_files(tmp_path / "src")
    long_key = "k" * 1100
    manifest = write_manifest(tmp_path / "m.jsonl", [
        *({"path": str(tmp_path / "src" / n), "key": n} for n in names),
        {"path": str(tmp_path / "src" / names[0]), "key": long_key},
    ])  # fmt: skip
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "put", "--manifest", str(manifest), *put_args(bulkput_server, f"oss://{bulkput_bucket}/", tmp_path, report),
        env=bulkput_server.env("oss"),
    )  # fmt: skip
    assert_fails_alone(done, report, long_key, ("1023",), stored=len(names))
    assert bulkput_server.stats.puts(long_key, bucket=bulkput_bucket) == 0


@pytest.mark.parametrize(
    ("metadata", "cause"),
    [
        ({"big": "v" * 9000}, ("8 KB", "8192", "8 KiB", "too large")),
        ({"bad name!": "x"}, ("character",)),
    ],
    ids=["over-8KB", "forbidden-characters"],
)
def test_oss_user_metadata_too_large_or_with_forbidden_characters_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, metadata: dict[str, str],
    cause: tuple[str, ...],
) -> None:  # fmt: skip
    names = good_files(tmp_path / "src")
    manifest = write_manifest(tmp_path / "m.jsonl", [
        *({"path": str(tmp_path / "src" / n), "key": n} for n in names),
        {"path": str(tmp_path / "src" / names[0]), "key": "meta.bad", "metadata": metadata},
    ])  # fmt: skip
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "put", "--manifest", str(manifest), *put_args(bulkput_server, f"oss://{bulkput_bucket}/", tmp_path, report),
        env=bulkput_server.env("oss"),
    )  # fmt: skip
    assert_fails_alone(done, report, "meta.bad", cause, stored=len(names))
    assert (
        bulkput_server.stats.puts("meta.bad", bucket=bulkput_bucket) == 0
    )  # refused before sending


@pytest.mark.parametrize(
    ("field", "value"), [("storage_class", "FROZEN_SOLID"), ("acl", "world-writable")]
)
def test_unknown_storage_class_or_acl_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, field: str, value: str
) -> None:
    names = good_files(tmp_path / "src")
    manifest = write_manifest(tmp_path / "m.jsonl", [
        *({"path": str(tmp_path / "src" / n), "key": n} for n in names),
        {"path": str(tmp_path / "src" / names[0]), "key": "odd.txt", field: value},
    ])  # fmt: skip
    report = tmp_path / "r.jsonl"
    done = run_bulkput(
        "put", "--manifest", str(manifest), *put_args(bulkput_server, f"s3://{bulkput_bucket}/", tmp_path, report),
        env=bulkput_server.env("s3"),
    )  # fmt: skip
    assert_fails_alone(done, report, "odd.txt", (value,), stored=len(names))


# --- the job stops at once, with one message ---------------------------------------------------


@pytest.mark.parametrize("problem", ["wrong-secret", "missing-bucket"])
def test_wrong_credentials_or_missing_bucket_abort_at_once_with_exit_3(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path, problem: str
) -> None:
    """2,000 files: the job stops after the first answers, not after 2,000 identical failures
    (the server's request count is the witness), with one message and exit 3."""
    server = bulkput_server_factory(buckets=["present"])
    src = tmp_path / "src"
    src.mkdir()
    for n in range(2_000):
        (src / f"f{n:04d}.txt").write_bytes(b"%d" % n)
    env = server.env("s3")
    bucket = "present"
    if problem == "wrong-secret":
        env["AWS_SECRET_ACCESS_KEY"] = "definitely-not-the-secret"
    else:
        bucket = "absent-bucket"
    report = tmp_path / "r.jsonl"
    done = run_bulkput("put", str(src), "--concurrency", "16", *put_args(server, f"s3://{bucket}/x/", tmp_path, report),
                       env=env)  # fmt: skip
    assert done.returncode == 3, done.stderr
    aborted = [
        line for line in done.stderr.splitlines() if "aborted" in line and "JobAborted" not in line
    ]
    assert len(aborted) == 1, done.stderr
    assert ("SignatureDoesNotMatch" if problem == "wrong-secret" else "NoSuchBucket") in aborted[0]
    assert not [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert server.stats.total <= 64, f"{server.stats.total} requests after a job-fatal answer"
    lines, summary = read_report(report)
    assert summary["aborted"] and summary["stored"] == 0 and summary["exit_code"] == 3
    assert all(line["status"] == "failed" for line in lines)


def test_endpoint_that_does_not_resolve_aborts_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process, with name resolution replaced: no real DNS query is ever sent."""
    import bulkput.runtime

    host = "bulkput-h9-no-such-host.invalid"
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(name: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(name, str) and name.endswith(host):  # bucket.HOST when virtual-hosted
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        assert name in ("127.0.0.1", "localhost", None), f"unexpected lookup of {name!r}"
        return real_getaddrinfo(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    # the standard loop resolves through socket.getaddrinfo (uvloop would ask libuv, i.e. DNS)
    monkeypatch.setattr(bulkput.runtime, "new_event_loop", asyncio.new_event_loop)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    names = good_files(tmp_path / "src", 20)
    report = tmp_path / "r.jsonl"
    code = main([
        "put", str(tmp_path / "src"), "--endpoint", f"http://{host}:9000", "--report", str(report),
        "--progress", "none", "--state-dir", str(tmp_path / "state"), "s3://bucket-x/p/",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3, err
    assert asked, "the fake resolver was never asked"
    assert len(asked) <= 4 * 16, f"{len(asked)} lookups: retries are not bounded"
    aborted = [line for line in err.splitlines() if "aborted" in line]
    assert len(aborted) == 1 and "EndpointUnreachable" in aborted[0] and host in err
    _lines, summary = read_report(report)
    assert summary["stored"] == 0 and summary["exit_code"] == 3 and len(names) == 20


def test_refused_endpoint_with_one_retry_still_aborts_the_job_with_exit_3(tmp_path: Path) -> None:
    good_files(tmp_path / "src", 30)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = run_bulkput(
        "put", str(tmp_path / "src"), "--retries", "1", "--endpoint", closed, "--progress", "none",
        "--state-dir", str(tmp_path / "state"), "s3://bucket-x/r/",
        env={"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("error:")], done.stderr


def test_state_dir_that_is_not_writable_stops_before_sending(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    good_files(tmp_path / "src")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = run_bulkput(
        "put", str(tmp_path / "src"), "--endpoint", bulkput_server.endpoint_url, "--progress", "none",
        "--state-dir", str(blocker / "state"), f"s3://{bulkput_bucket}/sd/", env=bulkput_server.env("s3"),
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0], done.stderr
    assert bulkput_server.stats.puts("sd/good0.txt", bucket=bulkput_bucket) == 0


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_for_the_journal_stops_cleanly_and_claims_nothing_unstored(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    """The state dir is a 256 KiB tmpfs: the journal fills it part way through 6,000 objects.
    The job stops (exit 3, one message); every object the report calls stored is on the
    server with the right bytes."""
    server = bulkput_server_factory(buckets=["full"])
    src = tmp_path / "src"
    src.mkdir()
    for n in range(6_000):
        (src / f"object-with-a-long-name-to-fill-the-journal-{n:05d}.txt").write_bytes(b"%d\n" % n)
    report = tmp_path / "r.jsonl"
    with tiny_tmpfs(tmp_path / "tiny", "256k") as state:
        done = run_bulkput(
            "put", str(src), "--endpoint", server.endpoint_url, "--report", str(report), "--progress", "none",
            "--state-dir", str(state), "s3://full/j/", env=server.env("s3"),
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "space" in done.stderr or "full" in done.stderr, done.stderr
    lines, summary = read_report(report)
    assert summary["aborted"] and summary["exit_code"] == 3
    assert summary["stored"] < 6_000
    stored = [line for line in lines if line["status"] == "stored"]
    etags = asyncio.run(list_etags(server, "s3://full/", "j/"))
    for line in stored:  # nothing reported stored that was not
        n = int(line["key"].rsplit("-", 1)[1].split(".")[0])
        assert etags.get(line["key"]) == hashlib.md5(b"%d\n" % n).hexdigest(), line["key"]


async def list_etags(server: ServerHandle, dest: str, prefix: str) -> dict[str, str]:
    _t, store = await open_destination(dest, endpoint=server.endpoint_url, env=server.env("s3"))
    try:
        return {info.key: (info.etag or "").lower() async for info in store.list_objects(prefix)}
    finally:
        await store.close()
