"""The progress display as a user sees it: ``bulkput put`` in a pseudo-terminal (the live bar
with totals, %, and the summary; the terminal put back after a second Ctrl-C), and on a pipe
(a plain text line per interval, or JSON lines with the controller's limit and reason).

The store is ``bulkput serve`` in this process, 100 ms per PutObject, so a job of 300 files at
16 requests in flight lasts about 2 s: long enough to see the bar mid-job."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from fcntl import ioctl
from pathlib import Path

import pytest

from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle

FILES = 300
FILE_SIZE = 1000
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def slow_store(bulkput_server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return bulkput_server_factory(
        buckets=["progress"],
        faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=100,
                           operations=frozenset({"PutObject"})),
    )  # fmt: skip


@pytest.fixture
def slower_store(bulkput_server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    """1 s per PutObject: a stop waits that long for the requests in flight, so a second
    signal comes while the first one's stop is still going on."""
    return bulkput_server_factory(
        buckets=["progress"],
        faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=1000,
                           operations=frozenset({"PutObject"})),
    )  # fmt: skip


def make_files(root: Path, count: int = FILES) -> Path:
    root.mkdir()
    for n in range(count):
        (root / f"f{n:04d}.bin").write_bytes(os.urandom(FILE_SIZE))
    return root


def command(server: ServerHandle, source: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bulkput", "put", str(source), "s3://progress/p/",
            "--endpoint", server.endpoint_url, "--no-journal", "--concurrency", "16", *extra]  # fmt: skip


def environment(server: ServerHandle, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, **server.env("s3"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    for name in ("COLUMNS", "LINES", "NO_COLOR", "TERM"):
        env.pop(name, None)
    env["TERM"] = "xterm-256color"
    return env


class Terminal:
    """A process with its stdin and stderr (and stdout, with ``stdout=True``) on a
    pseudo-terminal of 120 x 30; the raw output."""

    def __init__(self, argv: list[str], env: dict[str, str], stdout: bool = False) -> None:
        self.master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.process = subprocess.Popen(argv, stdin=slave,
                                        stdout=slave if stdout else subprocess.DEVNULL,
                                        stderr=slave, env=env, start_new_session=True)  # fmt: skip
        os.close(slave)
        self.output = ""

    def read_until(self, done: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while not done(self.output) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                self.output += chunk.decode("utf-8", "replace")
            elif self.process.poll() is not None:
                break
        return self.output

    def finish(self) -> int:
        self.read_until(lambda _: False, timeout=60.0)
        code = self.process.wait(timeout=30)
        os.close(self.master)
        return code


def screen_text(raw: str) -> str:
    return _ESCAPES.sub("", raw).replace("\r", "\n")


def stored_keys(server: ServerHandle) -> int:
    return sum(1 for key in server.stats.puts_by_key if key.startswith("progress/p/"))


@pytest.mark.slow
def test_live_display_shows_totals_percent_and_restores_the_terminal(
    slow_store: ServerHandle, tmp_path: Path
) -> None:
    source = make_files(tmp_path / "src")
    terminal = Terminal(command(slow_store, source), environment(slow_store, tmp_path))
    # mid-job: a frame with a % under 100 and the whole job counted
    middle = terminal.read_until(
        lambda out: re.search(r"\b([1-9]\d?)%", screen_text(out)) is not None
        and f"/{FILES} objects" in screen_text(out)
    )
    mid_screen = screen_text(middle)
    assert re.search(rf"\d+/{FILES} objects, [\d.]+ (KiB|B)/293\.0 KiB", mid_screen), mid_screen[-2000:]
    assert re.search(r"\b[1-9]\d?%", mid_screen)
    assert "ETA" in mid_screen and "objects/s" in mid_screen
    assert terminal.process.poll() is None, "the job ended before a mid-job frame was seen"
    code = terminal.finish()
    screen = screen_text(terminal.output)
    assert code == 0, screen[-2000:]
    assert stored_keys(slow_store) == FILES
    assert f"{FILES}/{FILES} objects, 293.0 KiB/293.0 KiB" in screen
    assert "100%" in screen
    assert re.search(rf"^stored {FILES} objects \(293\.0 KiB\), failed 0 in [\d.]+ s", screen,
                     re.MULTILINE), screen[-2000:]  # fmt: skip
    # the cursor hidden while the bar is up, shown again before the summary
    output = terminal.output
    assert HIDE_CURSOR in output
    assert output.rfind(SHOW_CURSOR) > output.rfind(HIDE_CURSOR)
    assert output.rfind(SHOW_CURSOR) < output.find("stored 300 objects")


@pytest.mark.slow
def test_object_lines_on_the_same_terminal_go_above_the_bar(
    slow_store: ServerHandle, tmp_path: Path
) -> None:
    source = make_files(tmp_path / "src", 40)
    terminal = Terminal(command(slow_store, source, "-v", "--concurrency", "4"),
                        environment(slow_store, tmp_path), stdout=True)  # fmt: skip
    assert terminal.finish() == 0
    output = terminal.output
    starts = [m.start() for m in re.finditer(r"upload: \S+ -> s3://progress/p/f\d+\.bin", output)]
    assert len(starts) == 40, screen_text(output)[-2000:]
    # each on a line of its own: the bar erased first (or a fresh line, or before the first
    # frame), never glued to the bar's last line
    for start in starts:
        assert output[:start].endswith(("\x1b[2K", "\n", HIDE_CURSOR)), repr(output[start - 80:start + 40])


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals",
    [(signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)],
    ids=["ctrl-c", "ctrl-c-twice", "sigterm"],
)
def test_interrupted_job_leaves_the_terminal_restored(
    slower_store: ServerHandle, tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    source = make_files(tmp_path / "src")
    terminal = Terminal(command(slower_store, source, "--concurrency", "4"),
                        environment(slower_store, tmp_path))  # fmt: skip
    terminal.read_until(lambda out: re.search(r"\d+(/\d+)? objects", screen_text(out)) is not None)
    for signum in signals:
        terminal.process.send_signal(signum)
        terminal.read_until(lambda out: "stopping" in out, timeout=10)
    code = terminal.finish()
    output = terminal.output
    assert code == 130, screen_text(output)[-2000:]
    if len(signals) == 2:
        assert "interrupted again, exiting now" in output
    else:  # stopped cleanly: the summary says so, below the bar
        assert "interrupted: stopped cleanly" in output
        assert output.rfind(SHOW_CURSOR) < output.find("interrupted: stopped cleanly")
    assert HIDE_CURSOR in output
    assert output.rfind(SHOW_CURSOR) > output.rfind(HIDE_CURSOR)
    assert stored_keys(slower_store) < FILES


def test_text_line_on_a_pipe_every_interval(slow_store: ServerHandle, tmp_path: Path) -> None:
    source = make_files(tmp_path / "src", 100)
    done = subprocess.run(
        command(slow_store, source, "--concurrency", "8", "--progress-interval", "0.3"),
        env=environment(slow_store, tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, done.stderr
    assert re.match(r"progress: \d+/100 objects, [\d.]+ (B|KiB)/97\.7 KiB(?: \(\+.*\))? \(\d+%\), "
                    r"\d+ objects/s, .*ETA", lines[-1]), lines  # fmt: skip
    assert "{" not in done.stderr  # not JSON
    assert done.stderr.splitlines()[-1].startswith("stored 100 objects")


def test_json_lines_carry_totals_and_the_concurrency_limit(
    slow_store: ServerHandle, tmp_path: Path
) -> None:
    source = make_files(tmp_path / "src", 100)
    done = subprocess.run(
        command(slow_store, source, "--concurrency", "8", "--progress", "json",
                "--progress-interval", "0.3"),
        env=environment(slow_store, tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line)["progress"] for line in done.stderr.splitlines()
               if line.startswith('{"progress"')]  # fmt: skip
    assert len(records) >= 2, done.stderr
    middle, last = records[0], records[-1]
    assert middle["objects_total"] == 100 and middle["bytes_total"] == 100 * FILE_SIZE
    assert middle["limit"] == 8 and middle["limit_reason"] == "fixed (--concurrency)"
    assert 0 < middle["in_flight"] <= 8
    assert last["objects_done"] == 100 and last["bytes_done"] == 100 * FILE_SIZE
    assert last["percent"] == 100.0 and last["stored"] == 100 and last["counting"] is False


def test_sync_text_line_has_the_walk_total(slow_store: ServerHandle, tmp_path: Path) -> None:
    source = make_files(tmp_path / "src", 100)
    argv = [sys.executable, "-m", "bulkput", "sync", str(source), "s3://progress/s/",
            "--endpoint", slow_store.endpoint_url, "--concurrency", "8",
            "--progress-interval", "0.3"]  # fmt: skip
    done = subprocess.run(argv, env=environment(slow_store, tmp_path), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert lines and all("/100 objects, " in line for line in lines), done.stderr
    assert re.search(r"/97\.7 KiB \(\d+%\)", lines[-1]), lines
    assert sum(1 for key in slow_store.stats.puts_by_key if key.startswith("progress/s/")) == 100


def test_retries_are_shown_with_their_last_cause_and_no_secret(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    store = bulkput_server_factory(
        buckets=["progress"], faults=FaultConfig(rate=0.3, mix=("slowdown",), seed=3)
    )
    source = make_files(tmp_path / "src", 60)
    done = subprocess.run(
        command(store, source, "--progress", "json", "--progress-interval", "60"),
        env=environment(store, tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stored_keys(store) == 60
    final = [json.loads(line)["progress"] for line in done.stderr.splitlines()
             if line.startswith('{"progress"')][-1]  # fmt: skip
    assert final["retries"] > 0
    last = final["last_retry"]
    assert last["code"] == "SlowDown" and last["status"] == 503
    assert last["key"].startswith("p/f00")
    assert store.secret_key not in done.stderr


@pytest.mark.slow
def test_report_to_the_same_terminal_goes_above_the_bar(
    slow_store: ServerHandle, tmp_path: Path
) -> None:
    """``--report -`` with standard output on the terminal of the bar: each JSON line stands on
    a line of its own above the bar, whole, and none is torn by a redraw."""
    source = make_files(tmp_path / "src", 80)  # 2 s: the report is flushed while the bar is up
    terminal = Terminal(command(slow_store, source, "--report", "-", "--concurrency", "4"),
                        environment(slow_store, tmp_path), stdout=True)  # fmt: skip
    assert terminal.finish() == 0
    output = terminal.output
    starts = [m.start() for m in re.finditer(r'\{"key":"p/f\d+\.bin"', output)]
    assert len(starts) == 80, screen_text(output)[-2000:]
    assert starts[0] < output.rfind(SHOW_CURSOR), "no report line came while the bar was up"
    for start in starts:  # at the start of a line (the bar erased first), not after its text
        before = _ESCAPES.sub("", output[:start])
        assert before.endswith(("\n", "\r")) or not before, repr(output[start - 80:start + 40])
    records = [json.loads(line) for line in screen_text(output).split("\n")
               if line.startswith(('{"key"', '{"summary"'))]
    assert sum(1 for record in records if record.get("status") == "stored") == 80, records
    assert records[-1]["summary"]["stored"] == 80
    assert stored_keys(slow_store) == 80
