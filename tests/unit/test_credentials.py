"""Credential chains per provider (flags, environment, tool files), endpoint and region lookup."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from bulkput.errors import CredentialsError
from bulkput.remote import credentials as creds
from bulkput.remote.credentials import (
    Credentials,
    resolve_credentials,
    resolve_endpoint_from_env,
    resolve_region_from_env,
)

SECRET = "s3cr3t-value-never-shown"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture(autouse=True)
def _forget_warnings() -> None:
    creds._warned_paths.clear()


def test_flags_win_over_everything(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "envak", "AWS_SECRET_ACCESS_KEY": "envsk"}
    found = resolve_credentials(
        "s3", access_key="flagak", secret_key=SECRET, env=env, home=tmp_path
    )
    assert (found.access_key, found.secret_key, found.source) == ("flagak", SECRET, "command line")


def test_half_flags_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="--secret-key is missing"):
        resolve_credentials("bos", access_key="ak", env={}, home=tmp_path)


@pytest.mark.parametrize(
    ("scheme", "env", "expected"),
    [
        (
            "bos",
            {"BCE_ACCESS_KEY_ID": "a", "BCE_SECRET_ACCESS_KEY": SECRET, "BCE_SESSION_TOKEN": "t"},
            ("a", "t"),
        ),
        (
            "oss",
            {"OSS_ACCESS_KEY_ID": "a", "OSS_ACCESS_KEY_SECRET": SECRET, "OSS_SESSION_TOKEN": "t"},
            ("a", "t"),
        ),
        (
            "oss",
            {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "b",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                "ALIBABA_CLOUD_SECURITY_TOKEN": "tt",
            },
            ("b", "tt"),
        ),
        ("s3", {"AWS_ACCESS_KEY_ID": "c", "AWS_SECRET_ACCESS_KEY": SECRET}, ("c", None)),
        (
            "s3",
            {"AWS_ACCESS_KEY_ID": "c", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": ""},
            ("c", None),
        ),
    ],
)
def test_environment(
    scheme: str, env: dict[str, str], expected: tuple[str, str | None], tmp_path: Path
) -> None:
    found = resolve_credentials(scheme, env=env, home=tmp_path)
    assert (found.access_key, found.session_token) == expected
    assert found.secret_key == SECRET
    assert found.source.startswith("env ")


def test_oss_names_come_before_alibaba_names(tmp_path: Path) -> None:
    env = {
        "OSS_ACCESS_KEY_ID": "oss",
        "OSS_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "ali",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
    }
    assert resolve_credentials("oss", env=env, home=tmp_path).access_key == "oss"


def test_other_providers_env_is_ignored(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "c", "AWS_SECRET_ACCESS_KEY": SECRET}
    with pytest.raises(CredentialsError):
        resolve_credentials("bos", env=env, home=tmp_path)


def test_half_environment_names_the_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(
        CredentialsError, match="has AWS_ACCESS_KEY_ID but not AWS_SECRET_ACCESS_KEY"
    ):
        resolve_credentials("s3", env={"AWS_ACCESS_KEY_ID": "x"}, home=tmp_path)


def test_aws_files_and_profiles(tmp_path: Path) -> None:
    write(
        tmp_path / ".aws" / "credentials",
        f"[default]\naws_access_key_id = dak\naws_secret_access_key = {SECRET}\n"
        f"[work]\naws_access_key_id = wak\naws_secret_access_key = {SECRET}\naws_session_token = wtok\n",
    )
    write(
        tmp_path / ".aws" / "config",
        f"[profile cfg]\naws_access_key_id = cak\naws_secret_access_key = {SECRET}\nregion = eu-central-1\n"
        "endpoint_url = http://127.0.0.1:9000\n",
    )
    assert resolve_credentials("s3", env={}, home=tmp_path).access_key == "dak"
    work = resolve_credentials("s3", env={"AWS_PROFILE": "work"}, home=tmp_path)
    assert (work.access_key, work.session_token) == ("wak", "wtok")
    assert resolve_credentials("s3", profile="cfg", env={}, home=tmp_path).access_key == "cak"
    assert resolve_region_from_env("s3", profile="cfg", env={}, home=tmp_path) == "eu-central-1"
    assert (
        resolve_endpoint_from_env("s3", profile="cfg", env={}, home=tmp_path)
        == "http://127.0.0.1:9000"
    )


def test_explicit_profile_skips_environment_keys(tmp_path: Path) -> None:
    write(
        tmp_path / ".aws" / "credentials",
        f"[p]\naws_access_key_id = pak\naws_secret_access_key = {SECRET}\n",
    )
    env = {"AWS_ACCESS_KEY_ID": "envak", "AWS_SECRET_ACCESS_KEY": SECRET}
    assert resolve_credentials("s3", env=env, home=tmp_path).access_key == "envak"
    assert resolve_credentials("s3", profile="p", env=env, home=tmp_path).access_key == "pak"


def test_ossutil_config_both_generations(tmp_path: Path) -> None:
    write(
        tmp_path / ".ossutilconfig",
        f"[Credentials]\nlanguage=EN\nendpoint=oss-cn-shanghai.aliyuncs.com\naccessKeyID=v1ak\n"
        f"accessKeySecret={SECRET}\nstsToken=v1tok\n",
    )
    found = resolve_credentials("oss", env={}, home=tmp_path)
    assert (found.access_key, found.session_token, found.source) == (
        "v1ak",
        "v1tok",
        "~/.ossutilconfig",
    )
    assert (
        resolve_endpoint_from_env("oss", env={}, home=tmp_path)
        == "https://oss-cn-shanghai.aliyuncs.com"
    )
    write(
        tmp_path / ".ossutilconfig",
        f"[default]\naccessKeyId=v2ak\naccessKeySecret={SECRET}\nregion=cn-beijing\n",
    )
    assert resolve_credentials("oss", env={}, home=tmp_path).access_key == "v2ak"
    assert resolve_region_from_env("oss", env={}, home=tmp_path) == "cn-beijing"


def test_bcecmd_files(tmp_path: Path) -> None:
    write(tmp_path / ".go-bcecli" / "credentials", f"[Defaults]\nAk = bak\nSk = {SECRET}\nSts = \n")
    write(
        tmp_path / ".go-bcecli" / "config",
        "[Defaults]\nDomain = su.bcebos.com\nRegion = su\n",
        0o644,
    )
    found = resolve_credentials("bos", env={}, home=tmp_path)
    assert (found.access_key, found.secret_key, found.session_token) == ("bak", SECRET, None)
    assert resolve_endpoint_from_env("bos", env={}, home=tmp_path) == "https://su.bcebos.com"
    assert resolve_region_from_env("bos", env={}, home=tmp_path) == "su"


def test_endpoint_and_region_environment_order(tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2"}
    assert resolve_endpoint_from_env("s3", env=env, home=tmp_path) == "http://127.0.0.1:2"
    assert (
        resolve_endpoint_from_env(
            "s3", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, home=tmp_path
        )
        == "http://127.0.0.1:1"
    )
    assert resolve_endpoint_from_env("s3", env={}, home=tmp_path) is None
    env = {"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2"}
    assert resolve_region_from_env("s3", env=env, home=tmp_path) == "r1"
    assert resolve_region_from_env("s3", env={"AWS_DEFAULT_REGION": "r2"}, home=tmp_path) == "r2"


@pytest.mark.parametrize(
    ("scheme", "places"),
    [
        (
            "bos",
            [
                "--access-key/--secret-key",
                "env BCE_ACCESS_KEY_ID/BCE_SECRET_ACCESS_KEY",
                "~/.go-bcecli/credentials",
            ],
        ),
        (
            "oss",
            [
                "env OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET",
                "env ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                "~/.ossutilconfig",
            ],
        ),
        (
            "s3",
            [
                "env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                "~/.aws/credentials [default]",
                "~/.aws/config [default]",
            ],
        ),
    ],
)
def test_missing_credentials_name_every_place_on_one_line(
    scheme: str, places: list[str], tmp_path: Path
) -> None:
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(scheme, env={}, home=tmp_path)
    message = info.value.one_line()
    assert "\n" not in message
    for place in places:
        assert place in message
    assert info.value.exit_code == 2


def test_group_readable_credentials_file_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path / ".aws" / "credentials",
        f"[default]\naws_access_key_id = a\naws_secret_access_key = {SECRET}\n",
        0o644,
    )
    with caplog.at_level(logging.WARNING, logger="bulkput.remote.credentials"):
        resolve_credentials("s3", env={}, home=tmp_path)
        resolve_credentials("s3", env={}, home=tmp_path)
    warnings = [r for r in caplog.records if "accessible by group or others" in r.getMessage()]
    assert len(warnings) == 1
    assert "chmod 600" in warnings[0].getMessage()
    assert SECRET not in caplog.text


def test_private_credentials_file_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / ".go-bcecli" / "credentials", f"[Defaults]\nAk = a\nSk = {SECRET}\n", 0o600)
    with caplog.at_level(logging.WARNING):
        resolve_credentials("bos", env={}, home=tmp_path)
    assert not caplog.records


def test_unparsable_file_does_not_echo_its_contents(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", f"aws_secret_access_key = {SECRET}\n")
    with pytest.raises(CredentialsError) as info:
        resolve_credentials("s3", env={}, home=tmp_path)
    assert "cannot parse ~/.aws/credentials at line 1" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_line_that_is_not_name_value_is_named_by_number_not_quoted(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", f"[default]\naws_access_key_id = AKIDEXAMPLE\n{SECRET}\n")
    with pytest.raises(CredentialsError) as info:
        resolve_credentials("s3", env={}, home=tmp_path)
    assert str(info.value).startswith("cannot parse ~/.aws/credentials at line 3: not an INI file")
    assert SECRET not in str(info.value)


def test_secret_never_in_repr_or_errors(tmp_path: Path) -> None:
    found = Credentials("ak", SECRET, "tok-secret")
    assert SECRET not in repr(found) and "tok-secret" not in str(found)
    write(tmp_path / ".aws" / "credentials", f"[default]\naws_secret_access_key = {SECRET}\n")
    with pytest.raises(CredentialsError) as info:
        resolve_credentials("s3", env={}, home=tmp_path)
    assert SECRET not in str(info.value)
    assert "aws_secret_access_key but not aws_access_key_id" in str(info.value)


# --- chains and renewal ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refreshing_credentials_ask_the_chain_again_only_when_due() -> None:
    clock = FakeClock()
    answers = iter([Credentials("AK2", "SK2", "T2", source="chain")])
    asked: list[int] = []

    def fetch() -> Credentials:
        asked.append(1)
        return next(answers)

    first = Credentials("AK1", "SK1", "T1", source="chain")
    renewing = creds.RefreshingCredentials(fetch, first=first, check_every=60, clock=clock)
    assert (await renewing.fresh()).access_key == "AK1"
    clock.now += 59
    assert (await renewing.fresh()).access_key == "AK1" and not asked
    clock.now += 2
    assert (await renewing.fresh()).access_key == "AK2" and len(asked) == 1
    assert (await renewing.fresh()).access_key == "AK2" and len(asked) == 1
    assert "SK2" not in repr(renewing) and "T2" not in repr(renewing)


async def test_a_long_job_signs_with_the_renewed_credentials(bulkput_server_factory) -> None:
    """The store checks every signature; the second PUT is signed with the renewed key."""
    from bulkput.remote.client import open_store
    from bulkput.remote.store import ObjectHeaders
    from bulkput.remote.target import Target, resolve_endpoint

    server = bulkput_server_factory(
        credentials=["OLDKEY:old-secret-0123:tok-old", "NEWKEY:new-secret-4567:tok-new"],
        buckets=["renew"],
    )
    clock = FakeClock()
    renewing = creds.RefreshingCredentials(
        lambda: Credentials("NEWKEY", "new-secret-4567", "tok-new", source="chain"),
        first=Credentials("OLDKEY", "old-secret-0123", "tok-old", source="chain"),
        check_every=60, clock=clock,
    )  # fmt: skip
    target = Target.parse("s3://renew/")
    store = open_store(
        target, endpoint=resolve_endpoint(target, server.endpoint_url, "us-east-1", "path"),
        credentials=renewing,
    )  # fmt: skip
    signed_with: list[str] = []
    real_sign = store.signer.sign

    def spy(request, credentials, now):  # type: ignore[no-untyped-def]
        signed_with.append(credentials.access_key)
        return real_sign(request, credentials, now)

    store.signer.sign = spy  # type: ignore[method-assign]
    try:
        await store.put_object("a", b"first", content_md5=None, headers=ObjectHeaders())
        clock.now += 61
        await store.put_object("b", b"second", content_md5=None, headers=ObjectHeaders())
    finally:
        await store.close()
    assert signed_with == ["OLDKEY", "NEWKEY"]
    assert server.stats.puts("a") == 1 and server.stats.puts("b") == 1


def test_a_role_profile_without_botocore_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    import sys

    write(tmp_path / ".aws" / "config",
          "[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n")  # fmt: skip
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(CredentialsError, match=r"pip install 'bulkput\[aws\]'"):
        resolve_credentials("s3", profile="deploy", env={}, home=tmp_path)


def test_a_named_profile_in_no_file_is_named(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "[default]\naws_access_key_id = a\n"
          "aws_secret_access_key = b\n")  # fmt: skip
    expected = "profile nope not found in ~/.aws/credentials, ~/.aws/config"
    with pytest.raises(CredentialsError, match=re.escape(expected)):
        resolve_credentials("s3", profile="nope", env={}, home=tmp_path)
    with pytest.raises(CredentialsError, match="profile other not found"):
        resolve_credentials("s3", env={"AWS_PROFILE": "other"}, home=tmp_path)


@pytest.mark.parametrize(
    ("scheme", "files", "env", "profile", "described"),
    [
        ("s3", {}, {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": SECRET}, None,
         "environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        ("s3", {".aws/credentials": f"[dev]\naws_access_key_id=ak\naws_secret_access_key={SECRET}\n"},
         {}, "dev", "profile 'dev' in ~/.aws/credentials"),
        ("s3", {".aws/config": f"[profile dev]\naws_access_key_id=ak\naws_secret_access_key={SECRET}\n"},
         {}, "dev", "profile 'dev' in ~/.aws/config"),
        ("oss", {".ossutilconfig": f"[Credentials]\naccessKeyID=ak\naccessKeySecret={SECRET}\n"},
         {}, None, "~/.ossutilconfig"),
        ("bos", {".go-bcecli/credentials": f"[Defaults]\nAk=ak\nSk={SECRET}\n"},
         {}, None, "profile 'Defaults' in ~/.go-bcecli/credentials"),
    ],
)  # fmt: skip
def test_credentials_carry_where_they_were_found(
    tmp_path: Path, scheme: str, files: dict[str, str], env: dict[str, str],
    profile: str | None, described: str,
) -> None:  # fmt: skip
    for name, text in files.items():
        write(tmp_path / name, text)
    found = resolve_credentials(scheme, profile=profile, env=env, home=tmp_path, chains=False)
    assert isinstance(found, Credentials) and found.origin is not None
    assert found.origin.describe() == described
    assert SECRET not in found.origin.describe() and SECRET not in repr(found)


def test_flags_are_named_as_flags(tmp_path: Path) -> None:
    found = resolve_credentials("s3", access_key="ak", secret_key=SECRET, env={}, home=tmp_path)
    assert isinstance(found, Credentials) and found.origin is not None
    assert found.origin.describe() == "--access-key/--secret-key on the command line"
