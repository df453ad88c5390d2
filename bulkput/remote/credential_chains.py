"""Credential chains beyond static keys, from each provider's own well-kept library.

bulkput reads static keys itself (flags, environment, the tools' files: see
:mod:`bulkput.remote.credentials`). Everything else comes from the providers' libraries, which
are optional extras, imported only when static keys are not found:

| target | extra | library | what it adds |
|---|---|---|---|
| ``s3://`` | ``bulkput[aws]`` | botocore | ``role_arn`` + ``source_profile`` (AssumeRole), ``credential_process``, SSO token cache, ``AWS_WEB_IDENTITY_TOKEN_FILE`` (AssumeRoleWithWebIdentity, Kubernetes IRSA), ECS/container credentials, EC2 instance metadata (IMDSv2) |
| ``oss://`` | ``bulkput[aliyun]`` | alibabacloud-credentials | OIDC role (RRSA), ``~/.alibabacloud/credentials`` profiles (RAM role ARN), ECS RAM role, ``ALIBABA_CLOUD_CREDENTIALS_URI`` |

Both libraries refresh temporary credentials themselves (botocore 10-15 minutes before expiry);
:class:`~bulkput.remote.credentials.RefreshingCredentials` asks them again at most once a
minute, in a thread, so the event loop never waits on an STS call and every request is signed
with credentials that are current. ``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL`` point
botocore's STS calls elsewhere (tests use moto's server).
"""

from __future__ import annotations

from typing import Any

from bulkput.errors import CredentialsError
from bulkput.remote.credential_values import CredentialOrigin, Credentials, RefreshingCredentials

# botocore's ``method`` names, as a user would read them in "credentials from ..."
_AWS_METHODS = {
    "assume-role": "assume role",
    "assume-role-with-web-identity": "web identity token (AssumeRoleWithWebIdentity)",
    "custom-process": "credential_process",
    "sso": "SSO token cache",
    "container-role": "container credentials",
    "iam-role": "instance metadata (IMDS)",
    "env": "environment",
    "shared-credentials-file": "shared credentials file",
    "config-file": "config file",
}

AWS_CHAIN_PLACES = (
    "botocore chain (assume role, credential_process, SSO, web identity, container, "
    "instance metadata)"
)
ALIYUN_CHAIN_PLACES = (
    "alibabacloud-credentials chain (OIDC role, ~/.alibabacloud/credentials, ECS RAM role, "
    "credentials URI)"
)


def botocore_available() -> bool:
    try:
        import botocore.session  # noqa: F401
    except ImportError:
        return False
    return True


def aws_chain(profile: str | None) -> Credentials | RefreshingCredentials | None:
    """Credentials from botocore's chain for ``profile``, or None when it finds none.

    Raises CredentialsError when botocore is missing, or when a source is configured but fails
    (an STS error, a credential_process that exits non-zero): the message names the source,
    never a secret."""
    try:
        import botocore.exceptions
        import botocore.session
    except ImportError:
        raise CredentialsError(
            "this AWS profile needs botocore's credential chain: pip install 'bulkput[aws]'"
        ) from None
    session = botocore.session.Session(profile=profile)
    try:
        found = session.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CredentialsError(f"AWS credential chain failed: {_aws_failure(exc)}") from None
    if found is None:
        return None
    method = _AWS_METHODS.get(found.method or "", "botocore chain")
    source = f"{method}{f' (profile {profile})' if profile else ''}"

    def fetch() -> Credentials:
        try:
            frozen = found.get_frozen_credentials()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise CredentialsError(f"refreshing {source} failed: {_aws_failure(exc)}") from None
        return Credentials(
            frozen.access_key, frozen.secret_key, frozen.token, source=source,
            origin=CredentialOrigin("chain", f"botocore: {method}", profile),
        )  # fmt: skip

    first = fetch()
    if first.session_token is None:  # long-lived keys: nothing to refresh
        return first
    return RefreshingCredentials(fetch, first=first)


def _aws_failure(exc: Exception) -> str:
    # botocore's messages name files, roles and error codes, not secret values; still keep
    # only the class and the first line, so nothing a server echoed travels further
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


def aliyun_chain() -> Credentials | RefreshingCredentials | None:
    """Credentials from alibabacloud-credentials' default chain, or None when it finds none."""
    try:
        from alibabacloud_credentials.exceptions import CredentialException
        from alibabacloud_credentials.provider.default import DefaultCredentialsProvider
    except ImportError:
        return None
    provider = DefaultCredentialsProvider()

    def fetch() -> Credentials:
        try:
            got: Any = provider.get_credentials()
        except CredentialException:
            raise CredentialsError("alibabacloud-credentials found no credentials") from None
        name = got.get_provider_name() or "alibabacloud-credentials"
        return Credentials(
            got.get_access_key_id(),
            got.get_access_key_secret(),
            got.get_security_token() or None,
            source=f"alibabacloud-credentials {name}",
            origin=CredentialOrigin("chain", f"alibabacloud-credentials: {name}"),
        )

    try:
        first = fetch()
    except CredentialsError:
        return None
    except Exception as exc:  # the library raises plain exceptions for network failures
        raise CredentialsError(
            f"alibabacloud-credentials chain failed: {type(exc).__name__}"
        ) from None
    if first.session_token is None:
        return first
    return RefreshingCredentials(fetch, first=first)

