"""Shared fixtures. Servers run on 127.0.0.1 only."""

from __future__ import annotations

from tests.fixtures.bulkput_server import bulkput_bucket, bulkput_server, bulkput_server_factory  # noqa: F401
from tests.fixtures.rclone import rclone_server  # noqa: F401
from tests.fixtures.tls import tls_server_context  # noqa: F401
