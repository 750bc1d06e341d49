"""Remote image fetches connect to the very address that was checked, so DNS rebinding between the check and the
connection cannot reach loopback. No network: names resolve through a stub DNS, every connection goes through a
guard that lets only 127.0.0.1 through (the "public" address is served by a second local server), and https is
stopped at the TLS start after recording the name used for SNI and the certificate check.

    PYTHONPATH=$PWD/src python -m pytest -q tests/serve/test_remote_pinning.py
"""

from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import pytest
from httpcore._backends.anyio import AnyIOBackend, AnyIOStream

from molmo.serve import remote
from molmo.serve.protocol import APIError

from .conftest import png_bytes, send_png

PUBLIC = "93.184.216.34"  # looks public; the guard below routes it to a local server, nothing leaves the machine


class _Recorder(BaseHTTPRequestHandler):
    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - the http.server API
        self.server.seen.append((self.path, self.headers.get("Host")))
        if self.path == "/hop":  # a redirect to the name that rebinds
            self.send_response(302)
            self.send_header("Location", f"http://rebind.test:{self.server.victim_port}/ok.png")
            self.end_headers()
            return
        send_png(self)


def _serve(victim_port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads, server.seen, server.victim_port = True, [], victim_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def hosts():
    """(victim, public): the loopback server rebinding would reach, and the server standing in for PUBLIC."""
    victim = _serve()
    public = _serve(victim.server_address[1])
    yield victim, public
    victim.shutdown()
    public.shutdown()


@pytest.fixture
def net(monkeypatch, hosts):
    """A stub DNS (module resolver and socket.getaddrinfo alike) and a connection guard; returns their logs."""
    _, public = hosts
    log = {"lookups": [], "connects": [], "tls_names": []}
    answers = {"public.test": lambda n: [PUBLIC], "images.test": lambda n: ["10.0.0.7", "127.0.0.1"],
               "secure.test": lambda n: ["127.0.0.1"],
               "rebind.test": lambda n: [PUBLIC] if n == 0 else ["127.0.0.1"]}  # public at check time only

    def lookup(name: str) -> list[str]:
        n = sum(1 for seen in log["lookups"] if seen == name)
        log["lookups"].append(name)
        return answers[name](n)

    async def stub_resolve(host: str, port: int) -> list[str]:
        return lookup(host)

    real_getaddrinfo = socket.getaddrinfo

    def stub_getaddrinfo(host, port, *args, **kwargs):  # any resolution outside remote.resolve
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in lookup(host)]
        return real_getaddrinfo(host, port, *args, **kwargs)

    real_connect = AnyIOBackend.connect_tcp

    async def guarded_connect(self, host, port, timeout=None, local_address=None, socket_options=None):
        log["connects"].append(host)
        if host in answers:  # a client that resolves again at connect time gets the later answer
            host = lookup(host)[0]
        if host == PUBLIC:
            host, port = "127.0.0.1", public.server_address[1]
        elif host != "127.0.0.1":
            raise httpcore.ConnectError(f"test guard: no traffic to {host}")
        return await real_connect(self, host, port, timeout, local_address, socket_options)

    async def recorded_tls(self, ssl_context, server_hostname=None, timeout=None):
        log["tls_names"].append(server_hostname)
        raise httpcore.ConnectError("test guard: TLS stops here")

    monkeypatch.setattr(remote, "resolve", stub_resolve)
    monkeypatch.setattr(socket, "getaddrinfo", stub_getaddrinfo)
    monkeypatch.setattr(AnyIOBackend, "connect_tcp", guarded_connect)
    monkeypatch.setattr(AnyIOStream, "start_tls", recorded_tls)
    return log


def fetch(url: str, allow_private: bool = False) -> bytes:
    return asyncio.run(remote.fetch_image(url, max_bytes=1_000_000, deadline_s=5, allow_private=allow_private))


def test_rebinding_after_the_check_does_not_reach_loopback(hosts, net):
    victim, public = hosts
    port = victim.server_address[1]
    assert fetch(f"http://rebind.test:{port}/ok.png") == png_bytes()  # served by the checked (public) address
    assert victim.seen == []  # the later answer 127.0.0.1 was never used
    assert public.seen == [("/ok.png", f"rebind.test:{port}")]  # the original Host header
    assert net["lookups"] == ["rebind.test"] and net["connects"] == [PUBLIC]


def test_every_redirect_hop_connects_to_its_checked_address(hosts, net):
    victim, public = hosts
    port = victim.server_address[1]
    assert fetch(f"http://public.test:{port}/hop") == png_bytes()
    assert victim.seen == []
    assert public.seen == [("/hop", f"public.test:{port}"), ("/ok.png", f"rebind.test:{port}")]
    assert net["lookups"] == ["public.test", "rebind.test"] and net["connects"] == [PUBLIC, PUBLIC]


def test_every_resolved_address_is_checked(hosts, net):
    victim, _ = hosts
    with pytest.raises(APIError) as refused:
        fetch(f"http://images.test:{victim.server_address[1]}/ok.png")  # 10.0.0.7 and 127.0.0.1: both private
    assert refused.value.status == 400 and net["connects"] == [] and victim.seen == []


def test_allowed_private_fetch_works_and_tries_the_addresses_in_order(hosts, net):
    victim, _ = hosts
    port = victim.server_address[1]
    assert fetch(f"http://images.test:{port}/ok.png", allow_private=True) == png_bytes()
    assert net["connects"] == ["10.0.0.7", "127.0.0.1"]  # the guard refused the first, the second answered
    assert victim.seen == [("/ok.png", f"images.test:{port}")]


def test_https_keeps_the_original_name_for_sni_and_certificate(hosts, net):
    victim, _ = hosts
    with pytest.raises(APIError):
        fetch(f"https://secure.test:{victim.server_address[1]}/ok.png", allow_private=True)
    assert net["connects"] == ["127.0.0.1"] and net["tls_names"] == ["secure.test"]
