"""Fault injection for `bulkput serve`: the failures an uploader must survive, on demand.

Kinds (``--fault-mix``):

========== =====================================================================================
requesttimeout  400 RequestTimeout, body left unread (the service gave up waiting for it)
slowdown        503 SlowDown
internal        500 InternalError
reset           the connection is cut in the middle of the request body, no answer at all
slow            the request is served, but its answer is held back ``slow_ms`` (longer than the
                client's timeout): the client gives up and retries an object that is stored
latency         ``latency_ms`` of delay before serving; not a failure
========== =====================================================================================

A request is faulted with probability ``rate`` (the kind drawn from ``mix``), always when its
key matches one of ``keys`` (globs; ``keys_kind`` says how it fails), and with 503 SlowDown when
it exceeds ``throttle_rps`` (a token bucket over the fault-eligible requests). With ``seed`` the
draws repeat from run to run. Only the operations in ``operations`` are eligible (object PUTs
and part uploads by default; ``*`` for every operation, e.g. to add ``latency`` to every
request as a slow link would).
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bulkput.suggest import unknown_value

FAULT_KINDS = ("requesttimeout", "slowdown", "internal", "reset", "slow", "latency")
DEFAULT_MIX = ("requesttimeout", "slowdown", "internal", "reset")
DEFAULT_OPERATIONS = frozenset({"PutObject", "UploadPart"})
EVERY_OPERATION = "*"  # in ``operations``: every request is eligible (``--fault-ops all``)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    rate: float = 0.0
    mix: tuple[str, ...] = DEFAULT_MIX
    latency_ms: int = 50
    slow_ms: int = 30_000
    seed: int | None = None
    keys: tuple[str, ...] = ()
    keys_kind: str = "internal"
    throttle_rps: float | None = None
    operations: frozenset[str] = DEFAULT_OPERATIONS

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate}")
        unknown = [k for k in (*self.mix, self.keys_kind) if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(unknown_value("fault kind", unknown[0], FAULT_KINDS))
        if self.rate > 0 and not self.mix:
            raise ValueError("a fault rate needs at least one kind in the fault mix")
        if self.throttle_rps is not None and self.throttle_rps <= 0:
            raise ValueError("throttle rate must be positive")

    @property
    def active(self) -> bool:
        return self.rate > 0 or bool(self.keys) or self.throttle_rps is not None

    def describe(self) -> str:
        """The settings in one line for people, e.g. ``10% of PutObject and UploadPart
        requests fail (internal, slowdown); seed 7``."""
        operations = sorted(self.operations)
        if EVERY_OPERATION in self.operations:
            targets = "all"
        elif len(operations) > 1:
            targets = ", ".join(operations[:-1]) + " and " + operations[-1]
        else:
            targets = "".join(operations)
        parts = []
        if self.rate > 0:
            kinds = ", ".join(self._kind_text(kind) for kind in self.mix)
            verb = "are delayed" if set(self.mix) <= {"latency"} else "fail"
            parts.append(f"{self.rate * 100:g}% of {targets} requests {verb} ({kinds})")
        if self.keys:
            patterns = ", ".join(self.keys)
            parts.append(f"{targets} requests for keys matching {patterns} fail "
                         f"({self._kind_text(self.keys_kind)})")  # fmt: skip
        if self.throttle_rps is not None:
            parts.append(f"503 SlowDown above {self.throttle_rps:g} requests/s")
        if not parts:
            return "none"
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return "; ".join(parts)

    def _kind_text(self, kind: str) -> str:
        if kind == "latency":
            return f"latency {self.latency_ms} ms"
        if kind == "slow":
            return f"slow: answer held {self.slow_ms} ms"
        return kind

    @classmethod
    def parse_mix(cls, text: str) -> tuple[str, ...]:
        return tuple(part.strip().lower() for part in text.split(",") if part.strip())


@dataclass
class FaultInjector:
    """Decides, request by request, whether and how to fail. Clock injectable for tests."""

    config: FaultConfig
    clock: Callable[[], float] = time.monotonic
    _rng: random.Random = field(init=False)
    _tokens: float = field(init=False, default=0.0)
    _refilled: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        if self.config.throttle_rps is not None:
            self._tokens = self.config.throttle_rps
            self._refilled = self.clock()

    def eligible(self, operation: str) -> bool:
        operations = self.config.operations
        return self.config.active and (operation in operations or EVERY_OPERATION in operations)

    def choose(self, operation: str, key: str | None) -> str | None:
        """The fault kind for this request, or None to serve it normally."""
        if not self.eligible(operation):
            return None
        config = self.config
        if key is not None and any(fnmatch.fnmatchcase(key, pattern) for pattern in config.keys):
            return config.keys_kind
        if config.throttle_rps is not None and not self._take_token():
            return "slowdown"
        if config.rate > 0 and self._rng.random() < config.rate:
            return self._rng.choice(config.mix)
        return None

    def _take_token(self) -> bool:
        rate = self.config.throttle_rps
        assert rate is not None
        now = self.clock()
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
