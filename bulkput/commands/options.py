"""Every command-line option the verbs share, and the dataclasses they turn into.

``add_*_arguments(parser)`` put one group of options on an argparse parser; ``*_from_args``
read them back into the library's settings (:class:`~bulkput.config.TransferConfig`,
:class:`~bulkput.remote.store.ObjectHeaders`, :class:`~bulkput.local.filters.Filter`). argv
stops here: nothing below ``bulkput.commands`` sees an ``argparse.Namespace``.

Every size option reads its value with :func:`bulkput.config.parse_size` (``8M`` = ``8MiB`` =
8,388,608 bytes, ``8MB`` = 8,000,000).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bulkput.config import SIZE_UNITS_HELP, RetryPolicy, Timeouts, TransferConfig, parse_size
from bulkput.errors import UsageError
from bulkput.local.filters import Filter, read_filter_file, read_pattern_file
from bulkput.local.walk import display_path
from bulkput.redact import without_password
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.store import ObjectHeaders

if TYPE_CHECKING:  # the job's modules load when a job runs, not for --help
    from bulkput.job.spec import JournalSettings, StoreSettings
    from bulkput.remote.dialects import Dialect

# --- value types -------------------------------------------------------------------------------


def size(text: str) -> int:
    """An argparse ``type=``: a size in bytes (see :func:`bulkput.config.parse_size`)."""
    try:
        return parse_size(text)
    except UsageError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 64M, 8MiB, 5MB, 5000)") from None


def _whole_number(text: str, minimum: int, bound: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
    return value


def positive(text: str) -> int:
    """An argparse ``type=``: a whole number, at least 1."""
    return _whole_number(text, 1, "at least 1")


def count(text: str) -> int:
    """An argparse ``type=``: a whole number, 0 or more."""
    return _whole_number(text, 0, "0 or more")


def _finite_amount(text: str, unit: str) -> float:
    """A number of ``unit``, 0 or more (not NaN, not infinite)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more {unit}")
    return value


def seconds(text: str) -> float:
    """An argparse ``type=``: a number of seconds, 0 or more."""
    return _finite_amount(text, "seconds")


def days(text: str) -> float:
    """An argparse ``type=``: a number of days, 0 or more."""
    return _finite_amount(text, "days")


def positive_seconds(text: str) -> float:
    """An argparse ``type=``: a number of seconds above 0."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds")
    return value


# type/subtype of RFC 9110 token characters, then optional ;parameters
_CONTENT_TYPE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;[\x20-\x7e]*)?$")


def content_type(text: str) -> str:
    """An argparse ``type=``: a media type, ``type/subtype[; parameters]``."""
    if not _CONTENT_TYPE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a media type: expected TYPE/SUBTYPE, e.g. text/plain or "
            "application/json; charset=utf-8"
        )
    return text


def meta(text: str) -> tuple[str, str]:
    """An argparse ``type=``: ``NAME=VALUE`` (user metadata)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--meta {text!r}: expected NAME=VALUE")
    return name, value


def _listed(table: Callable[[Dialect], tuple[str, ...]]) -> str:
    """One of the dialects' tables per scheme, for a help text (the lists the values are
    checked against)."""
    from bulkput.remote.dialects import dialect_for

    return "; ".join(
        f"{scheme}:// {', '.join(table(dialect_for(scheme)))}" for scheme in ("s3", "oss", "bos")
    )


# --- put -------------------------------------------------------------------------------------


def add_put_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``put`` (``sync`` shares the connection and transfer ones)."""
    parser.add_argument("paths", nargs="+", metavar="SOURCE... DEST", help="files or directories, then the destination URL")
    parser.add_argument("--manifest", metavar="FILE", help="read objects from FILE (list, CSV or JSONL; - for stdin)")
    parser.add_argument("--manifest-format", choices=("auto", "list", "csv", "jsonl"), default="auto",
                        help="how to read --manifest (auto: from its extension, else its first line)")
    parser.add_argument("--base", metavar="DIR", help="with --manifest: keys are paths relative to DIR, and relative paths are taken inside DIR (default: relative paths as written, absolute ones relative to their common folder)")
    add_connection_arguments(parser)
    add_transfer_arguments(parser)
    add_header_arguments(parser, "object headers (a manifest's own fields win)")
    add_output_arguments(parser, dry_run_help="list what would be sent; send nothing")
    parser.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links inside directories (loops are reported)")
    parser.add_argument("--shard", metavar="K/N", help="upload only the keys of shard K of N (0-based); auto/N takes K from $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)")
    parser.add_argument("--attempt", type=count, default=0, metavar="A", help="with --shard: which run of the shard this is (0 first; the report says so, and report merge keeps each shard's last)")
    add_filter_arguments(parser)
    add_cluster_arguments(parser)
    add_journal_arguments(parser)
    add_store_resume_arguments(parser)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("Dask cluster (pip install 'bulkput[dask]')")
    cluster.add_argument("--dask", metavar="ADDRESS", help="run the job as partition tasks on this dask.distributed scheduler (tcp://HOST:PORT)")
    cluster.add_argument("--partition-size", type=positive, default=None, metavar="N", help="with --dask: objects per partition task (default: about 4 partitions per worker thread, 1,000 to 2,000 objects each; 1,000 when the count is not known)")
    cluster.add_argument("--worker-credentials", action="store_true", help="with --dask: each worker finds its own credentials (environment, profile, instance role); the client needs none and sends none")


# --- sync ------------------------------------------------------------------------------------


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sync``."""
    parser.add_argument("source", metavar="DIR", help="the local directory")
    parser.add_argument("dest", metavar="DEST", help="s3://bucket/prefix, oss://... or bos://...")
    compare = parser.add_argument_group("comparison (default: size and modification time)")
    # each flag stores its strategy's name (a key of bulkput.job.sync.strategies.STRATEGIES)
    chosen = compare.add_mutually_exclusive_group()
    chosen.add_argument("--size-only", action="store_const", dest="strategy", const="size-only",
                        help="compare sizes only")
    chosen.add_argument("--checksum", action="store_const", dest="strategy", const="checksum",
                        help="compare MD5s (hashes files of equal size)")
    chosen.add_argument("--update", action="store_const", dest="strategy", const="update",
                        help="upload only files newer than their object")
    chosen.add_argument("--ignore-existing", action="store_const", dest="strategy",
                        const="ignore-existing", help="never replace an existing object")
    parser.set_defaults(strategy="size+mtime")
    deletion = parser.add_argument_group("deletion")
    deletion.add_argument("--delete", action="store_true", help="delete objects under the prefix with no local file")
    deletion.add_argument("--max-delete", type=count, metavar="N",
                          help="with --delete: refuse (change nothing, exit 3) if more than N would be deleted")
    walk = parser.add_argument_group("walk")
    walk.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links (loops are reported)")
    walk.add_argument("--no-normalize", dest="normalize", action="store_false",
                      help="keep file names as they are (default: Unicode NFC keys)")
    walk.add_argument("--temp-dir", metavar="DIR", help="where huge directories are sorted and deletes spooled")
    add_filter_arguments(parser)
    add_connection_arguments(parser)
    add_transfer_arguments(parser)
    add_header_arguments(parser, "object headers")
    add_output_arguments(
        parser, dry_run_help="print the plan (upload, skip, delete, with reasons); change nothing"
    )
    parser.add_argument("--shard", metavar="K/N",
                        help="sync only the keys of shard K of N (0-based); --delete deletes only those")


# --- shared groups ---------------------------------------------------------------------------


def add_header_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """Object headers every uploaded object gets (``put`` and ``sync``)."""
    headers = parser.add_argument_group(title)
    headers.add_argument("--content-type", type=content_type, metavar="TYPE/SUBTYPE",
                         help="Content-Type (default: guessed from the extension)")
    headers.add_argument("--cache-control")
    headers.add_argument("--content-disposition")
    headers.add_argument("--content-encoding")
    headers.add_argument("--expires")
    headers.add_argument("--acl", help="canned ACL: " + _listed(lambda dialect: dialect.acls))
    headers.add_argument("--storage-class", metavar="CLASS",
                         help="storage class: " + _listed(lambda dialect: dialect.storage_classes)
                         + "; a store behind --endpoint may have its own (sent as given, with a warning)")
    headers.add_argument("--sse", metavar="ALGORITHM",
                         help="server-side encryption: " + _listed(lambda dialect: dialect.sse_values))
    headers.add_argument("--sse-kms-key-id", metavar="ID", help="the KMS key of --sse aws:kms (S3) or --sse KMS (OSS); default: the account's")
    headers.add_argument("--sse-c-key-file", metavar="FILE", help="S3: encrypt with this 32-byte key of yours (SSE-C; raw or base64); the key is never shown")
    headers.add_argument("--meta", action="append", type=meta, default=[], metavar="NAME=VALUE", help="user metadata (repeatable)")


def add_output_arguments(parser: argparse.ArgumentParser, *, dry_run_help: str) -> None:
    """Report, progress, dry run and logging (``put`` and ``sync``)."""
    output = parser.add_argument_group("output")
    output.add_argument("--report", metavar="FILE", help="write one JSON line per object, then a summary (- for standard output; the human summary stays on stderr)")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress (errors still go to stderr)")
    output.add_argument("--progress", choices=("auto", "rich", "text", "json", "none"), default="auto",
                        help="auto: a live bar on a terminal, else a text line every --progress-interval; "
                        "rich: the bar; text: the line; json: one JSON line per interval (for machines); none: only errors")
    output.add_argument("--progress-interval", type=positive_seconds, default=10.0, metavar="SECONDS",
                        help="seconds between text or JSON progress lines (default 10)")
    output.add_argument("--dry-run", action="store_true", help=dry_run_help)
    output.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    output.add_argument("--debug", action="store_true", help="debug logging (never shows secrets)")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the store is and how to sign in (``put``, ``sync``, ``abort-incomplete``)."""
    group = parser.add_argument_group("connection")
    group.add_argument("--endpoint", metavar="URL", help="e.g. http://127.0.0.1:9000 (default: the provider's, or from the environment)")
    group.add_argument("--region", help="the bucket's region, e.g. eu-west-1, cn-beijing (or oss-cn-beijing), bj; checked against the provider's list unless --endpoint is another store's (default: from the environment, or found from the service's answers)")
    group.add_argument("--addressing", choices=("auto", "path", "virtual"), default="auto",
                       help="bucket in the URL's path or in its host name (auto: virtual-hosted on "
                            "the providers' own hosts, path-style on IP addresses, localhost and "
                            "other stores' hosts)")
    group.add_argument("--signature-version", choices=("v1", "v4"), default="v4",
                       help="OSS: V4 or the older V1; s3:// (SigV4) and bos:// (bce-auth-v1) "
                            "have one signature each (default v4)")
    group.add_argument("--access-key", default=None, metavar="ID",
                       help="access key id (with --secret-key; default: the environment, then the "
                            "tools' credentials files)")
    group.add_argument("--secret-key", default=None, metavar="SECRET",
                       help="prefer the environment or a credentials file (a flag shows in ps)")
    group.add_argument("--session-token", default=None, metavar="TOKEN",
                       help="the session token of temporary credentials")
    group.add_argument("--profile", default=None, metavar="NAME",
                       help="the section of ~/.aws/credentials and ~/.aws/config, ~/.ossutilconfig "
                            "or ~/.go-bcecli/credentials to read (default: $AWS_PROFILE for s3://, else the "
                            "files' default section)")
    group.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    group.add_argument("--request-payer", nargs="?", const="requester", choices=("requester",),
                       help="write to a requester-pays bucket: you pay for the requests (S3, OSS)")
    group.add_argument("--ca-bundle", metavar="FILE", default=None,
                       help="PEM file of the CA certificates to trust instead of the system's "
                            "(default: $AWS_CA_BUNDLE)")
    group.add_argument("--proxy", metavar="URL", default=None,
                       help="send every request through this HTTP proxy, e.g. http://proxy:3128 "
                            "(default: $HTTPS_PROXY / $HTTP_PROXY, either case; $NO_PROXY is honoured)")


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    """Concurrency, retries, timeouts and multipart sizes (``put`` and ``sync``)."""
    defaults = TransferConfig()
    group = parser.add_argument_group("transfer", SIZE_UNITS_HELP)
    group.add_argument("--concurrency", type=positive, default=defaults.concurrency, metavar="N",
                       help=f"keep exactly N requests in flight (default: adaptive, from "
                            f"{defaults.initial_concurrency} up to --max-concurrency, as far as "
                            f"throughput keeps rising)")
    group.add_argument("--max-concurrency", type=positive, default=defaults.max_concurrency, metavar="N",
                       help=f"the adaptive limit's ceiling (default {defaults.max_concurrency})")
    group.add_argument("--per-host", type=count, default=defaults.per_host, metavar="N",
                       help="connections per host (default 0: as many as requests in flight)")
    group.add_argument("--max-open-files", type=positive, default=defaults.max_open_files, metavar="N",
                       help="files open at once for hashing and reading")
    group.add_argument("--readers", type=positive, default=defaults.readers, metavar="N",
                       help="threads reading files not read on the event loop (default 4; more for network file systems)")
    group.add_argument("--no-inline-reads", action="store_true",
                       help="read every file in reader threads, never on the event loop "
                            "(for file systems where an open can hang)")
    group.add_argument("--retries", type=count, default=defaults.retry.max_attempts - 1, metavar="N",
                       help="retries per request, with backoff")
    group.add_argument("--timeout", type=positive_seconds, default=defaults.timeouts.read, metavar="SECONDS",
                       help="seconds without progress before a request is retried")
    group.add_argument("--outage-wait", type=seconds, default=defaults.retry.outage_wait, metavar="SECONDS",
                       help="how long a store that answered earlier in the job and then cannot be "
                            "reached is waited for before the job stops (default 120)")
    group.add_argument("--min-rate", type=size, default=defaults.timeouts.min_rate, metavar="SIZE",
                       help="bytes a second below which an attempt fails and is retried: each may take "
                            "--timeout plus its size at this rate (default 64K; 0: no such deadline)")
    group.add_argument("--no-md5", action="store_true", help="send no Content-MD5")
    group.add_argument("--allow-dot-segments", action="store_true",
                       help="send keys with '.' or '..' segments or control characters as they are "
                            "(default: such an object fails before anything is sent)")
    group.add_argument("--no-sendfile", action="store_true",
                       help="read file bodies into memory in pieces instead of os.sendfile (plain HTTP only)")
    group.add_argument("--multipart-threshold", type=size, default=defaults.multipart_threshold, metavar="SIZE",
                       help="files larger than this go multipart (default 512M; above 5G always)")
    group.add_argument("--part-size", type=size, default=None, metavar="SIZE",
                       help="multipart part size: 5M to 5G (OSS from 100K) (default: 8M, larger when "
                            "a file needs more than 10,000 parts)")


def add_journal_arguments(parser: argparse.ArgumentParser) -> None:
    """``--state-dir``, ``--restart``, ``--no-journal``, ``--no-verify-resume`` (``put`` and
    ``sync``)."""
    group = parser.add_argument_group("resume")
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        default=None,
        help="where job journals live (default $XDG_CACHE_HOME/bulkput or ~/.cache/bulkput)",
    )
    group.add_argument(
        "--restart",
        action="store_true",
        help="forget what an earlier run of this job recorded and start over",
    )
    group.add_argument(
        "--no-journal",
        dest="journal",
        action="store_false",
        help="keep no journal: an interrupted job starts over",
    )
    group.add_argument(
        "--no-verify-resume",
        dest="verify_resume",
        action="store_false",
        help="on resume, trust the journal without listing the destination (for stores where"
        " listing is forbidden): an object the store lost since is not sent again",
    )


def add_store_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resume-from-store`` / ``--no-resume-from-store`` (``put``)."""
    parser.add_argument(
        "--resume-from-store",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="list the destination's slice the job's keys span and skip objects already stored"
        " with the same size and MD5, journal or not (default: on with --shard, off otherwise)",
    )


def resume_from_store(args: argparse.Namespace) -> bool:
    """``--resume-from-store`` as given, else on for a ``--shard`` job."""
    if args.resume_from_store is not None:
        return bool(args.resume_from_store)
    return bool(args.shard)


class _RuleAction(argparse.Action):
    """Appends ``(kind, value)`` to one shared list so the command-line order is kept."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        rules = list(namespace.filter_rules or [])  # the dest's default (None) is set first
        rules.append((self.const, values))
        namespace.filter_rules = rules


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The filter options (``put``, ``sync``); the rules are in :mod:`bulkput.local.filters`."""
    group = parser.add_argument_group(
        "filters",
        "--include/--exclude work as in aws s3: every rule is applied in order and the last "
        "one that matches a path decides; '*' matches across '/'; patterns are relative to the "
        "source folder (--exclude '*' --include '*.jpg' keeps only the JPEGs). "
        "--filter-from/--include-from/--exclude-from work as in rclone: the first matching "
        "rule decides, '*' stays within one folder, '**' crosses folders. Use one style or "
        "the other. " + SIZE_UNITS_HELP,
    )
    group.add_argument("--include", metavar="GLOB", action=_RuleAction, const="include", dest="filter_rules",
                       help="include paths matching GLOB (aws s3 semantics)")
    group.add_argument("--exclude", metavar="GLOB", action=_RuleAction, const="exclude", dest="filter_rules",
                       help="exclude paths matching GLOB (aws s3 semantics)")
    group.add_argument("--filter-from", metavar="FILE", action=_RuleAction, const="filter-from",
                       dest="filter_rules", help="rclone-style rules, one a line: '+ GLOB' or '- GLOB'")
    group.add_argument("--include-from", metavar="FILE", action=_RuleAction, const="include-from",
                       dest="filter_rules", help="rclone-style: include each GLOB of FILE (one a line)")
    group.add_argument("--exclude-from", metavar="FILE", action=_RuleAction, const="exclude-from",
                       dest="filter_rules", help="rclone-style: exclude each GLOB of FILE (one a line)")
    hidden = group.add_mutually_exclusive_group()
    hidden.add_argument("--exclude-hidden", action="store_true", default=False,
                        help="skip files and directories whose name starts with '.'")
    hidden.add_argument("--include-hidden", action="store_false", dest="exclude_hidden",
                        help="include hidden files (the default)")
    group.add_argument("--min-size", metavar="SIZE", type=size, help="skip files smaller than SIZE (e.g. 1K, 10MiB)")
    group.add_argument("--max-size", metavar="SIZE", type=size, help="skip files larger than SIZE (e.g. 100M, 1G)")


# --- options -> settings ---------------------------------------------------------------------


def network_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`TransferConfig` fields of :func:`add_connection_arguments` (TLS, proxy),
    checked before any work."""
    proxy, bundle = args.proxy, args.ca_bundle
    if proxy is not None:
        parsed = urlsplit(proxy)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"--proxy {without_password(proxy)!r}: expected http://HOST:PORT (or https://)")
    if bundle is not None and (os.path.isdir(bundle) or not os.access(bundle, os.R_OK)):
        raise UsageError(f"--ca-bundle {bundle!r}: not a readable file")
    return {"verify_tls": not args.insecure, "proxy": proxy, "ca_bundle": bundle}


def check_sources(paths: Sequence[str], what: str = "SOURCE") -> None:
    """Every local path given exists (a usage error before any work otherwise, as for a
    mistyped option): one line naming the first that does not."""
    for path in paths:
        if not os.path.lexists(path):
            raise UsageError(
                f"{what} {display_path(path)}: no such file or directory; check the path "
                "(nothing was uploaded)"
            )


def check_manifest(path: str) -> None:
    """``--manifest FILE`` exists (``-`` is standard input)."""
    if path != "-" and not os.path.lexists(path):
        raise UsageError(
            f"--manifest {display_path(path)}: no such file; give the manifest's path, or - to "
            "read it from standard input (nothing was uploaded)"
        )


def config_from_args(args: argparse.Namespace) -> TransferConfig:
    """The :class:`TransferConfig` of :func:`add_transfer_arguments` and ``--insecure``."""
    base = TransferConfig()
    if args.concurrency is not None and args.max_concurrency != base.max_concurrency:
        raise UsageError("--concurrency N pins the number; --max-concurrency bounds the "
                         "adaptive one: give one of them")
    return TransferConfig(
        concurrency=args.concurrency,
        max_concurrency=args.max_concurrency,
        per_host=args.per_host,
        max_open_files=args.max_open_files,
        readers=args.readers,
        inline_reads=not args.no_inline_reads,
        multipart_threshold=args.multipart_threshold,
        part_size=args.part_size,
        content_md5=not args.no_md5,
        allow_dot_segments=args.allow_dot_segments,
        **network_from_args(args),
        sendfile=not args.no_sendfile,
        timeouts=Timeouts(
            connect=min(base.timeouts.connect, args.timeout),
            read=args.timeout,
            min_rate=args.min_rate,
        ),
        retry=RetryPolicy(max_attempts=args.retries + 1, outage_wait=args.outage_wait),
    )


def store_settings_from_args(
    args: argparse.Namespace, customer_key: CustomerKey | None = None
) -> StoreSettings:
    """The :class:`StoreSettings` of :func:`add_connection_arguments` (and the SSE-C key of
    :func:`customer_key_from_args`, for the verbs that write objects)."""
    from bulkput.job.spec import StoreSettings, explicit_credentials

    return StoreSettings(
        endpoint=args.endpoint,
        region=args.region,
        addressing=args.addressing,
        signature_version=args.signature_version,
        credentials=explicit_credentials(args.access_key, args.secret_key, args.session_token),
        profile=args.profile,
        customer_key=customer_key,
        request_payer=args.request_payer is not None,
    )


def journal_settings_from_args(args: argparse.Namespace, source: str) -> JournalSettings:
    """The :class:`JournalSettings` of :func:`add_journal_arguments` for a job reading ``source``."""
    from bulkput.job.spec import JournalSettings

    return JournalSettings(
        source=source if args.journal else None,
        state_dir=args.state_dir,
        restart=args.restart,
        verify=args.verify_resume,
    )


def headers_from_args(args: argparse.Namespace) -> ObjectHeaders:
    """The default object headers of :func:`add_header_arguments`."""
    return ObjectHeaders(
        content_type=args.content_type,
        cache_control=args.cache_control,
        content_disposition=args.content_disposition,
        content_encoding=args.content_encoding,
        expires=args.expires,
        acl=args.acl,
        storage_class=args.storage_class,
        server_side_encryption=args.sse,
        sse_kms_key_id=args.sse_kms_key_id,
        metadata=dict(args.meta),
    )


_KMS_VALUES = ("aws:kms", "aws:kms:dsse", "kms")


def check_encryption_args(args: argparse.Namespace) -> None:
    """The encryption options go together (a usage error before any work otherwise)."""
    sse = (args.sse or "").lower()
    if args.sse_kms_key_id and sse not in _KMS_VALUES:
        raise UsageError("--sse-kms-key-id goes with --sse aws:kms (S3) or --sse KMS (OSS)")
    if args.sse_c_key_file and args.sse:
        raise UsageError("--sse-c-key-file and --sse do not go together (the key is the encryption)")


def customer_key_from_args(args: argparse.Namespace) -> CustomerKey | None:
    """The SSE-C key of ``--sse-c-key-file`` (read and checked now), or None."""
    check_encryption_args(args)
    return CustomerKey.from_file(args.sse_c_key_file) if args.sse_c_key_file else None


def filter_from_args(args: argparse.Namespace) -> Filter:
    """The :class:`Filter` of :func:`add_filter_arguments` (pattern files read here); what
    in the rules does not do what it seems to is logged as a warning, before any work."""
    aws_rules: list[tuple[str, str]] = []
    path_rules: list[tuple[str, str]] = []
    for kind, value in args.filter_rules or []:
        if kind == "filter-from":
            path_rules.extend(read_filter_file(value))
        elif kind.endswith("-from"):
            base = kind.removesuffix("-from")
            path_rules.extend((base, pattern) for pattern in read_pattern_file(value))
        else:
            aws_rules.append((kind, value))
    found = Filter.from_patterns(
        aws_rules,
        path_rules=path_rules,
        exclude_hidden=args.exclude_hidden,
        min_size=args.min_size,
        max_size=args.max_size,
    )
    for warning in found.warnings():
        logging.getLogger("bulkput.filters").warning("%s", warning)
    return found


