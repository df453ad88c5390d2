"""Request counters of `bulkput serve`, so tests can assert what a client sent.

Counted per request: (method, operation), answer status, injected faults; per key: successful
object PUTs (``PutObject`` and ``CompleteMultipartUpload``) and every part upload attempt that
was stored; and the client connections that sent requests (told apart by the client's address
and port), so a test can see whether a client reused its connections. Read them in-process from ``ServerHandle.stats`` or over HTTP from
``GET /_bulkput/stats``; clear them with ``POST /_bulkput/reset-stats``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    requests: dict[str, int] = field(default_factory=dict)  # "PUT PutObject" -> n
    operations: dict[str, int] = field(default_factory=dict)  # "PutObject" -> n (all methods)
    statuses: dict[str, int] = field(default_factory=dict)  # "200" -> n
    faults: dict[str, int] = field(default_factory=dict)  # "slowdown" -> n
    puts_by_key: dict[str, int] = field(default_factory=dict)  # bucket/key -> stored PUTs
    parts_by_key: dict[str, dict[int, int]] = field(default_factory=dict)  # bucket/key -> part -> n
    total: int = 0
    connections: int = 0  # client connections (address and port) that sent a request

    def count(self, operation: str, method: str | None = None) -> int:
        if method is None:
            return self.operations.get(operation, 0)
        return self.requests.get(f"{method} {operation}", 0)

    def puts(self, key: str, bucket: str | None = None) -> int:
        """Stored PUTs of one object (single PUTs and completed multipart uploads)."""
        if bucket is not None:
            return self.puts_by_key.get(f"{bucket}/{key}", 0)
        return sum(n for name, n in self.puts_by_key.items() if name.split("/", 1)[1] == key)

    def part_uploads(self, key: str, bucket: str | None = None) -> dict[int, int]:
        """Stored part uploads of one object: part number -> how many times."""
        if bucket is not None:
            return dict(self.parts_by_key.get(f"{bucket}/{key}", {}))
        merged: Counter[int] = Counter()
        for name, parts in self.parts_by_key.items():
            if name.split("/", 1)[1] == key:
                merged.update(parts)
        return dict(merged)

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "connections": self.connections,
            "requests": self.requests,
            "operations": self.operations,
            "statuses": self.statuses,
            "faults": self.faults,
            "puts_by_key": self.puts_by_key,
            "parts_by_key": {
                k: {str(n): c for n, c in v.items()} for k, v in self.parts_by_key.items()
            },
        }


class Stats:
    """Counters updated by the server's event loop and read from any thread."""

    def __init__(self, *, track_keys: bool = True) -> None:
        self.track_keys = track_keys
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._requests: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._puts: Counter[str] = Counter()
        self._parts: dict[str, Counter[int]] = {}
        self._total = 0
        self._peers: set[object] = set()

    def request(self, method: str, operation: str, status: int, peer: object = None) -> None:
        """One answered request; ``peer``: the client's (address, port), one per connection."""
        with self._lock:
            self._total += 1
            if peer is not None:
                self._peers.add(peer)
            self._requests[f"{method} {operation}"] += 1
            self._operations[operation] += 1
            self._statuses[str(status)] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def stored(self, bucket: str, key: str) -> None:
        if self.track_keys:
            with self._lock:
                self._puts[f"{bucket}/{key}"] += 1

    def part_stored(self, bucket: str, key: str, number: int) -> None:
        if self.track_keys:
            with self._lock:
                self._parts.setdefault(f"{bucket}/{key}", Counter())[number] += 1

    def reset(self) -> None:
        with self._lock:
            self._reset()

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                requests=dict(self._requests),
                operations=dict(self._operations),
                statuses=dict(self._statuses),
                faults=dict(self._faults),
                puts_by_key=dict(self._puts),
                parts_by_key={k: dict(v) for k, v in self._parts.items()},
                total=self._total,
                connections=len(self._peers),
            )
