"""Proxies and CA bundles, as aws-cli users set them: HTTP_PROXY / HTTPS_PROXY / NO_PROXY in
either case, ``--proxy URL``; ``AWS_CA_BUNDLE`` and ``--ca-bundle FILE``. A counting proxy
(tests/fixtures/proxy.py) tells what went through it."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from bulkput.server.testing import ServerHandle
from tests.fixtures.misbehaving import ScriptedServer, put_ok
from tests.fixtures.proxy import CountingProxy

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


def clean_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_")) and k.lower() not in PROXY_VARIABLES
    }
    return {**base, "HOME": str(home), **extra}


def tree(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (source / name).write_bytes(name.encode() * 10)
    return source


def put(source: Path, dest: str, endpoint: str, tmp_path: Path, env: dict[str, str], *options: str):
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "put", str(source), dest, "--endpoint", endpoint,
         "--progress", "none", "--state-dir", str(tmp_path / "state"), *options],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("variables", "options"),
    [({"HTTP_PROXY": "{proxy}"}, ()), ({"http_proxy": "{proxy}"}, ()), ({}, ("--proxy", "{proxy}"))],
    ids=["HTTP_PROXY", "http_proxy", "--proxy"],
)
def test_plain_http_requests_go_through_the_proxy(
    bulkput_server: ServerHandle,
    bulkput_bucket: str,
    tmp_path: Path,
    variables: dict[str, str],
    options: tuple[str, ...],
) -> None:
    source = tree(tmp_path)
    before = bulkput_server.stats.count("PutObject")
    with CountingProxy() as proxy:
        env = clean_env(tmp_path, bulkput_server.env()) | {
            k: v.format(proxy=proxy.url) for k, v in variables.items()
        }
        done = put(source, f"s3://{bulkput_bucket}/p/", bulkput_server.endpoint_url, tmp_path, env,
                   *(o.format(proxy=proxy.url) for o in options))  # fmt: skip
    assert done.returncode == 0, done.stderr
    puts = sorted(r for r in proxy.requests if r.startswith("PUT "))
    assert puts == [f"PUT {bulkput_server.endpoint_url}/{bulkput_bucket}/p/{n}" for n in ("a.txt", "b.txt", "c.txt")]
    assert bulkput_server.stats.count("PutObject") - before == 3


@pytest.mark.parametrize("no_proxy", ["NO_PROXY", "no_proxy"])
def test_no_proxy_names_hosts_that_are_reached_directly(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, no_proxy: str
) -> None:
    source = tree(tmp_path)
    with CountingProxy() as proxy:
        env = clean_env(tmp_path, bulkput_server.env()) | {"HTTP_PROXY": proxy.url, no_proxy: "localhost,127.0.0.1"}
        done = put(source, f"s3://{bulkput_bucket}/p/", bulkput_server.endpoint_url, tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert proxy.requests == [] and proxy.tunnels == []


@pytest.fixture
def https_store(tls_server_context: ssl.SSLContext) -> ScriptedServer:
    async def behave(n, request, writer):  # type: ignore[no-untyped-def]
        return await put_ok(request, writer)

    with ScriptedServer(behave, tls=tls_server_context) as server:
        yield server  # type: ignore[misc]


@pytest.mark.parametrize("how", ["AWS_CA_BUNDLE", "--ca-bundle"])
def test_https_goes_through_the_proxy_in_a_tunnel_and_trusts_the_given_ca_bundle(
    https_store: ScriptedServer, tmp_path: Path, how: str
) -> None:
    source = tree(tmp_path)
    ca = str(tmp_path / "cert.pem")  # the self-signed certificate of the fixture: its own CA
    keys = {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}
    with CountingProxy() as proxy:
        env = clean_env(tmp_path, keys) | {"https_proxy": proxy.url}
        options: tuple[str, ...] = ("--ca-bundle", ca)
        if how == "AWS_CA_BUNDLE":
            env["AWS_CA_BUNDLE"], options = ca, ()
        done = put(source, "s3://bkt/p/", https_store.url, tmp_path, env, "--addressing", "path", *options)
    assert done.returncode == 0, done.stderr
    assert proxy.tunnels and set(proxy.tunnels) == {f"127.0.0.1:{https_store.port}"}
    assert sorted(r.target for r in https_store.requests) == ["/bkt/p/a.txt", "/bkt/p/b.txt", "/bkt/p/c.txt"]


def test_without_the_ca_bundle_the_self_signed_store_is_refused(
    https_store: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"})
    done = put(tree(tmp_path), "s3://bkt/p/", https_store.url, tmp_path, env, "--addressing", "path")
    assert done.returncode == 3 and "certificate" in done.stderr, done.stderr
    assert https_store.requests == []


def test_bad_proxy_and_ca_bundle_values_are_usage_errors_before_any_work(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, bulkput_server.env())
    dest, url = f"s3://{bulkput_bucket}/p/", bulkput_server.endpoint_url
    bad_proxy = put(tree(tmp_path), dest, url, tmp_path, env, "--proxy", "socks5://u:hunter2@h:1")
    assert bad_proxy.returncode == 2 and "--proxy" in bad_proxy.stderr
    assert "hunter2" not in bad_proxy.stderr
    bad_bundle = put(tmp_path / "src", dest, url, tmp_path, env, "--ca-bundle", str(tmp_path / "nope.pem"))
    assert bad_bundle.returncode == 2 and "--ca-bundle" in bad_bundle.stderr


def test_https_against_a_plain_http_port_names_the_endpoint_and_suggests_http(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, bulkput_server.env())
    https = bulkput_server.endpoint_url.replace("http://", "https://")
    done = put(tree(tmp_path), f"s3://{bulkput_bucket}/p/", https, tmp_path, env)
    assert done.returncode == 3, done.stderr
    [aborted] = [line for line in done.stderr.splitlines() if "aborted:" in line]
    assert https in aborted and f"use {bulkput_server.endpoint_url} as the endpoint" in aborted
    assert "SSLContext object" not in done.stderr
