"""The benchmark scenarios: each one a small declarative entry.

A scenario names a dataset, the action (``copy``, ``sync`` or ``manifest``), and its lanes: one
lane is one contender against one kind of server (a fresh, empty server for every run), with
optional extra arguments. Lanes run interleaved, round after round. Ratios pair each subject
lane (bulkput, by default) with each other lane, run ``i`` with run ``i``; ``pairs`` overrides
that (e.g. the same client against two servers). To add a scenario, add an entry to
``SCENARIOS``; nothing else needs to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from benchmarks.contenders import Action
from benchmarks.servers import (
    BULKPUT_BOS,
    BULKPUT_FAR,
    BULKPUT_OSS,
    BULKPUT_S3,
    BULKPUT_THROTTLED,
    BULKPUT_WAN,
    RCLONE_DIR,
    RCLONE_MEMORY,
    RCLONE_TLS,
    ServerSpec,
)


@dataclass(frozen=True)
class Target:
    """An issue's figure, checked against the summary of a run.

    kinds:
    - ``speed``: the subject's speed (peer wall time / subject wall time, median of the
      pairwise ratios) against the fastest of ``peers`` is at least ``value``;
    - ``time``: subject wall time / the fastest of ``peers``' wall time is at most ``value``;
    - ``overhead``: subject wall time / peer wall time - 1 is at most ``value`` (one peer);
    - ``per_object``: the subject's wall time past its fixed cost against the peer's,
      ``(subject - subject_fixed) / (peer - peer_fixed) - 1``, is at most ``value``; ``peers``
      is ``(peer, subject_fixed, peer_fixed)``, the fixed lanes the same jobs on a tiny
      dataset (median over the runs of the four lanes taken run by run);
    - ``max``: the subject's median ``metric`` is at most ``value``;
    - ``zero``: the subject's ``metric`` is 0 in every counted run;
    - ``signing``: our signer's rate over the SDK's is at least ``value`` for every algorithm
      named in ``peers`` (rows of ``benchmarks.signing.measure_signing``);
    - ``cpu_beside``: the subject's median ``metric`` (CPU per GB) is at most ``value`` x the
      median of ``peers[0]`` plus the MD5 of a GB on the machine of the run (the harness
      measures it: ``machine.md5_s_per_gb`` of the results);
    - ``info``: not checked automatically (the section's table shows it).
    """

    text: str
    kind: Literal["speed", "time", "overhead", "per_object", "max", "zero", "signing",
                  "cpu_beside", "info"]
    value: float = 0.0
    metric: str = ""
    subject: str = "bulkput"
    peers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lane:
    contender: str
    server: ServerSpec = RCLONE_MEMORY
    extra_args: tuple[str, ...] = ()
    label: str = ""  # defaults to the contender's name (plus the dialect when not S3)
    subject: bool | None = None  # ratios are computed for subject lanes; default: bulkput
    quick: bool = True  # part of --quick
    # a Dask cluster of this many single-threaded worker processes is started for each run;
    # "{dask}" in extra_args becomes its address, and its CPU counts as the client's
    cluster_workers: int = 0
    dataset: str = ""  # a dataset of its own (a name in DATASETS); default: the scenario's

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        name = self.contender
        if self.server.dialect != "s3":
            name += f" ({self.server.dialect.upper()})"
        if self.extra_args:
            name += " " + " ".join(self.extra_args)
        return name

    @property
    def is_subject(self) -> bool:
        return self.contender == "bulkput" if self.subject is None else self.subject


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    dataset: str
    lanes: tuple[Lane, ...] = ()
    action: Action = "copy"
    kind: Literal["race", "signing"] = "race"
    # resync: each run first does an untimed-for-ratios initial run of the same command on the
    # fresh server (reported as "initial"), waits, then times the second run (the re-sync)
    resync: bool = False
    runs: int | None = None  # overrides --runs (e.g. for the slow huge scenarios)
    warmup: int | None = None
    quick: bool = False  # run by --quick (on the dataset scaled to quick_count files)
    quick_count: int = 500
    primary: Literal["files", "bytes"] = "files"  # the chart's figure: files/s or MB/s
    pairs: tuple[tuple[str, str], ...] = ()  # (subject lane, peer lane) names; default: all
    timeout_s: float = 1800.0
    description: str = ""
    targets: tuple[Target, ...] = field(default=())  # the issue figures it checks
    # after the counted runs, one more run of the bulkput lane with -v: its adaptive limit
    # over time (the "requests in flight A -> B: why" log lines) is kept and drawn
    trace: bool = False
    # where docs/benchmarks.md shows it: "link" (what users meet: WAN, TLS) or "cpu" (loopback)
    view: Literal["link", "cpu"] = "cpu"


COPY_PEERS = ("s5cmd", "rclone", "aws", "boto3", "obstore")


def _copy_lanes(server: ServerSpec = RCLONE_MEMORY, peers: tuple[str, ...] = COPY_PEERS,
                slow: tuple[str, ...] = ("aws",)) -> tuple[Lane, ...]:
    lanes = [Lane("bulkput", server)]
    lanes += [Lane(peer, server, quick=peer not in slow) for peer in peers]
    return tuple(lanes)


def _pinned_lane(server: ServerSpec = RCLONE_MEMORY, pinned: int = 64) -> Lane:
    """bulkput with the limit pinned where the adaptive one starts: the adaptive controller must
    not cost the fast path (ratios of the default lane against it)."""
    return Lane("bulkput", server, extra_args=("--concurrency", str(pinned)),
                label=f"bulkput --concurrency {pinned}", subject=False)


TUNED = (128, 256, 512)  # the hand-picked --concurrency rows of the link scenarios


def _tuned_lanes(server: ServerSpec) -> list[Lane]:
    return [Lane("bulkput", server, extra_args=("--concurrency", str(n)),
                 label=f"bulkput --concurrency {n}", subject=False) for n in TUNED]


def _wan_lanes(server: ServerSpec) -> tuple[Lane, ...]:
    return (
        Lane("bulkput", server),
        *_tuned_lanes(server),
        Lane("s5cmd", server),
        Lane("obstore", server),
        Lane("rclone", server),
    )


def _wan_targets() -> tuple[Target, ...]:
    return (
        Target("files/s at least 1.2x s5cmd's with every tool at its defaults", "speed", 1.2,
               peers=("s5cmd",)),
        Target("files/s at least 1.5x obstore's (64 in flight)", "speed", 1.5,
               peers=("obstore",)),
        Target("wall time within 10% of bulkput with the best hand-picked --concurrency "
               f"({', '.join(map(str, TUNED))})", "time", 1.10,
               peers=tuple(f"bulkput --concurrency {n}" for n in TUNED)),
    )


# 5%: within the spread of paired runs of the same command on this shared 2-core machine
_NO_COST_ON_THE_FAST_PATH = Target(
    "wall time at most 1.05x bulkput --concurrency 64's (the adaptive default costs the fast "
    "path nothing)", "time", 1.05, peers=("bulkput --concurrency 64",))


_PLAIN = "bulkput (one process)"
_DASK = "bulkput --dask (2 workers)"
_PLAIN_FIXED = "bulkput (one process), 10 objects"
_DASK_FIXED = "bulkput --dask (2 workers), 10 objects"

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "tls-small", "5,000 files of 4 KiB to rclone serve s3 :memory: over TLS", "small",
            _copy_lanes(RCLONE_TLS, ("s5cmd", "rclone", "obstore", "aws")), view="link",
            description="HTTPS with a self-signed certificate the harness makes; every client "
                        "verifies it (SSL_CERT_FILE / AWS_CA_BUNDLE).",
            targets=(
                Target("files/s at least obstore's", "speed", 1.0, peers=("obstore",)),
                Target("client CPU at most 0.35 ms per file", "max", 0.35, "cpu_ms_per_file"),
            ),
        ),
        Scenario(
            "tls-large", "4 files of 256 MiB to rclone serve s3 :memory: over TLS", "large",
            _copy_lanes(RCLONE_TLS, ("s5cmd", "rclone", "obstore")), primary="bytes",
            view="link",
            targets=(
                Target("MB/s at least obstore's", "speed", 1.0, peers=("obstore",)),
                Target("client CPU per GB at most 1.25x obstore's plus the MD5 of a GB",
                       "cpu_beside", 1.25, "cpu_s_per_gb", peers=("obstore",)),
            ),
        ),
        Scenario(
            "wan-small", "2,000 files of 4 KiB to a store 40 ms away (bulkput serve adds 40 ms "
            "to every PutObject)", "wan", _wan_lanes(BULKPUT_WAN),
            description="What a user meets on a real link: every request waits a round trip, "
                        "so requests in flight decide. Each tool at its defaults; the tuned "
                        "rows are bulkput with --concurrency pinned by hand.",
            targets=_wan_targets(), trace=True, view="link",
        ),
        Scenario(
            "wan-far", "2,000 files of 4 KiB to a store 150 ms away", "wan",
            _wan_lanes(BULKPUT_FAR),
            description="The same job across an ocean.",
            targets=_wan_targets(), trace=True, view="link",
        ),
        Scenario(
            "wan-throttled", "2,000 files of 4 KiB to a store 40 ms away that allows 300 "
            "PUTs/s", "wan",
            (Lane("bulkput", BULKPUT_THROTTLED),
             Lane("bulkput", BULKPUT_THROTTLED, extra_args=("--concurrency", "64"),
                  label="bulkput --concurrency 64", subject=False),
             Lane("s5cmd", BULKPUT_THROTTLED), Lane("obstore", BULKPUT_THROTTLED)),
            description="A store that answers 503 SlowDown above its request rate (bulkput "
                        "serve --throttle-rps 300, after a first burst of 300): the limit "
                        "must come down to what the store allows, about 12 requests in "
                        "flight, and stay near it.",
            targets=(Target("the adaptive limit against a throttling store (measured, no "
                            "target)", "info"),),
            trace=True, view="link",
        ),
        Scenario(
            "small", "5,000 files of 4 KiB to rclone serve s3 :memory:", "small",
            (*_copy_lanes(), _pinned_lane()), quick=True,
            description="Many small files: per-request overhead decides.",
            targets=(
                Target("files/s at least obstore's in the same run", "speed", 1.0,
                       peers=("obstore",)),
                Target("client CPU at most 0.30 ms per file", "max", 0.30,
                       "cpu_ms_per_file"),
                _NO_COST_ON_THE_FAST_PATH,
            ),
        ),
        Scenario(
            "small-dir", "5,000 files of 4 KiB to rclone serve s3 with a directory backend",
            "small", _copy_lanes(RCLONE_DIR, ("s5cmd", "rclone", "obstore")),
            description="The same job with the server writing every object to disk.",
        ),
        Scenario(
            "medium", "200 files of 1 MiB to rclone serve s3 :memory:", "medium",
            _copy_lanes(), primary="bytes",
        ),
        Scenario(
            "large", "4 files of 256 MiB to rclone serve s3 :memory:", "large",
            (*_copy_lanes(), _pinned_lane()), primary="bytes",
            targets=(
                Target("MB/s at least the best peer's in the same run", "speed", 1.0,
                       peers=COPY_PEERS),
                Target("client CPU at most 2.2 s per GB (MD5 included)", "max", 2.2,
                       "cpu_s_per_gb"),
                Target("peak RSS under 200 MB", "max", 200, "peak_rss_mb"),
                _NO_COST_ON_THE_FAST_PATH,
            ),
        ),
        Scenario(
            "huge", "4 files of 1 GiB (multipart) to rclone serve s3 :memory:", "huge",
            _copy_lanes(peers=("s5cmd", "aws", "obstore")), primary="bytes",
            targets=(
                Target("MB/s at least the best of s5cmd, aws cli and obstore", "speed",
                       1.0, peers=("s5cmd", "aws", "obstore")),
                Target("peak RSS under 200 MB at default settings", "max", 200,
                       "peak_rss_mb"),
            ),
        ),
        Scenario(
            "bos", "5,000 files of 4 KiB to bulkput serve, BOS dialect", "small",
            (Lane("bulkput", BULKPUT_BOS), Lane("bce-sdk", BULKPUT_BOS)),
            description="bulkput against the official BOS SDK with a thread pool.",
        ),
        Scenario(
            "oss", "5,000 files of 4 KiB to bulkput serve, OSS dialect", "small",
            (Lane("bulkput", BULKPUT_OSS), Lane("oss2", BULKPUT_OSS)),
            description="bulkput against the official OSS SDK (oss2) with a thread pool.",
        ),
        Scenario(
            "store-put", "Store throughput: 4 KiB PUTs/s, bulkput serve beside rclone serve s3",
            "small",
            (
                Lane("s5cmd", BULKPUT_S3, label="s5cmd -> bulkput serve", subject=True),
                Lane("s5cmd", RCLONE_MEMORY, label="s5cmd -> rclone :memory:", subject=False),
                Lane("bulkput", BULKPUT_S3, label="bulkput -> bulkput serve", subject=True),
                Lane("bulkput", RCLONE_MEMORY, label="bulkput -> rclone :memory:",
                     subject=False),
            ),
            pairs=(("s5cmd -> bulkput serve", "s5cmd -> rclone :memory:"),
                   ("bulkput -> bulkput serve", "bulkput -> rclone :memory:")),
            description="The same client against each store: when bulkput serve is the slower "
                        "store, benchmarks run against it measure the store, not the client.",
            targets=(
                Target("bulkput serve PUTs/s beside rclone serve s3 :memory: "
                       "(s5cmd as the client; >= 1 means bulkput serve is not the bottleneck)",
                       "speed", 1.0, subject="s5cmd -> bulkput serve",
                       peers=("s5cmd -> rclone :memory:",)),
            ),
        ),
        Scenario(
            "sync-tree", "Re-sync of an unchanged tree of 100,000 small files", "tree",
            (Lane("bulkput"), Lane("s5cmd"), Lane("rclone"),
             Lane("bulkput", BULKPUT_S3, label="bulkput -> bulkput serve", subject=True)),
            action="sync", resync=True, timeout_s=3600.0,
            pairs=(("bulkput", "s5cmd"), ("bulkput", "rclone")),
            description="Each run: a fresh server, a first sync (column 'initial'), then the "
                        "timed re-sync of the unchanged tree. 'rewritten' counts objects whose "
                        "LastModified moved during the re-sync (it must be 0); the last lane "
                        "runs against bulkput serve, whose counters give the PUTs of the "
                        "re-sync. aws s3 sync is left out: its first sync of 100,000 files "
                        "alone takes minutes here.",
            targets=(
                Target("the re-sync rewrites no object", "zero", metric="rewritten"),
                Target("the re-sync makes zero PUTs (bulkput serve's counters)",
                       "zero", metric="puts", subject="bulkput -> bulkput serve"),
                Target("re-sync wall time at most 0.5x the faster of s5cmd sync and "
                       "rclone sync", "time", 0.5, peers=("s5cmd", "rclone")),
                Target("peak RSS under 150 MB", "max", 150, "peak_rss_mb"),
            ),
        ),
        Scenario(
            "manifest-1m", "A 1,000,000-line manifest (1 KiB objects)", "manifest-1m",
            (Lane("bulkput"), Lane("s5cmd", label="s5cmd run")),
            action="manifest", runs=1, warmup=0, timeout_s=3600.0,
            description="bulkput put --manifest beside s5cmd run with the same job as a "
                        "command file; peak RSS is the figure.",
            targets=(Target("peak RSS under 150 MB from start to end", "max", 150,
                            "peak_rss_mb"),),
        ),
        Scenario(
            "journal", "Journal overhead: 5,000 files of 4 KiB, default vs --no-journal",
            "small",
            (Lane("bulkput", label="bulkput (journal)"),
             Lane("bulkput", extra_args=("--no-journal",), label="bulkput --no-journal",
                  subject=False)),
            pairs=(("bulkput (journal)", "bulkput --no-journal"),),
            targets=(Target("journal overhead under 5% of wall time", "overhead", 0.05,
                            subject="bulkput (journal)", peers=("bulkput --no-journal",)),),
        ),
        Scenario(
            "dask", "Dask overhead: a 2,000-line manifest, one process vs partitions on Dask",
            "manifest-2k",
            (Lane("bulkput", label=_PLAIN, subject=False),
             Lane("bulkput", extra_args=("--dask", "{dask}"), label=_DASK, subject=True,
                  cluster_workers=2),
             Lane("bulkput", label=_PLAIN_FIXED, subject=False, dataset="manifest-10"),
             # 2 partitions of 5: a task's round trip on each worker in the fixed cost, as
             # in the 2,000-object job (else one's first-task cost counts as per-object cost)
             Lane("bulkput", extra_args=("--dask", "{dask}", "--partition-size", "5"),
                  label=_DASK_FIXED, subject=True, cluster_workers=2, dataset="manifest-10")),
            action="manifest",
            pairs=((_DASK, _PLAIN), (_DASK_FIXED, _PLAIN_FIXED)),
            description="The same manifest job run by one process and as partition tasks on a "
                        "local Dask cluster (a dask scheduler and 2 single-threaded worker "
                        "processes started with --preload bulkput.cluster, as "
                        "docs/scale-out.md says, before the clock starts), each on 2,000 "
                        "objects and on 10: the 10-object job's wall time is the fixed cost "
                        "(the client's start and imports, connecting, a task's round trip on "
                        "each worker: 2 partitions of 5), what the 2,000-object job takes past "
                        "it is the "
                        "per-object cost. The cluster's CPU is "
                        "counted as client CPU. This machine has 2 cores, so the Dask path "
                        "can only show its overhead here.",
            targets=(
                Target("fixed cost under 1 s: wall time of a 10-object job on a local "
                       "cluster", "max", 1.0, "wall_s", subject=_DASK_FIXED),
                Target("per-object overhead under 10% against one process: (dask - its "
                       "10-object wall) / (one process - its 10-object wall) - 1",
                       "per_object", 0.10, subject=_DASK,
                       peers=(_PLAIN, _DASK_FIXED, _PLAIN_FIXED)),
            ),
        ),
        Scenario(
            "signing", "Signing throughput against the official SDKs' signers", "",
            kind="signing",
            targets=(
                Target("S3 SigV4 at least 5x botocore's S3SigV4Auth", "signing", 5.0,
                       peers=("s3-v4",)),
                Target("bce-auth-v1 at least 2x the BOS SDK's signer", "signing", 2.0,
                       peers=("bce-v1",)),
                Target("OSS V1 and V4 at least 2x oss2's signers", "signing", 2.0,
                       peers=("oss-v1", "oss-v4")),
            ),
        ),
    )
}
