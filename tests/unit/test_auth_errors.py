"""An auth error names the credentials used (where from, the key id shortened), never a secret."""

from __future__ import annotations

import pickle

from bulkput.errors import AuthError, CredentialsUsed, error_from_response


def test_a_rejected_signature_names_the_source_and_a_short_key_id() -> None:
    error = error_from_response(403, "SignatureDoesNotMatch", "the signature differs", key="a.txt")
    assert isinstance(error, AuthError)
    error.credentials = CredentialsUsed.of("profile 'dev' in ~/.aws/credentials", "AKIAIOSFODNN7EXAMPLE")
    assert error.one_line() == (
        "a.txt: SignatureDoesNotMatch 403: credentials from profile 'dev' in ~/.aws/credentials "
        "(key id AKIA...PLE) were rejected: the signature differs"
    )


def test_access_denied_says_refused_access_not_rejected() -> None:
    error = error_from_response(403, "AccessDenied", "no", bucket="bkt")
    assert isinstance(error, AuthError)
    error.credentials = CredentialsUsed.of("environment variables AWS_...", "AKIAIOSFODNN7EXAMPLE")
    assert "were refused access: no" in error.one_line()


def test_a_short_key_id_is_not_shown_whole() -> None:
    assert CredentialsUsed.of("x", "bulkput").key_id == "bu..."


def test_without_a_known_source_the_line_is_as_before() -> None:
    error = error_from_response(403, "InvalidAccessKeyId", "unknown key", key="k")
    assert error.one_line() == "k: InvalidAccessKeyId 403: unknown key"


def test_the_source_survives_pickling() -> None:  # Dask ships errors between processes
    error = error_from_response(403, "InvalidAccessKeyId", "unknown key", key="k")
    assert isinstance(error, AuthError)
    error.credentials = CredentialsUsed.of("profile 'p' in f", "AKIAIOSFODNN7EXAMPLE")
    assert pickle.loads(pickle.dumps(error)).one_line() == error.one_line()
