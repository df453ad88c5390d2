"""Importing aiohttp for the command line without the CA bundle it would load for nothing.

aiohttp builds two default SSL contexts when it is imported, each loading the system CA bundle
(about 60 ms of CPU per process, twice the bundle parsed, even for a job against an
``http://`` endpoint). bulkput never uses them: every ``https`` request of
:class:`~bulkput.remote.transport.Transport` carries the transport's own context, built on the
first such request. This module does not import aiohttp itself, so the command line can call
:func:`import_aiohttp_without_default_cas` first, explicitly, for the verbs whose only HTTP
client is the transport. A program that imports bulkput as a library never calls it and keeps
aiohttp's defaults as they are.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from typing import Any

_log = logging.getLogger(__name__)


def import_aiohttp_without_default_cas() -> bool:
    """Import aiohttp with its default contexts left without CAs; True when that was done.

    A context without CAs fails closed (every certificate is refused), so nothing is ever
    accepted unverified through one. Does nothing (False) when aiohttp is already imported,
    off the main thread (the class attribute is patched for the length of the import), or when
    someone else has patched ``ssl.SSLContext.set_default_verify_paths``.
    """
    if "aiohttp" in sys.modules or threading.current_thread() is not threading.main_thread():
        return False
    context_class: Any = ssl.SSLContext
    if "set_default_verify_paths" in vars(context_class):  # someone else patched it: leave it
        return False
    context_class.set_default_verify_paths = lambda self: None
    try:
        import aiohttp  # noqa: F401
    finally:
        del context_class.set_default_verify_paths
    _log.debug("aiohttp imported without loading CAs into its default SSL contexts")
    return True
