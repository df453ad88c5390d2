"""The local store's state, apart from its aiohttp application (:mod:`bulkput.server.app`):
what every handler and middleware reads, typed, without importing the application that
imports them."""

from __future__ import annotations

from bulkput.server.auth import Authenticator, SignatureAuthenticator
from bulkput.server.config import ServerConfig
from bulkput.server.faults import FaultInjector
from bulkput.server.stats import Stats
from bulkput.server.storage import DirStorage, MemoryStorage, Storage


class ServerState:
    """The store's state: its settings, storage, counters, fault injector and signature check.

    ``faults`` may be replaced while the store runs (a test ends a throttled phase that way):
    every request reads it anew.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        storage: Storage | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.config = config
        if storage is None:
            storage = DirStorage(config.directory) if config.directory else MemoryStorage()
        self.storage: Storage = storage
        self.stats = Stats(track_keys=config.track_keys)
        self.faults = FaultInjector(config.faults)
        self.authenticate: Authenticator = authenticator or SignatureAuthenticator(
            config.credentials, config.region
        )
        for bucket in config.buckets:  # names checked by ServerConfig
            self.storage.create_bucket(bucket)
