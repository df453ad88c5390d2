"""A job's settings checked against the provider's own tables before any work.

:func:`check_spec` runs before a source is read or a request is sent (the commands call it
when they build the spec, :func:`bulkput.job.run.open_destination` again for every other
caller): a value the service would refuse for every object is one
:class:`~bulkput.errors.UsageError` (exit 2), one line naming the option and the value, with
"did you mean" when a known value is close, instead of one failure per object. The lists are
the dialects' (:mod:`bulkput.remote.dialects`), the part sizes :mod:`bulkput.job.multipart`'s,
the regions :mod:`bulkput.remote.regions`' (checked where the endpoint is resolved).

A manifest line's own ACL or storage class is still checked per object (that object fails,
the rest goes on).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bulkput.errors import UsageError, ValidationError
from bulkput.remote.dialects import Dialect, dialect_for_endpoint
from bulkput.remote.dialects.base import Choice

if TYPE_CHECKING:
    from bulkput.config import TransferConfig
    from bulkput.job.spec import JobSpec, StoreSettings
    from bulkput.remote.target import Endpoint, Target


def signature_problem(dialect: Dialect, version: str) -> str | None:
    """Why ``--signature-version VERSION`` does not go with the dialect's scheme, or None.

    =========  =========  =======================================================
    scheme     version    result
    =========  =========  =======================================================
    oss://     v4, v1     None (OSS V4, OSS V1)
    s3://      v4         None (SigV4, its only signature)
    s3://      v1, v2...  "s3:// has one signature, SigV4: leave the option out ..."
    bos://     v4         None (the default: bce-auth-v1, its only signature)
    bos://     v1, v2...  "bos:// has one signature, bce-auth-v1: leave the option out ..."
    oss://     v2, ...    "oss:// accepts v4 or v1 (OSS V4 or V1)"
    =========  =========  =======================================================
    """
    accepted = dialect.signature_versions
    if version in accepted:
        return None
    if len(accepted) == 1:
        return (
            f"--signature-version {version}: {dialect.name}:// has one signature, "
            f"{dialect.signature_name}: leave the option out (v1 and v4 choose between "
            "OSS's two signatures)"
        )
    return (
        f"--signature-version {version}: {dialect.name}:// accepts "
        f"{' or '.join(accepted)} ({dialect.signature_name})"
    )


def check_spec(spec: JobSpec, env: Mapping[str, str] | None = None) -> Endpoint:
    """:func:`check_store` for ``spec``, with its default object headers: the ACL, storage
    class and server-side encryption against the provider's lists (an S3-compatible store's
    own storage classes pass, with one warning when the first object goes) and the metadata
    names. Returns the endpoint the job will use."""
    endpoint = check_store(spec.target, spec.store, spec.transfer, env)
    dialect = dialect_for_endpoint(spec.target.scheme, endpoint)
    defaults = spec.defaults
    choices: tuple[tuple[str, Choice, str | None], ...] = (
        ("--acl", "ACL", defaults.acl),
        ("--storage-class", "storage class", defaults.storage_class),
        ("--sse", "server-side encryption", defaults.server_side_encryption),
    )
    for option, what, value in choices:
        problem = dialect.unknown_choice(what, value) if value is not None else None
        if problem is not None:
            raise UsageError(f"{option}: {problem}")
    try:
        dialect.validate_metadata("", defaults.metadata)
    except ValidationError as error:
        raise UsageError(f"--meta: {error.message}") from None
    return endpoint


def check_store(
    target: Target,
    settings: StoreSettings,
    config: TransferConfig,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """Raise UsageError for the first store setting the service would refuse for every
    request: the signature version for the scheme, the region (see
    :func:`bulkput.remote.target.resolve_endpoint`), ``--part-size`` against the provider's
    multipart limits. Returns the endpoint (nothing is sent, no credential looked up)."""
    from bulkput.job.multipart import MAX_PART_SIZE, min_part_size

    endpoint = resolve_store_endpoint(target, settings, config, env)
    dialect = dialect_for_endpoint(target.scheme, endpoint)
    problem = signature_problem(dialect, settings.signature_version)
    if problem is not None:
        raise UsageError(problem)
    part_size = config.part_size
    if part_size is not None:
        smallest = min_part_size(dialect.name)
        if not smallest <= part_size <= MAX_PART_SIZE:
            raise UsageError(
                f"--part-size {_size(part_size)}: {dialect.name}:// takes parts of "
                f"{_size(smallest)} to {_size(MAX_PART_SIZE)} (e.g. --part-size 8M)"
            )
    return endpoint


def resolve_store_endpoint(
    target: Target,
    settings: StoreSettings,
    config: TransferConfig,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """The endpoint serving ``target``: the settings, else the environment and the tools'
    files (as each provider's own tools read them); nothing is sent."""
    from bulkput.remote import credentials as found
    from bulkput.remote.target import resolve_endpoint

    env = os.environ if env is None else env
    scheme = target.scheme
    endpoint_url = settings.endpoint or found.resolve_endpoint_from_env(
        scheme, profile=settings.profile, env=env
    )
    region = settings.region or found.resolve_region_from_env(
        scheme, profile=settings.profile, env=env
    )
    return resolve_endpoint(
        target, endpoint_url, region, settings.addressing, verify_tls=config.verify_tls
    )


def _size(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"
