"""Running one contender as a separate process and measuring it.

Per run: wall time (monotonic clock around the process's life); client user and system CPU of
the whole process tree (``os.wait4``'s rusage covers the process and every descendant it
reaped); peak RSS; the server's CPU from /proc before and after.

Peak RSS is polled from ``/proc/PID/status`` of every process in the tree: ``VmHWM`` (the
high-water mark of that process's own memory since its ``exec``) and the sum of ``VmRSS``.
``wait4``'s ``ru_maxrss`` is recorded too but is not used as the figure: Linux carries the
parent's RSS at ``fork`` over into the child's ``ru_maxrss`` across ``exec``, so every contender
would show at least the harness's own size.
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

_POLL_INTERVAL = 0.1  # a few /proc reads per sample: cheap beside any contender
_TAIL = 2000


@dataclass(frozen=True)
class ProcessMeasurement:
    exit_code: int  # negative: killed by that signal
    wall_s: float
    user_s: float
    sys_s: float
    ru_maxrss_bytes: int  # from wait4; includes the harness's RSS at fork (see above)
    peak_rss_bytes: int | None  # the largest VmHWM of any process of the tree
    tree_peak_rss_bytes: int | None  # the largest sum of VmRSS over the tree
    server_cpu_s: float | None
    helper_cpu_s: float | None  # processes that work for the client outside its tree (Dask)
    timed_out: bool
    output_tail: str  # the end of stdout+stderr, for failed runs

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmHWM, VmRSS) of ``pid`` in KiB, or None when it is gone."""
    hwm = rss = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
    except (OSError, ValueError):
        return None
    return hwm, rss


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (through /proc/PID/task/*/children)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    kids = [int(k) for k in children.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            pending.extend(kids)
    return found


class _TreeMemoryPoller(threading.Thread):
    """Samples the memory of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_hwm_kib = 0
        self.peak_sum_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = 0
            for pid in [self.pid, *_children(self.pid)]:
                memory = _memory_kib(pid)
                if memory is None:
                    continue
                self.peak_hwm_kib = max(self.peak_hwm_kib, memory[0])
                total += memory[1]
            self.peak_sum_kib = max(self.peak_sum_kib, total)
            self._stop_event.wait(_POLL_INTERVAL)

    def stop(self) -> tuple[int | None, int | None]:
        self._stop_event.set()
        self.join(timeout=5)
        return (self.peak_hwm_kib * 1024 or None, self.peak_sum_kib * 1024 or None)


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
    server_before = server_cpu() if server_cpu else None
    helper_before = helper_cpu() if helper_cpu else None
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        poller = _TreeMemoryPoller(process.pid)
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
            poller.stop()
            raise
        finally:
            timer.cancel()
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it, tell Popen
        # the poller's last sample may precede the exit by up to one interval: a peak in the
        # very last moment can be missed (VmHWM is monotonic, so earlier peaks never are)
        peak, tree_peak = poller.stop()
    server_after = server_cpu() if server_cpu else None
    helper_after = helper_cpu() if helper_cpu else None
    # ru_maxrss is in KiB on Linux
    return ProcessMeasurement(
        exit_code=process.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        ru_maxrss_bytes=usage.ru_maxrss * 1024,
        peak_rss_bytes=peak,
        tree_peak_rss_bytes=tree_peak,
        server_cpu_s=(server_after - server_before)
        if server_after is not None and server_before is not None else None,
        helper_cpu_s=(helper_after - helper_before)
        if helper_after is not None and helper_before is not None else None,
        timed_out=timed_out.is_set(),
        output_tail="" if process.returncode == 0 else _tail(log_path),
    )
