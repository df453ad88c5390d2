"""The bulkput exception tree, and the one table that maps service answers onto it.

::

    BulkputError
    ├── UsageError                 bad command line, target URL or option (exit 2)
    │   └── CredentialsError       no credential found; names where it looked
    ├── LocalInputError            one object's local side: missing, unreadable, changed (object fails alone)
    │   ├── ManifestError          a malformed manifest line (carries the line number)
    │   ├── FileChangedError       the file changed size or mtime while it was read
    │   ├── SkippedPath            skipped by rule: a symbolic link not followed, a fifo... (a warning)
    │   ├── InvalidNameError       a file name that cannot become a key (not UTF-8)
    │   │   └── DuplicateNameError  equal to another name in its folder after NFC
    │   ├── SymlinkLoopError       a followed symbolic link leads back to a directory above it
    │   └── UnreadableDirectoryError  a directory that could not be listed (guards its objects)
    ├── ValidationError            the object breaks a service rule before sending (key, metadata, class)
    ├── JournalError               the job journal cannot be written (job stops cleanly)
    │   └── JournalDamagedError    the journal's database is corrupt (exit 3, --restart)


    ├── ListingOrderError          a side of a merge-join is not in key order (job stops, exit 3)
    ├── MaxDeleteExceeded          sync --max-delete N would be exceeded (nothing deleted, exit 3)
    ├── JobAbortedError            the Python API's job stopped by a fatal error (carries it and the summary)
    ├── PartitionError             a Dask partition task could not run (cause, worker host and folder; retried)
    ├── UnexpectedError            an exception no part of bulkput raises on purpose, met in a job (job stops, exit 3)
    └── RemoteError                the service or the network said no
        ├── AuthError              InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied (job aborts)
        ├── NotFoundError          NoSuchBucket (job aborts), NoSuchKey, NoSuchUpload
        ├── ThrottledError         SlowDown, 429 and other throttling codes (retried, slows the job)
        ├── TransportError         connection refused/reset, DNS, timeouts (retried)
        │   ├── ConnectError          no connection was made (refused, DNS, connect timeout): the server never saw it
        │   └── EndpointUnreachable   retries exhausted without ever reaching the server (job aborts)
        └── ServiceError           everything else the service answered (retried when transient)

Every RemoteError carries the service ``code``, HTTP ``status``, ``request_id``, ``bucket``
and ``key``; ``retryable`` says whether the retry loop may try again and ``fatal_for_job``
whether the whole job must stop at once (no storm of a million identical failures).
Secrets never reach these objects: they hold only what the server sent back.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from bulkput.redact import scrub


class BulkputError(Exception):
    """Base of every error bulkput raises on purpose."""

    retryable: bool = False
    fatal_for_job: bool = False
    exit_code: int = 1
    # A warning, not a failure: the object is reported skipped with ``reason`` (a symbolic
    # link not followed, a fifo...).
    warning: bool = False
    reason: str | None = None
    # Requests made for the object before this error ended them (set by the retry loop and
    # the multipart uploader; 0 when no request was made).
    attempts: int = 0

    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.path = path

    @property
    def code(self) -> str:
        """A short machine-readable name for reports (service code, or the class name)."""
        return type(self).__name__

    def one_line(self) -> str:
        """The one-line error a user sees: the object, then the cause."""
        subject = self.key if self.key is not None else self.path
        text = " ".join(self.message.split())
        return scrub(f"{subject}: {text}" if subject else text)


class UsageError(BulkputError):
    exit_code = 2
    fatal_for_job = True


class CredentialsError(UsageError):
    pass


class LocalInputError(BulkputError):
    pass


class ManifestError(LocalInputError):
    def __init__(self, message: str, *, line: int, source: str = "manifest") -> None:
        super().__init__(f"{source} line {line}: {message}")
        self.line = line
        self.source = source


class FileChangedError(LocalInputError):
    pass


class ReadStopped(BulkputError):
    """The job was stopped (SIGINT/SIGTERM) while this file was being hashed: it was not sent.
    Raised from the reading thread, so a Ctrl-C does not wait for a large file's hash."""


class SkippedPath(LocalInputError):
    """A path the walk skipped by rule (a symbolic link not followed, a socket, fifo or device).

    A warning, not a failure: commands report it as *skipped* with ``reason`` (``symlink``,
    ``fifo``, ``socket``...).
    """

    warning = True
    reason: str

    def __init__(self, message: str, *, key: str, path: str, reason: str) -> None:
        super().__init__(message, key=key, path=path)
        self.reason = reason


class InvalidNameError(LocalInputError):
    """A file name that cannot become a key (not valid UTF-8, or a duplicate after NFC)."""


class DuplicateNameError(InvalidNameError):
    """A name equal to the one before it in its directory after Unicode NFC normalisation; its
    ``key`` is the key they share (the first name keeps it, this one fails alone)."""


class SymlinkLoopError(LocalInputError):
    """A followed symbolic link leads back to a directory on the current path."""


class UnreadableDirectoryError(LocalInputError):
    """A directory that could not be listed; ``key`` is its prefix, ending with ``/``."""


class ValidationError(BulkputError):
    pass


class JournalError(BulkputError):
    fatal_for_job = True
    exit_code = 3


class JournalDamagedError(JournalError):
    """The journal's database is corrupt: the message names it and the way out (``--restart``)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"journal at {path} is damaged: run with --restart to start over", path=path
        )

    def one_line(self) -> str:
        return self.message


class ListingOrderError(BulkputError):
    """One side of a merge-join is not in key order (``found`` came after ``after``): the pairs
    would be wrong, so the job stops."""

    fatal_for_job = True
    exit_code = 3
    found: str
    after: str

    def __init__(self, message: str, *, found: str, after: str) -> None:
        super().__init__(message)
        self.found = found
        self.after = after


class MaxDeleteExceeded(BulkputError):
    """``sync --max-delete N`` would be exceeded (``count`` deletes, more than ``limit``): the
    sync refuses and deletes nothing (exit 3)."""

    fatal_for_job = True
    exit_code = 3
    limit: int
    count: int

    def __init__(self, message: str, *, limit: int, count: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.count = count


class JobAbortedError(BulkputError):
    """Raised by the Python API (``Uploader.upload``) when the job aborted, where the command
    line exits 3: ``cause`` is the fatal error (auth, missing bucket, unreachable endpoint,
    journal), ``summary`` the job's ``JobSummary`` (what was stored before it stopped)."""

    fatal_for_job = True
    exit_code = 3
    cause: BulkputError
    summary: object  # a bulkput.job.summary.JobSummary (not imported: errors.py imports nothing)

    def __init__(self, cause: BulkputError, summary: object) -> None:
        super().__init__(f"the job aborted: {cause.one_line()}")
        self.cause = cause
        self.summary = summary


class PartitionError(BulkputError):
    """Raised by a Dask partition task that could not run (its source unreadable on the worker,
    the store unreachable, credentials missing there: any cause that aborts a job), so Dask's
    ``retries`` apply; the client prints ``one_line()`` for a partition that failed every try.
    Objects that failed are not this: they are in the partition's returned summary."""

    fatal_for_job = True
    exit_code = 3

    def __init__(self, cause: str, *, host: str, cwd: str) -> None:
        super().__init__(f"{cause} (on worker {host}, working directory {cwd})")
        self.cause = cause
        self.host = host
        self.cwd = cwd

    def __reduce__(self) -> tuple[object, ...]:
        # sent back from the worker by pickle, which would call __init__(message) alone
        return (_partition_error, (self.cause, self.host, self.cwd))


def _partition_error(cause: str, host: str, cwd: str) -> PartitionError:
    return PartitionError(cause, host=host, cwd=cwd)


class UnexpectedError(BulkputError):
    """An exception that no part of bulkput raises on purpose (a bug, or a store, input or
    subscriber that broke its contract) met in one part of a job. What that part left undone
    cannot be known, so the job stops (exit 3) rather than report success: ``stage`` names the
    part, the message the exception and where it was raised; the original is ``__cause__``
    (its traceback is logged at debug level: ``--debug``)."""

    fatal_for_job = True
    exit_code = 3
    stage: str

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(
            f"unexpected {type(error).__name__} in {stage}{_raised_at(error)}: {error}"
            " (a bug; --debug shows the traceback)"
        )
        self.stage = stage
        self.__cause__ = error

    @classmethod
    def during(cls, stage: str, error: BaseException) -> UnexpectedError:
        """``error`` met in ``stage``, its traceback logged at debug level."""
        wrapped = cls(stage, error)
        logging.getLogger("bulkput").debug("%s", wrapped.one_line(), exc_info=error)
        return wrapped


def _raised_at(error: BaseException) -> str:
    """`` (at FILE:LINE)``: the innermost frame of ``error``'s traceback, '' without one."""
    trace = error.__traceback__
    if trace is None:
        return ""
    while trace.tb_next is not None:
        trace = trace.tb_next
    code = trace.tb_frame.f_code
    return f" (at {os.path.basename(code.co_filename)}:{trace.tb_lineno} in {code.co_name})"


class RemoteError(BulkputError):
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        bucket: str | None = None,
        key: str | None = None,
        retryable: bool | None = None,
        fatal_for_job: bool | None = None,
    ) -> None:
        super().__init__(message, key=key)
        self.service_code = code
        self.status = status
        self.request_id = request_id
        self.bucket = bucket
        if retryable is not None:
            self.retryable = retryable
        if fatal_for_job is not None:
            self.fatal_for_job = fatal_for_job

    @property
    def code(self) -> str:
        return self.service_code or (f"HTTP{self.status}" if self.status else type(self).__name__)

    def one_line(self) -> str:
        subject = self.key if self.key is not None else (self.bucket or "")
        parts = [self.code]
        if self.status:
            parts.append(str(self.status))
        detail = self._detail()
        tail = f" (request id {self.request_id})" if self.request_id else ""
        head = f"{subject}: " if subject else ""
        return scrub(f"{head}{' '.join(parts)}: {detail}{tail}")

    def _detail(self) -> str:
        return " ".join(self.message.split())

    def __reduce__(self):  # keep keyword state across pickling (Dask ships errors between processes)
        return (_rebuild_remote, (type(self), self.message, self.__dict__.copy()))


def _rebuild_remote(cls: type[RemoteError], message: str, state: dict) -> RemoteError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


@dataclass(frozen=True, slots=True)
class CredentialsUsed:
    """Which credentials a refused request was signed with, as a message may show them:
    where they were found (``profile 'dev' in ~/.aws/credentials``) and the access key id
    shortened (``AKIA...XYZ``). Never the secret or the token."""

    origin: str
    key_id: str

    @classmethod
    def of(cls, origin: str, access_key: str) -> CredentialsUsed:
        shown = f"{access_key[:4]}...{access_key[-3:]}" if len(access_key) > 8 else f"{access_key[:2]}..."
        return cls(origin, shown)


# Answers that say the credentials themselves are wrong (not that they may not do this).
REJECTED_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "SecurityTokenExpired",
    "ExpiredToken", "InvalidToken", "InvalidSessionToken",
})  # fmt: skip


class AuthError(RemoteError):
    """The service refused the credentials (or what they may do). ``credentials`` names the
    ones used, when the store knows where they came from: the one line then says so."""

    fatal_for_job = True
    exit_code = 3
    credentials: CredentialsUsed | None = None

    def _detail(self) -> str:
        used = self.credentials
        if used is None:
            return super()._detail()
        verdict = (
            "were rejected" if self.service_code in REJECTED_CREDENTIAL_CODES
            else "were refused access"
        )  # fmt: skip
        return f"credentials from {used.origin} (key id {used.key_id}) {verdict}: {super()._detail()}"

    def reworded(self, message: str) -> AuthError:
        """The same refusal (code, status, request id, bucket, the credentials used) with
        ``message`` saying what was refused and what to do."""
        refused = AuthError(message, code=self.code, status=self.status,
                            request_id=self.request_id, bucket=self.bucket)  # fmt: skip
        refused.credentials = self.credentials
        return refused


class NotFoundError(RemoteError):
    pass


class ThrottledError(RemoteError):
    retryable = True


class TransportError(RemoteError):
    retryable = True


class ConnectError(TransportError):
    """The connection was never established, so the request cannot have reached the server.
    The retry loop gives these ``RetryPolicy.connect_attempts`` tries, then raises
    ``EndpointUnreachable``; but when ``outage`` is set (the endpoint had answered earlier in
    the job, so it is the right one and has gone away for a while) it retries for
    ``RetryPolicy.outage_wait`` seconds first."""

    outage: bool = False


class EndpointUnreachable(TransportError):
    retryable = False
    fatal_for_job = True
    exit_code = 3


class ServiceError(RemoteError):
    pass


@dataclass(frozen=True, slots=True)
class _Rule:
    cls: type[RemoteError]
    retryable: bool = False
    fatal_for_job: bool = False


# Service codes, across the three dialects, and what they mean for the job.
_CODE_RULES: dict[str, _Rule] = {
    # job-fatal: nothing else will succeed either
    "InvalidAccessKeyId": _Rule(AuthError, fatal_for_job=True),
    "SignatureDoesNotMatch": _Rule(AuthError, fatal_for_job=True),
    "AccessDenied": _Rule(AuthError, fatal_for_job=True),
    "InvalidSecurityToken": _Rule(AuthError, fatal_for_job=True),
    "SecurityTokenExpired": _Rule(AuthError, fatal_for_job=True),
    "ExpiredToken": _Rule(AuthError, fatal_for_job=True),
    "InvalidToken": _Rule(AuthError, fatal_for_job=True),
    "InvalidSessionToken": _Rule(AuthError, fatal_for_job=True),
    "NoSuchBucket": _Rule(NotFoundError, fatal_for_job=True),
    # per object, not retried
    "NoSuchKey": _Rule(NotFoundError),
    "NoSuchUpload": _Rule(NotFoundError),
    "InvalidObjectName": _Rule(ServiceError),
    "KeyTooLongError": _Rule(ServiceError),
    "EntityTooLarge": _Rule(ServiceError),
    "EntityTooSmall": _Rule(ServiceError),
    "InvalidArgument": _Rule(ServiceError),
    "InvalidDigest": _Rule(ServiceError),
    "InvalidPart": _Rule(ServiceError),
    "InvalidPartOrder": _Rule(ServiceError),
    "MetadataTooLarge": _Rule(ServiceError),
    "InvalidStorageClass": _Rule(ServiceError),
    "InvalidEncryptionAlgorithmError": _Rule(ServiceError),
    "MissingContentLength": _Rule(ServiceError),
    # transient: retried with backoff
    "BadDigest": _Rule(ServiceError, retryable=True),  # body corrupted on the way: resend
    "RequestTimeout": _Rule(ServiceError, retryable=True),
    "RequestTimeoutException": _Rule(ServiceError, retryable=True),
    "PriorRequestNotComplete": _Rule(ServiceError, retryable=True),
    "RequestTimeTooSkewed": _Rule(ServiceError, retryable=True),
    "RequestExpired": _Rule(ServiceError, retryable=True),
    "InternalError": _Rule(ServiceError, retryable=True),
    "ServiceUnavailable": _Rule(ThrottledError, retryable=True),
    "SlowDown": _Rule(ThrottledError, retryable=True),
    "Throttling": _Rule(ThrottledError, retryable=True),
    "ThrottlingException": _Rule(ThrottledError, retryable=True),
    "RequestLimitExceeded": _Rule(ThrottledError, retryable=True),
    "TooManyRequests": _Rule(ThrottledError, retryable=True),
    "TooManyRequestsException": _Rule(ThrottledError, retryable=True),
    "RequestThrottled": _Rule(ThrottledError, retryable=True),
    "QpsLimitExceeded": _Rule(ThrottledError, retryable=True),
}

_RETRYABLE_STATUS = {408, 500, 502, 503, 504}


def error_from_response(
    status: int,
    code: str | None,
    message: str | None = None,
    *,
    request_id: str | None = None,
    bucket: str | None = None,
    key: str | None = None,
) -> RemoteError:
    """Translate one service answer into the tree: the single place this decision is made."""
    msg = message or code or f"HTTP {status}"

    def make(cls: type[RemoteError], retryable: bool, fatal_for_job: bool = False) -> RemoteError:
        return cls(
            msg,
            code=code,
            status=status,
            request_id=request_id,
            bucket=bucket,
            key=key,
            retryable=retryable,
            fatal_for_job=fatal_for_job,
        )

    rule = _CODE_RULES.get(code or "")
    if rule is not None:
        return make(rule.cls, rule.retryable, rule.fatal_for_job)
    if status in (429, 503):
        return make(ThrottledError, True)
    if status in _RETRYABLE_STATUS:
        return make(ServiceError, True)
    if status in (401, 403):
        return make(AuthError, False, True)
    if status == 404:
        return make(NotFoundError, False)
    return make(ServiceError, False)
