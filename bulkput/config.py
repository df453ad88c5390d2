"""Settings as frozen value objects. Running state (attempt counters, current concurrency)
lives elsewhere; these only say what the user asked for, and what it costs."""

from __future__ import annotations

import re
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# The one reading of a size, for every option and library call that takes one: a bare letter
# or ``Ki``/``KiB`` is a power of 1024 (as most storage tools read ``8M``), an explicit ``KB``
# a power of 1000 (rsync's convention, and the SI one).
SIZE_UNITS_HELP = "SIZE: bytes, or K, M, G, T (x1024: also KiB, MiB...) or KB, MB, GB, TB (x1000)"
_SIZE_UNITS: dict[str, int] = {"": 1, "B": 1}
for _power, _letter in enumerate("KMGTP", start=1):
    _SIZE_UNITS[_letter] = 1024**_power
    _SIZE_UNITS[_letter + "I"] = 1024**_power
    _SIZE_UNITS[_letter + "IB"] = 1024**_power
    _SIZE_UNITS[_letter + "B"] = 1000**_power
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``"8M"`` and ``"8MiB"`` -> 8388608, ``"8MB"`` -> 8000000,
    ``"1.5K"`` -> 1536, ``"5000"`` -> 5000. Anything else (a negative number, an unknown unit)
    raises :class:`~bulkput.errors.UsageError`."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        from bulkput.errors import UsageError

        raise UsageError(f"size {text!r}: expected a number with an optional unit (K, M, G, KB, MiB...)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one request is retried.

    Delay before attempt n+1 (n >= 1) is ``uniform(0, min(max_delay, base_delay * 2**(n-1)))``
    ("full jitter"); throttling answers use ``throttle_base_delay`` instead of ``base_delay``.
    An object gives up after ``max_attempts`` attempts or once ``max_elapsed`` seconds have
    passed since its first attempt, whichever comes first.
    """

    max_attempts: int = 10
    base_delay: float = 0.05
    throttle_base_delay: float = 0.5
    max_delay: float = 10.0
    max_elapsed: float = 600.0
    # An endpoint never reached at all is given this many attempts before the job aborts.
    connect_attempts: int = 4
    # An endpoint that answered earlier in the job and then cannot be connected to (an outage,
    # a restart) is retried for this many seconds, whatever max_attempts says, before the job
    # aborts.
    outage_wait: float = 120.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    # No byte received or sent for this long ends the attempt (retried).
    read: float = 60.0
    # Every attempt also has a deadline: ``read`` seconds plus its body at this many bytes a
    # second, so a server that trickles bytes (never idle long enough for ``read``) cannot hold
    # a request for ever. 0: no deadline.
    min_rate: int = 64 * KiB

    def deadline(self, size: int) -> float | None:
        """Seconds one attempt moving ``size`` body bytes may take in all (None: no limit)."""
        if self.min_rate <= 0:
            return None
        return self.read + size / self.min_rate


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """Limits of one job.

    Requests in flight: ``concurrency`` pins the number (``--concurrency N``); None (the
    default) lets :class:`bulkput.remote.concurrency.ConcurrencyController` find it, from
    ``initial_concurrency`` up to ``max_concurrency`` (and the open-file budget), as the link
    allows. ``request_slots`` is the most there can be.

    Peak body memory is about ``1.25 * request_slots * body_in_memory_limit`` (bodies being
    sent and a short queue of bodies read ahead) plus 4 MiB per reader thread (``readers``):
    bodies up to ``small_body_limit`` are read into memory, but no more than ``body_memory``
    in all, so with 512 slots a body over 160 KiB streams from disk instead; larger bodies
    stream in ``chunk_size`` pieces (multipart parts likewise). Measured at 64 slots: 200 files
    of 1 MiB peak at about 150 MB RSS for the whole process.
    """

    concurrency: int | None = None  # HTTP requests in flight; None: adaptive
    max_concurrency: int = 512  # the adaptive limit's ceiling (--max-concurrency)
    initial_concurrency: int = 64  # where the adaptive limit starts (the old fixed default)
    body_memory: int = 80 * MiB  # request bodies held in memory at once, about
    per_host: int = 0  # connections per host; 0 = as many as requests in flight
    max_open_files: int = 64  # files open at once for hashing and reading
    # Threads reading and hashing the files that are not read on the event loop (bodies over
    # 64 KiB, and every file while reads are slow: see inline_reads); at most max_open_files.
    # Raise it where each read waits on a network file system.
    readers: int = 4
    # Small files in the page cache are read on the event loop's thread, which costs less
    # than a thread hand-off (see bulkput.local.read_placement); off: always in reader threads.
    inline_reads: bool = True
    small_body_limit: int = 1 * MiB  # bodies up to this are read into memory once
    chunk_size: int = 1 * MiB  # read size when streaming and hashing
    # Above this, multipart. A single PUT costs one MD5 per byte (its Content-MD5, which the
    # ETag then proves); a multipart upload two (each part's Content-MD5 and the whole file's
    # MD5 kept as metadata), plus three or more requests. 512 MiB keeps files up to that size
    # on the cheaper path; larger ones get parallel parts and resume part by part.
    multipart_threshold: int = 512 * MiB
    part_size: int | None = None  # None: chosen per file (fits 10,000 parts, >= service minimum)
    content_md5: bool = True  # --no-md5 turns it off
    # Keys with "." / ".." segments or control characters are refused before sending unless
    # this is set (see bulkput.local.names).
    allow_dot_segments: bool = False
    verify_tls: bool = True
    # Every request through this HTTP proxy (None: HTTP_PROXY / HTTPS_PROXY from the
    # environment, either case; NO_PROXY applies to both).
    proxy: str | None = None
    # Certificates of the CAs to trust, instead of the system's (None: AWS_CA_BUNDLE, else the
    # system's, which SSL_CERT_FILE can point elsewhere).
    ca_bundle: str | None = None
    # file bodies on plain-HTTP connections go to the socket with os.sendfile (no copy
    # through Python); off: always read and written in chunks
    sendfile: bool = True
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()

    @property
    def request_slots(self) -> int:
        """The most requests in flight: the pinned number, or the adaptive ceiling."""
        return max(1, self.concurrency if self.concurrency is not None else self.max_concurrency)

    @property
    def body_in_memory_limit(self) -> int:
        """Bodies up to this size are read into memory (``small_body_limit``, lowered so that
        ``request_slots`` of them fit in ``body_memory``, but not below 64 KiB for that)."""
        return min(self.small_body_limit, max(64 * KiB, self.body_memory // self.request_slots))
