"""Running one contender as a separate process and measuring it.

Per run: wall time (monotonic clock around the process's life), client user and system CPU of
the whole process tree (``os.wait4``'s rusage covers the process and every descendant it
reaped), peak RSS (``ru_maxrss`` from ``wait4``: the largest single process of the tree), the
peak summed RSS of the tree (psutil polling, when psutil is importable; it matters for
multi-process contenders), and the server's CPU from /proc before and after.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_POLL_INTERVAL = 0.25  # tree RSS polling; coarse so the poller costs the 2 cores almost nothing
_TAIL = 2000


@dataclass(frozen=True)
class ProcessMeasurement:
    exit_code: int  # negative: killed by that signal
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_bytes: int
    tree_peak_rss_bytes: int | None
    server_cpu_s: float | None
    helper_cpu_s: float | None  # processes that work for the client outside its tree (Dask)
    timed_out: bool
    output_tail: str  # the end of stdout+stderr, for failed runs

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


class _TreeRssPoller(threading.Thread):
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            total = 0
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop_event.wait(_POLL_INTERVAL)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


def _psutil_available() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - _TAIL))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_measured(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path,
                 timeout_s: float, server_cpu: Callable[[], float] | None = None,
                 helper_cpu: Callable[[], float] | None = None) -> ProcessMeasurement:
    """Run ``argv`` to completion (its own session, output to ``log_path``) and measure it."""
    poll_rss = _psutil_available()
    server_before = server_cpu() if server_cpu else None
    helper_before = helper_cpu() if helper_cpu else None
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        poller = _TreeRssPoller(process.pid) if poll_rss else None
        if poller is not None:
            poller.start()
        timed_out = threading.Event()

        def kill_tree() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, kill_tree)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted harness: take the contender down with it
            kill_tree()
            os.wait4(process.pid, 0)
            process.returncode = -signal.SIGKILL
            if poller is not None:
                poller.stop()
            raise
        finally:
            timer.cancel()
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it, tell Popen
        tree_peak = poller.stop() if poller is not None else None
    server_after = server_cpu() if server_cpu else None
    helper_after = helper_cpu() if helper_cpu else None
    # ru_maxrss is in KiB on Linux
    return ProcessMeasurement(
        exit_code=process.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        max_rss_bytes=usage.ru_maxrss * 1024,
        tree_peak_rss_bytes=tree_peak or None,
        server_cpu_s=(server_after - server_before)
        if server_after is not None and server_before is not None else None,
        helper_cpu_s=(helper_after - helper_before)
        if helper_after is not None and helper_before is not None else None,
        timed_out=timed_out.is_set(),
        output_tail="" if process.returncode == 0 else _tail(log_path),
    )
