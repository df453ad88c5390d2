"""Credentials and where they come from.

``Credentials`` is a value object whose ``repr`` masks the secret and the token, so a credential
can be logged, put in an exception or shown in a debugger without leaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def mask(secret: str | None) -> str:
    """What a secret looks like wherever it could be printed."""
    return "None" if secret is None else "******"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    source: str = "explicit"  # where they were found, for error messages ("env AWS_*", "~/.aws/credentials")

    def __repr__(self) -> str:
        return (
            f"Credentials(access_key={self.access_key!r}, secret_key={mask(self.secret_key)}, "
            f"session_token={mask(self.session_token)}, source={self.source!r})"
        )

    __str__ = __repr__
