"""The server's limits and switches (`molmo serve` options map onto them one to one). Kept apart from the app
(`molmo.serve.server`) so that the command line can show every default without loading torch or FastAPI.

    settings = ServerSettings(api_key="secret", max_batch_size=8)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    model_name: str | None = None  # the id clients send as "model"; default: the checkpoint folder or Hub id
    served_model_names: tuple[str, ...] = ()  # more accepted ids (aliases)
    api_key: str | None = None
    allowed_hosts: tuple[str, ...] = ()  # Host names served without an API key, besides loopback; "*": any
    allow_remote_images: bool = False
    allow_private_image_hosts: bool = False  # remote images from loopback / private / link-local addresses
    remote_timeout_s: float = 10.0  # the whole download, redirects included
    max_body_bytes: int = 20 * 1024 * 1024
    max_json_depth: int = 32
    max_messages: int = 256
    max_prompt_chars: int | None = None  # None: 8 characters per position of the model's context
    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_pixels_in_flight: int = 50_000_000  # decoded pixels held by all requests being pre-processed at once
    max_tokens: int = 1024  # the most a request may ask for
    default_max_tokens: int = 200
    max_crops: int | None = None  # None: the pre-processor's default
    scheduler: str = "continuous"  # or "static": batches that wait for their longest answer
    max_batch_size: int = 16
    batch_window_s: float = 0.01  # static batching only
    max_queue: int = 64
    prep_workers: int = 2  # threads decoding and pre-processing images, tokenizing
    retry_after_s: int = 1  # the shortest Retry-After; under load: the time to serve what is in flight
