"""Where credentials come from: the flags, the environment, the tools' files, then the
provider's credential chain (:mod:`bulkput.remote.credential_chains`).

The values (``Credentials``, whose ``repr`` masks the secret and the token, its origin, and
the renewing kind) are :mod:`bulkput.remote.credential_values`', named here too.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from bulkput.errors import CredentialsError

# The values live below this module (credential_chains makes them too); callers import them
# from here as well, as they always have.
from bulkput.remote.credential_values import (
    FLAGS_ORIGIN as FLAGS_ORIGIN,
)
from bulkput.remote.credential_values import CredentialOrigin
from bulkput.remote.credential_values import (
    Credentials as Credentials,
)
from bulkput.remote.credential_values import (
    CredentialSource as CredentialSource,
)
from bulkput.remote.credential_values import (
    RefreshingCredentials as RefreshingCredentials,
)

# --- where credentials come from ----------------------------------------------------------
#
# resolve_credentials() looks, in order: the command-line flags, then the environment, then
# the provider's own tool files. The first complete pair wins; a half pair (a key id without
# its secret) is an error rather than being silently skipped. Messages name places, never values.

_log = logging.getLogger(__name__)

# (access key, secret key, session token) variable names per provider, in the order tried.
ENV_NAMES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "bos": (("BCE_ACCESS_KEY_ID", "BCE_SECRET_ACCESS_KEY", "BCE_SESSION_TOKEN"),),
    "oss": (
        ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_SECURITY_TOKEN",
        ),
    ),
    "s3": (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),),
}

_warned_paths: set[str] = set()


def resolve_credentials(
    scheme: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] = os.environ,
    home: str | os.PathLike[str] | None = None,
    chains: bool | None = None,
) -> CredentialSource:
    """The credentials for ``scheme`` (``bos``, ``oss``, ``s3``): flags, environment, files,
    then the provider's own credential chain (:mod:`bulkput.remote.credential_chains`).

    ``profile`` selects a section of the tool files (for S3 also ``AWS_PROFILE``); an explicit
    ``profile`` skips the environment keys, as the AWS CLI does. The chains read the process
    environment, so they run only when ``env`` is ``os.environ`` (unless ``chains`` says
    otherwise). Raises CredentialsError, one line naming every place looked at, when nothing
    complete is found, or naming the profile when it exists in no file.
    """
    if scheme not in ENV_NAMES:
        raise ValueError(f"unknown scheme {scheme!r}")
    use_chains = env is os.environ if chains is None else chains
    looked: list[str] = []

    looked.append("--access-key/--secret-key")
    if access_key or secret_key:
        if not (access_key and secret_key):
            missing = "--secret-key" if access_key else "--access-key"
            raise CredentialsError(f"{missing} is missing: give both --access-key and --secret-key")
        return Credentials(
            access_key, secret_key, session_token or None, source="command line", origin=FLAGS_ORIGIN
        )

    if profile is None:
        for ak_name, sk_name, token_name in ENV_NAMES[scheme]:
            looked.append(f"env {ak_name}/{sk_name}")
            found = _from_env(env, ak_name, sk_name, token_name)
            if found is not None:
                return found

    home_path = _home(home, env)
    needs_chain = False
    if scheme == "s3":
        needs_chain = _check_aws_profile(home_path, env, profile)
    if not needs_chain:
        for reader in _FILE_READERS[scheme]:
            found, place = reader(home_path, env, profile)
            looked.append(place)
            if found is not None:
                return found

    from bulkput.remote import credential_chains

    if scheme == "s3" and (use_chains or needs_chain):
        if needs_chain or credential_chains.botocore_available():
            looked.append(credential_chains.AWS_CHAIN_PLACES)
            chained = credential_chains.aws_chain(_explicit_aws_profile(env, profile))
            if chained is not None:
                return chained
        else:
            looked.append("(pip install 'bulkput[aws]' for roles, SSO, web identity, instance "
                          "and container credentials)")
    if scheme == "oss" and use_chains:
        looked.append(credential_chains.ALIYUN_CHAIN_PLACES)
        chained = credential_chains.aliyun_chain()
        if chained is not None:
            return chained
    raise CredentialsError(f"no {scheme} credentials found; looked in: {', '.join(looked)}")


# Keys of an ~/.aws/config profile that only botocore's chain can turn into credentials.
_AWS_CHAIN_KEYS = frozenset(
    ("role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file")
)


def _explicit_aws_profile(env: Mapping[str, str], profile: str | None) -> str | None:
    return profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or None


def _check_aws_profile(home: Path, env: Mapping[str, str], profile: str | None) -> bool:
    """Whether the selected AWS profile needs the credential chain. Raises CredentialsError
    when a profile was named (``--profile``, ``AWS_PROFILE``) and no file has it."""
    name = aws_profile(env, profile)
    credentials_path, config_path = _aws_paths(home, env)
    shown = (_show(credentials_path, home), _show(config_path, home))
    in_credentials = _section(_read_ini(credentials_path, shown[0], warn_permissions=False), name)
    in_config = _aws_config_section(_read_ini(config_path, shown[1], warn_permissions=False), name)
    if in_credentials is None and in_config is None:
        if _explicit_aws_profile(env, profile) is not None and name != "default":
            raise CredentialsError(f"profile {name} not found in {shown[0]}, {shown[1]}")
        return False
    has_keys = any(
        section is not None and _pick(section, "aws_access_key_id")
        for section in (in_credentials, in_config)
    )
    return not has_keys and in_config is not None and bool(_AWS_CHAIN_KEYS & set(in_config))


def _from_env(
    env: Mapping[str, str], ak_name: str, sk_name: str, token_name: str
) -> Credentials | None:
    ak = env.get(ak_name) or None
    sk = env.get(sk_name) or None
    if ak is None and sk is None:
        return None
    if ak is None or sk is None:
        present, absent = (ak_name, sk_name) if ak else (sk_name, ak_name)
        raise CredentialsError(f"environment has {present} but not {absent}: set both or neither")
    return Credentials(
        ak, sk, env.get(token_name) or None, source=f"env {ak_name}",
        origin=CredentialOrigin("environment", f"{ak_name}/{sk_name}"),
    )  # fmt: skip


def _home(home: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    if home is not None:
        return Path(home)
    return Path(env.get("HOME") or Path.home())


def _show(path: Path, home: Path) -> str:
    """``~/.aws/credentials`` rather than the full path, when it is under home."""
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def _read_ini(
    path: Path, shown: str, *, warn_permissions: bool
) -> configparser.ConfigParser | None:
    """The parsed file, or None when it does not exist. Option names come back lower-cased."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {shown}: {type(exc).__name__}") from None
    if warn_permissions:
        warn_if_readable_by_others(path, shown)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=shown)
    except configparser.Error as exc:
        # the parser's message can quote a line of the file (a secret): give only where
        line = _error_line(exc)
        where = f" at line {line}" if line else ""
        raise CredentialsError(f"cannot parse {shown}{where}: not an INI file") from None
    return parser


def _error_line(error: configparser.Error) -> int | None:
    """The line number a parse error names (a line before any section header, or the first
    line that is not ``name = value``); None for the others."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return error.lineno
    if isinstance(error, configparser.ParsingError) and error.errors:
        return error.errors[0][0]
    return None


def warn_if_readable_by_others(path: Path, shown: str | None = None) -> bool:
    """Log a warning (once per file) when a credentials file is readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False
    key = str(path)
    if key not in _warned_paths:
        _warned_paths.add(key)
        _log.warning(
            "credentials file %s is accessible by group or others (mode %03o); run: chmod 600 %s",
            shown or path,
            stat.S_IMODE(mode),
            path,
        )
    return True


def _pick(section: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = section.get(name.lower())
        if value:
            return value.strip()
    return None


def _credentials_from_section(
    section: Mapping[str, str] | None,
    shown: str,
    ak_names: tuple[str, ...],
    sk_names: tuple[str, ...],
    token_names: tuple[str, ...],
    origin: CredentialOrigin | None = None,
) -> Credentials | None:
    if section is None:
        return None
    ak = _pick(section, *ak_names)
    sk = _pick(section, *sk_names)
    if ak is None and sk is None:
        return None
    if ak is None or sk is None:
        raise CredentialsError(
            f"{shown} has {ak_names[0] if ak else sk_names[0]} but not "
            f"{sk_names[0] if ak else ak_names[0]}"
        )
    return Credentials(ak, sk, _pick(section, *token_names), source=shown, origin=origin)


def _section(parser: configparser.ConfigParser | None, *names: str) -> Mapping[str, str] | None:
    if parser is None:
        return None
    for name in names:
        if parser.has_section(name):
            return dict(parser.items(name))
    return None


# --- S3: ~/.aws/credentials and ~/.aws/config ------------------------------------------------


def aws_profile(env: Mapping[str, str], profile: str | None) -> str:
    return profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"


def _aws_paths(home: Path, env: Mapping[str, str]) -> tuple[Path, Path]:
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    config = env.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config")
    return Path(credentials).expanduser(), Path(config).expanduser()


def _aws_config_section(
    parser: configparser.ConfigParser | None, name: str
) -> Mapping[str, str] | None:
    # ~/.aws/config names sections "profile NAME", except "default"
    return (
        _section(parser, f"profile {name}", name)
        if name != "default"
        else _section(parser, "default")
    )


_AWS_KEYS = (
    ("aws_access_key_id",),
    ("aws_secret_access_key",),
    ("aws_session_token", "aws_security_token"),
)


def _aws_credentials_file(
    home: Path, env: Mapping[str, str], profile: str | None
) -> tuple[Credentials | None, str]:
    name = aws_profile(env, profile)
    path, _ = _aws_paths(home, env)
    shown = _show(path, home)
    parser = _read_ini(path, shown, warn_permissions=True)
    found = _credentials_from_section(
        _section(parser, name), f"{shown} [{name}]", *_AWS_KEYS,
        CredentialOrigin("profile", shown, name),
    )  # fmt: skip
    return found, f"{shown} [{name}]"


def _aws_config_file(
    home: Path, env: Mapping[str, str], profile: str | None
) -> tuple[Credentials | None, str]:
    name = aws_profile(env, profile)
    _, path = _aws_paths(home, env)
    shown = _show(path, home)
    parser = _read_ini(path, shown, warn_permissions=False)
    section = _aws_config_section(parser, name)
    if section is not None and _pick(section, "aws_secret_access_key"):
        warn_if_readable_by_others(path, shown)
    found = _credentials_from_section(
        section, f"{shown} [{name}]", *_AWS_KEYS, CredentialOrigin("profile", shown, name)
    )
    return found, f"{shown} [{name}]"


# --- OSS: ~/.ossutilconfig ---------------------------------------------------------------------
# ossutil 1.x writes a [Credentials] section (accessKeyID, accessKeySecret, stsToken, endpoint);
# ossutil 2.x writes [default] / [profile NAME] (accessKeyId, accessKeySecret, region, endpoint).

_OSSUTIL_KEYS = (
    ("accessKeyID", "access_key_id"),
    ("accessKeySecret", "access_key_secret"),
    ("stsToken", "securityToken", "sts_token", "security_token"),
)


def _ossutil_section(
    home: Path, profile: str | None, *, warn: bool
) -> tuple[Mapping[str, str] | None, str]:
    path = home / ".ossutilconfig"
    shown = _show(path, home)
    parser = _read_ini(path, shown, warn_permissions=warn)
    if profile:
        return _section(parser, profile, f"profile {profile}"), f"{shown} [{profile}]"
    return _section(parser, "Credentials", "default"), shown


def _ossutil_file(
    home: Path, env: Mapping[str, str], profile: str | None
) -> tuple[Credentials | None, str]:
    section, shown = _ossutil_section(home, profile, warn=True)
    origin = CredentialOrigin("profile", _show(home / ".ossutilconfig", home), profile)
    return _credentials_from_section(section, shown, *_OSSUTIL_KEYS, origin), shown


# --- BOS: ~/.go-bcecli/credentials and config (bcecmd) -------------------------------------------

_BCECMD_KEYS = (("Ak",), ("Sk",), ("Sts",))


def _bcecmd_file(
    home: Path, env: Mapping[str, str], profile: str | None
) -> tuple[Credentials | None, str]:
    path = home / ".go-bcecli" / "credentials"
    shown = _show(path, home)
    name = profile or "Defaults"
    parser = _read_ini(path, shown, warn_permissions=True)
    origin = CredentialOrigin("profile", shown, name)
    return _credentials_from_section(_section(parser, name), shown, *_BCECMD_KEYS, origin), shown


_FileReader = Callable[[Path, Mapping[str, str], "str | None"], tuple["Credentials | None", str]]

_FILE_READERS: dict[str, tuple[_FileReader, ...]] = {
    "bos": (_bcecmd_file,),
    "oss": (_ossutil_file,),
    "s3": (_aws_credentials_file, _aws_config_file),
}


# --- endpoint and region from the environment and the tools' files -----------------------------


def resolve_endpoint_from_env(
    scheme: str,
    *,
    profile: str | None = None,
    env: Mapping[str, str] = os.environ,
    home: str | os.PathLike[str] | None = None,
) -> str | None:
    """An endpoint URL configured outside the command line, or None.

    S3: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, then ``endpoint_url`` of the profile in
    ``~/.aws/config``. OSS: ``OSS_ENDPOINT``, then ``endpoint`` in ``~/.ossutilconfig``. BOS:
    ``BCE_ENDPOINT``, then ``Domain`` in ``~/.go-bcecli/config``. Host-only values get ``https://``.
    """
    home_path = _home(home, env)
    if scheme == "s3":
        value = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if not value:
            value = _pick(_aws_config(home_path, env, profile) or {}, "endpoint_url")
    elif scheme == "oss":
        value = env.get("OSS_ENDPOINT") or _pick(
            _ossutil_section(home_path, profile, warn=False)[0] or {}, "endpoint"
        )
    elif scheme == "bos":
        value = env.get("BCE_ENDPOINT") or _pick(_bcecmd_config(home_path, profile) or {}, "Domain")
    else:
        raise ValueError(f"unknown scheme {scheme!r}")
    if not value:
        return None
    return value if "://" in value else f"https://{value}"


def resolve_region_from_env(
    scheme: str,
    *,
    profile: str | None = None,
    env: Mapping[str, str] = os.environ,
    home: str | os.PathLike[str] | None = None,
) -> str | None:
    """A region configured outside the command line, or None.

    S3: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then ``region`` of the profile in
    ``~/.aws/config``. OSS: ``OSS_REGION``, then ``region`` in ``~/.ossutilconfig``. BOS:
    ``BCE_REGION``, then ``Region`` in ``~/.go-bcecli/config``.
    """
    home_path = _home(home, env)
    if scheme == "s3":
        return (
            env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or _pick(_aws_config(home_path, env, profile) or {}, "region")
        )
    if scheme == "oss":
        return env.get("OSS_REGION") or _pick(
            _ossutil_section(home_path, profile, warn=False)[0] or {}, "region"
        )
    if scheme == "bos":
        return env.get("BCE_REGION") or _pick(_bcecmd_config(home_path, profile) or {}, "Region")
    raise ValueError(f"unknown scheme {scheme!r}")


def _aws_config(
    home: Path, env: Mapping[str, str], profile: str | None
) -> Mapping[str, str] | None:
    _, path = _aws_paths(home, env)
    parser = _read_ini(path, _show(path, home), warn_permissions=False)
    return _aws_config_section(parser, aws_profile(env, profile))


def _bcecmd_config(home: Path, profile: str | None) -> Mapping[str, str] | None:
    path = home / ".go-bcecli" / "config"
    parser = _read_ini(path, _show(path, home), warn_permissions=False)
    return _section(parser, profile or "Defaults")
