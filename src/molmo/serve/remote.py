"""Remote image fetching for `--allow-remote-images`, built so one URL cannot stall or probe the server: an async
client (the event loop keeps serving), one deadline for the whole download (not per socket read), a byte cap
counted while reading, redirects followed by hand with every hop re-checked, and addresses that are not public
(loopback, private, link-local, multicast, reserved) refused unless `allow_private` is set. Every failure gives
the same client-facing message, so the error body does not tell open ports, closed ports and refusals apart.

Each hop's host name is resolved once (`resolve`), every address it gives is checked, and the request goes to a
checked address itself (the URL's host replaced by the IP, the original `Host` header, and for https the original
name for SNI and certificate checking through httpcore's `sni_hostname` extension), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot reach an address that was never checked.

    data = await fetch_image(url, max_bytes=20 << 20, deadline_s=10, allow_private=False)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time

import httpx

from molmo.serve.protocol import APIError

log = logging.getLogger("molmo.serve")
MAX_REDIRECTS = 3
FAILED = "could not fetch the image URL (unreachable, not allowed, too slow, or not an image); send the image " \
         "as a data URL instead"


class _Refused(Exception):
    """Why a fetch failed, for the server log only."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order: the only name lookup a fetch makes."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


async def _checked_addresses(target: httpx.URL, allow_private: bool) -> list[str]:
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise _Refused(f"not an http(s) URL: {str(target)!r}")
    if target.userinfo:
        raise _Refused("credentials in the URL")
    name = target.raw_host.decode("ascii")
    addresses = await resolve(name, target.port or (443 if target.scheme == "https" else 80))
    if not addresses:
        raise _Refused(f"{name} resolves to nothing")
    for text in addresses:
        address = ipaddress.ip_address(text)
        if not allow_private and (not address.is_global or address.is_multicast):
            raise _Refused(f"{name} resolves to the non-public address {address}")
    return addresses


async def _open_pinned(target: httpx.URL, allow_private: bool) -> tuple[httpx.AsyncClient, httpx.Response]:
    """GET `target` from one of its checked addresses (tried in order); the caller closes both."""
    addresses = await _checked_addresses(target, allow_private)
    headers = {"Host": target.netloc.decode("ascii"), "Accept": "image/*"}
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    error = None
    for address in addresses:
        # a client per connection: a pooled TLS connection must not be reused for another name on the same IP
        client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        request = client.build_request("GET", target.copy_with(host=address), headers=headers, extensions=extensions)
        try:
            return client, await client.send(request, stream=True)
        except BaseException as e:
            await client.aclose()
            if not isinstance(e, httpx.ConnectError):
                raise
            error = e
    raise _Refused(f"no address of {target.host} accepted a connection ({error})")


async def _download(url: str, max_bytes: int, allow_private: bool, stop_at: float) -> bytes:
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        client, r = await _open_pinned(target, allow_private)
        try:
            if r.is_redirect:
                target = target.join(r.headers.get("location", ""))
                continue
            if r.status_code != 200:
                raise _Refused(f"HTTP {r.status_code}")
            kind = (r.headers.get("content-type") or "").split(";")[0].strip().lower()
            if kind and not kind.startswith("image/") and kind != "application/octet-stream":
                raise _Refused(f"served as {kind!r}")
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _Refused(f"declares {declared} bytes")
            chunks, total = [], 0
            async for chunk in r.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise _Refused(f"over {max_bytes} bytes")
                chunks.append(chunk)
                if time.monotonic() > stop_at:
                    raise _Refused("deadline")
            return b"".join(chunks)
        finally:
            await r.aclose()
            await client.aclose()
    raise _Refused(f"more than {MAX_REDIRECTS} redirects")


async def fetch_image(url: str, *, max_bytes: int, deadline_s: float, allow_private: bool = False) -> bytes:
    stop_at = time.monotonic() + deadline_s
    try:
        return await asyncio.wait_for(_download(url, max_bytes, allow_private, stop_at), deadline_s)
    except (_Refused, httpx.HTTPError, httpx.InvalidURL, OSError, asyncio.TimeoutError, ValueError) as e:
        log.info("remote image %s refused: %s", url[:200], e or type(e).__name__)
        raise APIError(400, FAILED, code="image_fetch_failed") from None
