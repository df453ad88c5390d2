"""Shared fixtures. Servers run on 127.0.0.1 only."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# The credential chains (botocore, alibabacloud-credentials) ask instance metadata services
# when nothing else is configured; tests never leave loopback, so they are switched off here
# (the chain libraries read these at import time, hence before any test module is imported).
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

from tests.fixtures.bulkput_server import bulkput_bucket, bulkput_server, bulkput_server_factory  # noqa: F401
from tests.fixtures.fake_cloud import fake_cloud  # noqa: F401
from tests.fixtures.moto import moto_server  # noqa: F401
from tests.fixtures.rclone import rclone_server  # noqa: F401
from tests.fixtures.seaweedfs import seaweedfs_server  # noqa: F401
from tests.fixtures.tls import tls_server_context  # noqa: F401

# Property tests judge what they compute, never how fast: hypothesis's default 200 ms deadline
# per example fails on a shared, loaded machine (seen on CI-like runs), so it is off.
settings.register_profile("bulkput", deadline=None)
settings.load_profile("bulkput")


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """The scrubber's secrets are process-wide: one test's keys must not mask another's text."""
    yield
    from bulkput.redact import REDACTOR

    REDACTOR.forget()
