"""bulkput.job.checks: a job's settings against the provider's tables, before any work."""

from __future__ import annotations

import pytest

from bulkput.errors import UsageError
from bulkput.job.checks import check_spec, signature_problem
from bulkput.job.spec import JobSpec, StoreSettings
from bulkput.remote.dialects import S3CompatibleDialect, dialect_for
from bulkput.remote.store import ObjectHeaders
from bulkput.suggest import did_you_mean

LOCAL = "http://127.0.0.1:9"  # never dialled: the checks send nothing


# one test per row of signature_problem's truth table
@pytest.mark.parametrize("version", ["v4", "v1"])
def test_oss_takes_both_signatures(version: str) -> None:
    assert signature_problem(dialect_for("oss"), version) is None


def test_s3_takes_v4() -> None:
    assert signature_problem(dialect_for("s3"), "v4") is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_s3_refuses_any_other_naming_sigv4(version: str) -> None:
    problem = signature_problem(dialect_for("s3"), version)
    assert problem is not None and "SigV4" in problem and version in problem


def test_bos_takes_the_default() -> None:
    assert signature_problem(dialect_for("bos"), "v4") is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_bos_refuses_any_other_naming_its_signature(version: str) -> None:
    problem = signature_problem(dialect_for("bos"), version)
    assert problem is not None and "bce-auth-v1" in problem


def test_oss_refuses_an_unknown_version_listing_its_two() -> None:
    problem = signature_problem(dialect_for("oss"), "v2")
    assert problem is not None and "v4 or v1" in problem


def spec(dest: str, **headers: str) -> JobSpec:
    return JobSpec(dest, store=StoreSettings(endpoint=LOCAL), defaults=ObjectHeaders(**headers))  # type: ignore[arg-type]


def test_values_are_checked_in_any_case_against_each_providers_own_list() -> None:
    check_spec(spec("oss://bkt/p", acl="DEFAULT", storage_class="ia"))
    check_spec(spec("bos://bkt/p", storage_class="maz_cold", server_side_encryption="sm4"))
    with pytest.raises(UsageError, match="unknown ACL 'default' for s3://"):
        check_spec(spec("s3://bkt/p", acl="default"))  # OSS's, not S3's
    with pytest.raises(UsageError, match="did you mean Archive"):
        check_spec(spec("oss://bkt/p", storage_class="Archiv"))


def test_a_store_behind_an_endpoint_keeps_its_own_storage_classes() -> None:
    check_spec(spec("s3://bkt/p", storage_class="WARM"))  # passed on (a warning when sent)
    assert S3CompatibleDialect().unknown_choice("storage class", "WARM") is None
    assert S3CompatibleDialect().unknown_choice("ACL", "publik-read") is not None


def test_nothing_close_lists_the_known_values_without_a_guess() -> None:
    assert did_you_mean("zzzz", ["private", "public-read"]) == ""
    with pytest.raises(UsageError) as raised:
        check_spec(spec("bos://bkt/p", acl="zzzz"))
    assert "did you mean" not in str(raised.value) and "private, public-read" in str(raised.value)


def test_the_message_reads_the_same_with_or_without_a_guess() -> None:
    from bulkput.suggest import unknown_value

    assert unknown_value("ACL", "publik", ["private", "public"], "s3://") == (
        "unknown ACL 'publik' for s3://; did you mean public? (known: private, public)"
    )
    assert unknown_value("dialect", "gcs", ["s3", "bos", "oss"]) == (
        "unknown dialect 'gcs' (known: s3, bos, oss)"
    )
