"""``bulkput serve`` counts the client connections that sent requests (address and port)."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Callable

from bulkput.server.testing import ServerHandle


def test_requests_on_one_connection_count_once_and_a_new_connection_again(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(buckets=["b-1"])
    kept = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for _ in range(3):  # unsigned: refused, but answered and counted
        kept.request("GET", "/b-1?list-type=2")
        kept.getresponse().read()
    assert (server.stats.total, server.stats.connections) == (3, 1)
    other = http.client.HTTPConnection(server.host, server.port, timeout=10)
    other.request("GET", "/b-1?list-type=2")
    other.getresponse().read()
    kept.close()
    other.close()
    assert (server.stats.total, server.stats.connections) == (4, 2)
    with urllib.request.urlopen(f"{server.endpoint_url}/_bulkput/stats", timeout=10) as reply:
        assert json.load(reply)["connections"] == 2  # (the counters' own page is not counted)
    server.reset_stats()
    assert server.stats.connections == 0
