"""`bulkput put` end to end against `bulkput serve` (BOS, OSS V1, OSS V4, S3) and rclone."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bulkput.cli import main
from bulkput.remote.client import open_store
from bulkput.remote.credentials import Credentials
from bulkput.remote.target import Target, resolve_endpoint

# Keys with spaces, unicode (NFC), and characters every signer must encode.
TRICKY_NAMES = [
    "plain.txt",
    "with space.txt",
    "ünïcødé/ñ 日本.json",
    "reserved/a+b=c&d;e,f@g$h!i'j(k)l*.bin",
    "percent/100%.txt",
    "tilde~and-dash_under.csv",
    "deep/er/still/deeper/x.html",
    "empty.dat",
]


def make_tree(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for n, name in enumerate(TRICKY_NAMES):
        data = b"" if name == "empty.dat" else os.urandom(50 + 97 * n) + name.encode()
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[name] = data
    return files


def put(*args: str) -> int:
    return main(["put", *args])


def server_args(server, bucket_url: str, state: Path) -> list[str]:
    return [
        "--endpoint", server.endpoint_url, "--access-key", server.access_key,
        "--secret-key", server.secret_key, "--state-dir", str(state), bucket_url,
    ]  # fmt: skip


async def read_back(server_url: str, creds: Credentials, dest: str, keys, signature="v4"):
    target = Target.parse(dest)
    store = open_store(
        target,
        endpoint=resolve_endpoint(target, server_url, None, "path"),
        credentials=creds,
        signature_version=signature,
    )
    try:
        out = {}
        for key in keys:
            info = await store.head_object(key)
            out[key] = (await store.get_object(key) if info and info.size else b"", info)
        return out
    finally:
        await store.close()


def report_lines(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert "summary" in lines[-1]
    return lines[:-1], lines[-1]["summary"]


@pytest.mark.parametrize(
    ("scheme", "signature"), [("bos", "v4"), ("oss", "v1"), ("oss", "v4"), ("s3", "v4")]
)
def test_put_tree_every_dialect(bulkput_server, bulkput_bucket, tmp_path, scheme, signature) -> None:
    files = make_tree(tmp_path / "src")
    report = tmp_path / "report.jsonl"
    dest = f"{scheme}://{bulkput_bucket}/up/"
    code = put(
        "--signature-version", signature, "--meta", "owner=h5", "--cache-control", "max-age=9",
        "--report", str(report), "--quiet", str(tmp_path / "src"),
        *server_args(bulkput_server, dest, tmp_path / "state"),
    )  # fmt: skip
    assert code == 0
    keys = {f"up/{name}": data for name, data in files.items()}
    stored = asyncio.run(
        read_back(bulkput_server.endpoint_url, bulkput_server.credentials[0], dest, keys, signature)
    )
    for key, data in keys.items():
        body, info = stored[key]
        assert body == data, key
        assert info.size == len(data)
        assert info.metadata.get("owner") == "h5"
    assert stored["up/plain.txt"][1].content_type == "text/plain"
    assert stored["up/ünïcødé/ñ 日本.json"][1].content_type == "application/json"
    lines, summary = report_lines(report)
    assert summary["stored"] == len(files) and summary["exit_code"] == 0
    by_key = {line["key"]: line for line in lines}
    assert set(by_key) == set(keys)
    for key, data in keys.items():
        assert by_key[key]["status"] == "stored"
        assert by_key[key]["md5"] == hashlib.md5(data).hexdigest() == by_key[key]["etag"]
        assert by_key[key]["size"] == len(data) and by_key[key]["attempts"] == 1


def test_put_against_rclone(rclone_server, tmp_path) -> None:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3", endpoint_url=rclone_server.endpoint, region_name="us-east-1",
        aws_access_key_id=rclone_server.access_key, aws_secret_access_key=rclone_server.secret_key,
    )  # fmt: skip
    client.create_bucket(Bucket="h5-put")
    files = make_tree(tmp_path / "src")
    code = put(
        "--quiet", "--content-type", "application/x-test", "--meta", "k=v", str(tmp_path / "src"),
        "--endpoint", rclone_server.endpoint, "--access-key", rclone_server.access_key,
        "--secret-key", rclone_server.secret_key, "--no-journal", "s3://h5-put/r",
    )  # fmt: skip
    assert code == 0
    for name, data in files.items():
        answer = client.get_object(Bucket="h5-put", Key=f"r/{name}")
        assert answer["Body"].read() == data, name
        assert answer["ContentType"] == "application/x-test"
        # rclone answers metadata names in Go's canonical case ("K")
        assert {k.lower(): v for k, v in answer["Metadata"].items()} == {"k": "v"}


def test_manifest_csv_and_jsonl(bulkput_server, bulkput_bucket, tmp_path) -> None:
    files = make_tree(tmp_path / "src")
    src = tmp_path / "src"
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text(
        "path,key,content_type,meta_color,cache_control\n"
        f'{src / "plain.txt"},csv/one.txt,text/x-one,red,no-cache\n'
        f'"{src / "with space.txt"}",csv/two words.txt,,blue,\n'
    )
    jsonl_manifest = tmp_path / "m.jsonl"
    jsonl_manifest.write_text(
        json.dumps({"path": str(src / "reserved/a+b=c&d;e,f@g$h!i'j(k)l*.bin"), "key": "j/r.bin",
                    "metadata": {"origin": "jsonl"}, "content_disposition": "attachment"}) + "\n"
        + "{not json\n"
        + json.dumps({"path": str(src / "percent/100%.txt"), "key": "j/p.txt"}) + "\n"
    )  # fmt: skip
    dest = f"s3://{bulkput_bucket}/m"
    assert put("--manifest", str(csv_manifest), "--quiet", *server_args(bulkput_server, dest, tmp_path / "s")) == 0
    report = tmp_path / "j.jsonl"
    code = put(
        "--manifest", str(jsonl_manifest), "--report", str(report), "--quiet",
        *server_args(bulkput_server, dest, tmp_path / "s"),
    )  # fmt: skip
    assert code == 1  # one malformed line; the other lines are stored
    keys = ["m/csv/one.txt", "m/csv/two words.txt", "m/j/r.bin", "m/j/p.txt"]
    stored = asyncio.run(
        read_back(bulkput_server.endpoint_url, bulkput_server.credentials[0], dest, keys)
    )
    one, two = stored["m/csv/one.txt"], stored["m/csv/two words.txt"]
    assert one[0] == files["plain.txt"] and one[1].content_type == "text/x-one"
    assert one[1].metadata == {"color": "red"}
    assert two[0] == files["with space.txt"] and two[1].metadata == {"color": "blue"}
    assert stored["m/j/r.bin"][0] == files["reserved/a+b=c&d;e,f@g$h!i'j(k)l*.bin"]
    assert stored["m/j/r.bin"][1].metadata == {"origin": "jsonl"}
    assert stored["m/j/p.txt"][0] == files["percent/100%.txt"]
    lines, summary = report_lines(report)
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(failed) == 1 and "line 2" in failed[0]["message"]
    assert summary["stored"] == 2 and summary["failed"] == 1 and summary["exit_code"] == 1


def test_a_missing_source_is_a_usage_error_before_any_upload(
    bulkput_server, bulkput_bucket, tmp_path, capsys
) -> None:
    # Before, the job ran: the folder was stored and the missing path reported failed (exit
    # 1); sync of a missing path was already a usage error. Now both stop before any work.
    make_tree(tmp_path / "src")
    report = tmp_path / "r.jsonl"
    bulkput_server.reset_stats()
    code = put(
        "--report", str(report), "--quiet", str(tmp_path / "src"), str(tmp_path / "missing.bin"),
        *server_args(bulkput_server, f"oss://{bulkput_bucket}/x", tmp_path / "s"),
    )  # fmt: skip
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "missing.bin: no such file or directory" in line
    assert bulkput_server.stats.total == 0  # not one request
    assert not report.exists()  # nor any other work


def test_dry_run_sends_nothing(bulkput_server, bulkput_bucket, tmp_path) -> None:
    make_tree(tmp_path / "src")
    report = tmp_path / "r.jsonl"
    dest = f"s3://{bulkput_bucket}/dry"
    assert put("--dry-run", "--report", str(report), "--quiet", str(tmp_path / "src"),
               *server_args(bulkput_server, dest, tmp_path / "s")) == 0  # fmt: skip
    lines, summary = report_lines(report)
    assert {line["status"] for line in lines} == {"planned"}
    assert summary["planned"] == len(TRICKY_NAMES)
    stored = asyncio.run(
        read_back(bulkput_server.endpoint_url, bulkput_server.credentials[0], dest, ["dry/plain.txt"])
    )
    assert stored["dry/plain.txt"][1] is None


def test_dry_run_and_verbose_print_one_line_per_object(
    bulkput_server, bulkput_bucket, tmp_path, capsys
) -> None:
    """As aws s3 cp --dryrun and its 'upload: a to s3://...' lines: one line per object on stdout."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"abc")
    (src / "b c.txt").write_bytes(b"x" * 2048)
    dest = f"s3://{bulkput_bucket}/lines"
    capsys.readouterr()
    assert put("--dry-run", "--progress", "none", str(src),
               *server_args(bulkput_server, dest, tmp_path / "s")) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        f"(dry run) upload {src}/a.txt -> s3://{bulkput_bucket}/lines/a.txt (3 B)",
        f"(dry run) upload {src}/b c.txt -> s3://{bulkput_bucket}/lines/b c.txt (2.0 KiB)",
    ]
    assert put("-v", "--progress", "none", str(src / "a.txt"),
               *server_args(bulkput_server, dest + "/one.txt", tmp_path / "s")) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        f"upload: {src}/a.txt -> s3://{bulkput_bucket}/lines/one.txt"
    ]
    stored = asyncio.run(read_back(bulkput_server.endpoint_url, bulkput_server.credentials[0],
                                   dest, ["lines/one.txt", "lines/a.txt"]))  # fmt: skip
    assert stored["lines/one.txt"][0] == b"abc" and stored["lines/a.txt"][1] is None


def test_report_dash_writes_the_jsonl_report_to_stdout(
    bulkput_server, bulkput_bucket, tmp_path, capsys, monkeypatch
) -> None:
    """--report - : standard output holds only the JSON lines (the summary line last), the
    human summary goes to stderr, and no file named '-' is created."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"abc")
    (src / "b.txt").write_bytes(b"de")
    capsys.readouterr()
    assert put("--report", "-", "--dry-run", "-v", str(src),
               *server_args(bulkput_server, f"s3://{bulkput_bucket}/dash/", tmp_path / "s")) == 0  # fmt: skip
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("key") for r in records[:-1]] == ["dash/a.txt", "dash/b.txt"]
    assert records[-1]["summary"]["planned"] == 2
    assert "(dry run) upload" in err and "planned 2 (dry run)" in err
    assert not (tmp_path / "-").exists()


def test_second_run_of_a_completed_job_uploads_again(bulkput_server, bulkput_bucket, tmp_path) -> None:
    """put copies (as aws s3 cp): a job that ended with every object stored is complete, and the
    same command again is a new upload (resuming an unfinished job: test_resume_store.py)."""
    make_tree(tmp_path / "src")
    args = ["--quiet", str(tmp_path / "src"), *server_args(bulkput_server, f"bos://{bulkput_bucket}/j", tmp_path / "s")]
    assert put(*args) == 0
    report = tmp_path / "again.jsonl"
    assert put("--report", str(report), *args) == 0
    lines, summary = report_lines(report)
    assert summary["stored"] == len(TRICKY_NAMES) and summary["skipped"] == 0
    assert {line["status"] for line in lines} == {"stored"}
    assert any("uploads every object again" in note for note in summary["journal_notes"])


def test_large_file_multipart_through_put(bulkput_server, bulkput_bucket, tmp_path) -> None:
    big = tmp_path / "big.bin"
    data = os.urandom(11 * 1024 * 1024 + 7)
    big.write_bytes(data)
    dest = f"s3://{bulkput_bucket}/mp/"  # a folder: one file to mp alone would be the key mp
    code = put("--multipart-threshold", "6M", "--part-size", "5M", "--quiet", str(big),
               *server_args(bulkput_server, dest, tmp_path / "s"))  # fmt: skip
    assert code == 0
    stored = asyncio.run(
        read_back(bulkput_server.endpoint_url, bulkput_server.credentials[0], dest, ["mp/big.bin"])
    )
    assert stored["mp/big.bin"][0] == data


# --- exit codes, through the real process ------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_"))}
    base["HOME"] = base.get("H5_TEST_HOME", "/nonexistent-home")
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "put", *args],
        capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})},
    )  # fmt: skip


def test_exit_codes(bulkput_server, bulkput_bucket, tmp_path) -> None:
    make_tree(tmp_path / "src")
    src = str(tmp_path / "src")
    state = ["--state-dir", str(tmp_path / "state")]
    url = bulkput_server.endpoint_url
    env = {**bulkput_server.env("s3"), "HOME": str(tmp_path)}

    ok = run_cli(src, "--endpoint", url, *state, f"s3://{bulkput_bucket}/ok", env=env)
    assert ok.returncode == 0, ok.stderr

    wrong_secret = "not-the-secret-xyz"
    bad_auth = run_cli(src, "--endpoint", url, "--access-key", bulkput_server.access_key,
                       "--secret-key", wrong_secret, "--debug", *state, f"s3://{bulkput_bucket}/a",
                       env={"HOME": str(tmp_path)})  # fmt: skip
    assert bad_auth.returncode == 3
    aborted_lines = [line for line in bad_auth.stderr.splitlines() if line.startswith("aborted:")]
    assert len(aborted_lines) == 1 and "SignatureDoesNotMatch" in aborted_lines[0]
    assert "error:" not in bad_auth.stderr  # no per-object storm: the one message says it all
    assert wrong_secret not in bad_auth.stderr + bad_auth.stdout

    no_bucket = run_cli(src, "--endpoint", url, *state, "s3://no-such-bucket-h5/x", env=env)
    assert no_bucket.returncode == 3 and "NoSuchBucket" in no_bucket.stderr

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    refused = run_cli(src, "--endpoint", closed, *state, "s3://bucket-x/x", env=env)
    assert refused.returncode == 3 and "EndpointUnreachable" in refused.stderr

    assert run_cli(src, "--endpoint", url, "bad://x", env=env).returncode == 2
    no_creds = run_cli(src, "--endpoint", url, *state, f"s3://{bulkput_bucket}/c", env={"HOME": str(tmp_path)})
    assert no_creds.returncode == 2 and len(no_creds.stderr.strip().splitlines()) == 1

    missing = run_cli(src, str(tmp_path / "nope"), "--endpoint", url, *state, f"s3://{bulkput_bucket}/m", env=env)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_symlinks_and_fifos_in_a_directory_are_skipped_not_failed(bulkput_server, bulkput_bucket, tmp_path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "loop").symlink_to(src)
    os.mkfifo(src / "fifo")
    report = tmp_path / "report.jsonl"
    code = put(
        str(src), *server_args(bulkput_server, f"s3://{bulkput_bucket}/p/", tmp_path / "state"),
        "--report", str(report), "--quiet",
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in report.read_text().splitlines()]
    by_key = {r["key"]: r for r in records if "key" in r}
    assert by_key["p/a.txt"]["status"] == "stored"
    assert by_key["p/fifo"]["status"] == "skipped" and by_key["p/fifo"]["reason"] == "fifo"
    assert by_key["p/sub/loop"]["status"] == "skipped" and by_key["p/sub/loop"]["reason"] == "symlink"
    assert records[-1]["summary"]["skip_reasons"] == {"fifo": 1, "symlink": 1}

    # Followed, the link leads back up: a loop, reported as one failed entry; the rest is stored.
    code = put(
        str(src), *server_args(bulkput_server, f"s3://{bulkput_bucket}/q/", tmp_path / "state"),
        "--report", str(report), "--quiet", "--follow-symlinks",
    )  # fmt: skip
    assert code == 1
    records = [json.loads(line) for line in report.read_text().splitlines()]
    failed = [r for r in records if r.get("status") == "failed"]
    assert [r["error_code"] for r in failed] == ["SymlinkLoopError"]
    assert "loop" in failed[0]["message"]
    assert bulkput_server.stats.puts("q/a.txt", bucket=bulkput_bucket) == 1
