"""Remote image fetching for `--allow-remote-images`, built so one URL cannot stall or probe the server: an async
client (the event loop keeps serving), one deadline for the whole download (not per socket read), a byte cap
counted while reading, redirects followed by hand with every hop re-checked, and addresses that are not public
(loopback, private, link-local, multicast, reserved) refused unless `allow_private` is set. Every failure gives
the same client-facing message, so the error body does not tell open ports, closed ports and refusals apart.

    data = await fetch_image(url, max_bytes=20 << 20, deadline_s=10, allow_private=False)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from urllib.parse import urljoin, urlsplit

import httpx

from molmo.serve.protocol import APIError

log = logging.getLogger("molmo.serve")
MAX_REDIRECTS = 3
FAILED = "could not fetch the image URL (unreachable, not allowed, too slow, or not an image); send the image " \
         "as a data URL instead"


class _Refused(Exception):
    """Why a fetch failed, for the server log only."""


async def _check_host(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Refused(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise _Refused("credentials in the URL")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise _Refused(f"{parts.hostname} resolves to the non-public address {address}")


async def _download(url: str, max_bytes: int, allow_private: bool, stop_at: float) -> bytes:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await _check_host(url, allow_private)
            async with client.stream("GET", url, headers={"Accept": "image/*"}) as r:
                if r.is_redirect:
                    url = urljoin(url, r.headers.get("location", ""))
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
        raise _Refused(f"more than {MAX_REDIRECTS} redirects")


async def fetch_image(url: str, *, max_bytes: int, deadline_s: float, allow_private: bool = False) -> bytes:
    stop_at = time.monotonic() + deadline_s
    try:
        return await asyncio.wait_for(_download(url, max_bytes, allow_private, stop_at), deadline_s)
    except (_Refused, httpx.HTTPError, OSError, asyncio.TimeoutError, ValueError) as e:
        log.info("remote image %s refused: %s", url[:200], e or type(e).__name__)
        raise APIError(400, FAILED, code="image_fetch_failed") from None
