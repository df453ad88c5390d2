"""bulkput's adaptive limit over one run: parsed from its ``-v`` log, bounded, and drawn.

With ``-v`` bulkput logs every change of its requests-in-flight limit as
``2026-12-04 18:43:19,560 bulkput.remote.retry INFO requests in flight 64 -> 128: why``.
The harness runs the bulkput lane of a ``trace`` scenario once more with ``-v`` after the
counted runs (the object lines ``-v`` prints cost CPU, so that run is not one of them), turns
the log into ``[(seconds since start, limit, why), ...]`` and the docs draw it as a step chart.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

_CHANGE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) bulkput\.remote\.retry INFO "
    r"requests in flight (\d+) -> (\d+): (.*)$"
)
MAX_POINTS = 400  # a long job's trace is thinned to this many changes (first and last kept)


def parse_changes(log: str, started_epoch: float) -> tuple[int | None, list[list[Any]]]:
    """The limit at the start and ``[[seconds, limit, why], ...]`` from a ``-v`` log; times
    are local (logging's asctime), ``started_epoch`` is ``time.time()`` at the start."""
    first: int | None = None
    points: list[list[Any]] = []
    for line in log.splitlines():
        match = _CHANGE.match(line)
        if match is None:
            continue
        stamp, before, after, why = match.groups()
        when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if first is None:
            first = int(before)
        points.append([round(max(0.0, when - started_epoch), 3), int(after), why])
    return first, points


def bounded(points: list[list[Any]], most: int = MAX_POINTS) -> list[list[Any]]:
    """At most ``most`` points, evenly thinned, the first and the last kept."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def trace_record(log: str, started_epoch: float, wall_s: float, lane: str,
                 command: str) -> dict[str, Any]:  # fmt: skip
    first, points = parse_changes(log, started_epoch)
    return {
        "lane": lane,
        "command": command,
        "wall_s": round(wall_s, 3),
        "initial": first,
        "changes_total": len(points),
        "changes": bounded(points),
    }


def write_limit_chart(trace: dict[str, Any], title: str, path: Path) -> bool:
    """A step chart of the limit over the run; False without matplotlib or without a start."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if trace.get("initial") is None:
        return False
    times = [0.0] + [float(p[0]) for p in trace["changes"]] + [float(trace["wall_s"])]
    limits = [int(trace["initial"])] + [int(p[1]) for p in trace["changes"]]
    limits.append(limits[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.step(times, limits, where="post", color="#d95f02")
    ax.set_xlabel("seconds since bulkput started (one traced run, -v)")
    ax.set_ylabel("requests in flight allowed")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
