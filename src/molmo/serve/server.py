"""`molmo serve`: an OpenAI-compatible HTTP server (FastAPI + uvicorn) with continuous batching and a web page.

    molmo serve --model PATH --host 127.0.0.1 --port 8000 [--api-key KEY] [--allow-remote-images]
    molmo serve --model allenai/Molmo-7B-D-0924 --served-model-name molmo --served-model-name gpt-4o

Endpoints: `POST /v1/chat/completions` (messages with `image_url` content parts as data URLs; http(s) URLs
only with --allow-remote-images; `stream`, `temperature`, `top_p`, `max_tokens`, `stop`, `seed`; each response
carries a `molmo` field with the points in pixels and the count), `GET /v1/models`, `GET /health` and the page
at `/`. `/health` and `/` never need the API key and never wait for the model: `/health` reports the queue
(`queued`, `running`, `in_flight`) and answers while generation runs. Every refusal is a 4xx JSON body
`{"error": {"message", "type", "code"}}`; an overloaded server answers 429 with `Retry-After` (the seconds it
needs, at its recent rate, to serve the requests in flight; so refused clients do not retry in a storm).

Hostile input is refused cheaply, before expensive work, in this order: Host header (without an API key only
loopback names and --allowed-host are served, against DNS rebinding), API key, declared body size, capacity
(429 before the body is read), body size counted while reading (chunked bodies too), JSON nesting depth, field
types, prompt characters (before tokenizing), image bytes and declared pixel size (before decoding). Decoding,
tokenizing and pre-processing run in a bounded worker pool, never on the event loop, and at most
`max_pixels_in_flight` decoded pixels exist at once. A client that goes away cancels its generation at the next
decode step. In Python:

    app = create_app(Molmo.from_pretrained(path), ServerSettings(api_key="secret"))
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
import uuid
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from molmo.api import Answer, GenerationRequest, Molmo
from molmo.image.loading import ImageError
from molmo.text.context import PromptTooLongError
from molmo.serve.batcher import Batcher, BatcherSettings, QueueFullError
from molmo.serve.protocol import APIError, ImageRef, decode_data, error_body, parse_json, parse_messages, parse_options
from molmo.serve.remote import fetch_image
from molmo.serve.scheduler import ContinuousBatcher
from molmo.serve.settings import ServerSettings  # noqa: F401 - its home is light, for `molmo serve --help`

STATIC_DIR = Path(__file__).parent / "static"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def molmo_field(answer: Answer) -> dict[str, Any]:
    return {"points": [{"x": round(p.x, 2), "y": round(p.y, 2), "label": p.label} for p in answer.points],
            "count": answer.count, "image_size": list(answer.image_size) if answer.image_size else None}


def usage_field(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


class PixelBudget:
    """Decoded pixels in flight across requests: an image waits until its pixels fit."""

    def __init__(self, total: int):
        self.total, self.used, self.peak = total, 0, 0
        self._cond = asyncio.Condition()

    async def acquire(self, pixels: int, timeout: float) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self.used + pixels <= self.total), timeout)
            self.used += pixels
            self.peak = max(self.peak, self.used)

    async def release(self, pixels: int) -> None:
        async with self._cond:
            self.used -= pixels
            self._cond.notify_all()


def declared_pixels(data: bytes, settings: ServerSettings) -> int:
    """Width x height from the image header alone, checked against the per-image cap before decoding."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise APIError(400, "invalid image: image data is empty (0 bytes)", code="invalid_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel cap below decides
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise APIError(400, f"invalid image: over the limit of {settings.max_image_pixels} pixels",
                       code="image_too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise APIError(400, "invalid image: not a readable image file (unknown or corrupt format)",
                       code="invalid_image") from None
    if width * height > settings.max_image_pixels:
        raise APIError(400, f"invalid image: {width}x{height} = {width * height} pixels is over the limit of "
                            f"{settings.max_image_pixels}", code="image_too_large")
    return width * height


# ---------------------------------------------------------------- the app
def create_app(model: Molmo, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    names = tuple(dict.fromkeys((settings.model_name or model.name,) + tuple(settings.served_model_names)))
    if settings.max_prompt_chars is None:
        ctx = model.model.config.llm.max_position_embeddings
        settings = replace(settings, max_prompt_chars=8 * ctx)
    if settings.max_image_pixels > settings.max_pixels_in_flight:
        raise ValueError("max_image_pixels must not exceed max_pixels_in_flight")
    if settings.scheduler not in ("continuous", "static"):
        raise ValueError(f"scheduler must be 'continuous' or 'static', got {settings.scheduler!r}")
    model.max_pixels = settings.max_image_pixels
    batch_settings = BatcherSettings(settings.max_batch_size, settings.batch_window_s, settings.max_queue)
    capacity = settings.max_queue + settings.max_batch_size  # requests admitted at once, in any stage
    hosts = {h.lower() for h in LOOPBACK_NAMES + tuple(settings.allowed_hosts)}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        kind = ContinuousBatcher if settings.scheduler == "continuous" else Batcher
        app.state.batcher = kind(model, batch_settings).start()
        app.state.pool = ThreadPoolExecutor(settings.prep_workers, thread_name_prefix="molmo-prep")
        app.state.pixels = PixelBudget(settings.max_pixels_in_flight)
        try:
            yield
        finally:
            app.state.batcher.close()
            app.state.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="molmo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.model_name = names[0]
    app.state.in_flight = 0
    finished: deque[float] = deque(maxlen=256)  # completion times, for the recent rate

    def retry_after() -> dict[str, str]:
        now = time.monotonic()
        recent = [t for t in finished if now - t < 60]
        rate = len(recent) / max(now - recent[0], 1.0) if len(recent) > 1 else 0.0
        wait = app.state.in_flight / rate if rate else settings.retry_after_s
        return {"Retry-After": str(int(min(60, max(settings.retry_after_s, math.ceil(wait)))))}

    def fail(e: APIError) -> JSONResponse:
        return JSONResponse(error_body(e.message, e.type, e.code), status_code=e.status, headers=e.headers)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError):
        return fail(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        return JSONResponse(error_body(str(e.detail), "invalid_request_error", "not_found" if e.status_code == 404
                                       else f"http_{e.status_code}"), status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        return JSONResponse(error_body(f"invalid request: {e.errors()}", "invalid_request_error", "invalid_request"),
                            status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception):  # still JSON, so clients can read what happened
        return JSONResponse(error_body(f"internal error: {type(e).__name__}", "server_error", "internal_error"),
                            status_code=500)

    def refusal(headers: Headers, path: str) -> APIError | None:
        """The checks on headers alone, before any route runs."""
        if not settings.api_key and "*" not in hosts:
            host = headers.get("host", "")
            name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 \
                else host
            if name.lower() not in hosts:
                return APIError(403, f"Host {host[:100]!r} is not served: without an API key only loopback names "
                                     f"and --allowed-host are (start with --api-key or --allowed-host NAME)",
                                "permission_error", "host_not_allowed")
        if settings.api_key and path.startswith("/v1/"):
            if headers.get("authorization", "") != f"Bearer {settings.api_key}":
                return APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                "authentication_error", "invalid_api_key")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return APIError(413, f"request body of {length[:20]} bytes is over the limit of "
                                 f"{settings.max_body_bytes} bytes", code="body_too_large")
        return None

    class Guard:  # plain ASGI (not BaseHTTPMiddleware), so routes see the client's disconnect
        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                error = refusal(Headers(scope=scope), scope["path"])
                if error is not None:
                    return await fail(error)(scope, receive, send)
            await self.inner(scope, receive, send)

    app.add_middleware(Guard)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        b = app.state.batcher
        return {"status": "ok", "model": names[0], "queued": b.queued, "running": b.running,
                "in_flight": app.state.in_flight, "capacity": capacity, "scheduler": settings.scheduler,
                "batches": b.stats.batches, "requests": b.stats.rows, "largest_batch": b.stats.largest_batch,
                "cancelled": b.stats.cancelled, "auth_required": bool(settings.api_key)}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "molmo",
                                            "molmo": model.info.to_dict(show_path=False)} for n in names]}

    async def off_loop(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(app.state.pool, fn, *args)

    async def read_body(request: Request) -> bytes:
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > settings.max_body_bytes:  # counted while reading: chunked bodies stop here too
                raise APIError(413, f"request body is over the limit of {settings.max_body_bytes} bytes",
                               code="body_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def parse(raw: bytes) -> tuple[dict, str, ImageRef | None, str]:
        body = parse_json(raw, settings.max_json_depth)
        opts = parse_options(body, settings)
        requested = body.get("model")
        if requested is not None and requested not in names:
            raise APIError(404, f"model {requested[:100]!r} does not exist; this server serves {list(names)}",
                           code="model_not_found")
        text, image = parse_messages(body["messages"], settings)
        return opts, text, image, requested or names[0]

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        if app.state.in_flight >= capacity:  # before the body is read or parsed: overload costs nothing
            raise APIError(429, f"the server is at capacity ({capacity} requests in flight); retry later",
                           "rate_limit_error", "queue_full", headers=retry_after())
        app.state.in_flight += 1
        try:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise APIError(415, f"Content-Type must be application/json, got {kind[:60] or '(none)'!r}",
                               code="unsupported_media_type")
            raw = await read_body(request)
            opts, text, image, name = await off_loop(parse, raw)
            prepared = await prepare(text, image, opts)
            return await complete(request, prepared, opts, name)
        finally:
            app.state.in_flight -= 1

    async def prepare(text: str, image: ImageRef | None, opts: dict[str, Any]) -> tuple[GenerationRequest, tuple]:
        data = None
        if image is not None and image.url is not None:
            data = await fetch_image(image.url, max_bytes=settings.max_image_bytes,
                                     deadline_s=settings.remote_timeout_s,
                                     allow_private=settings.allow_private_image_hosts)
        elif image is not None:
            data = await off_loop(decode_data, image, settings)
        pixels = await off_loop(declared_pixels, data, settings) if data is not None else 0
        req = GenerationRequest(data, text, opts["max_tokens"], opts["stop"], opts["max_crops"])
        try:
            await app.state.pixels.acquire(pixels, timeout=30)
        except asyncio.TimeoutError:
            raise APIError(503, "the server is busy decoding other images; retry later", "server_error",
                           "busy", headers=retry_after()) from None
        try:
            return req, await off_loop(model.prepare, req)
        except ImageError as e:
            raise APIError(400, f"invalid image: {e}", code="invalid_image") from None
        except PromptTooLongError as e:
            raise APIError(400, str(e), code="context_length_exceeded") from None
        finally:
            await app.state.pixels.release(pixels)

    async def complete(request: Request, prepared: tuple, opts: dict[str, Any], name: str):
        req, example = prepared
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()
        if opts["stream"]:
            req = GenerationRequest(req.image, req.text, req.max_new_tokens, req.stop, req.max_crops,
                                    lambda d: loop.call_soon_threadsafe(deltas.put_nowait, d))
        try:
            job = app.state.batcher.submit(req, example, temperature=opts["temperature"], top_p=opts["top_p"],
                                           seed=opts["seed"])
        except QueueFullError as e:
            raise APIError(429, str(e), "rate_limit_error", "queue_full",
                           headers=retry_after()) from None
        done = asyncio.wrap_future(job.future)
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # a cancelled job's error is expected
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if opts["stream"]:
            return StreamingResponse(_sse(cid, created, name, deltas, done, job), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            while not done.done():  # poll for a client that went away: its generation stops at the next step
                await asyncio.wait({done}, timeout=0.2)
                if not done.done() and await request.is_disconnected():
                    job.cancel()
                    raise APIError(499, "client closed the request", code="client_closed")
            answer = done.result()
            finished.append(time.monotonic())
        except (APIError, asyncio.CancelledError):
            job.cancel()
            raise
        except ValueError as e:
            raise APIError(400, str(e), code="invalid_request") from None
        except Exception as e:  # noqa: BLE001 - a failed generation is reported, the server keeps serving
            raise APIError(500, f"generation failed: {type(e).__name__}: {e}", "server_error",
                           "generation_failed") from None
        return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": answer.finish_reason}],
                "usage": usage_field(answer), "molmo": molmo_field(answer)}

    async def _sse(cid: str, created: int, name: str, deltas: asyncio.Queue, done: asyncio.Future, job):
        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(body)}\n\n"

        getter = None
        try:
            yield chunk({"role": "assistant", "content": ""})
            while not done.done() or not deltas.empty():
                getter = asyncio.ensure_future(deltas.get())
                await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield chunk({"content": getter.result()})
                else:
                    getter.cancel()
            try:
                answer = done.result()
            except Exception as e:  # noqa: BLE001 - the stream has started; report in-band
                yield f"data: {json.dumps(error_body(str(e), 'server_error', 'generation_failed'))}\n\n"
                yield "data: [DONE]\n\n"
                return
            finished.append(time.monotonic())
            yield chunk({}, answer.finish_reason, usage=usage_field(answer), molmo=molmo_field(answer))
            yield "data: [DONE]\n\n"
        finally:  # also when the client disconnects mid-stream (the generator is closed or cancelled)
            if getter is not None:
                getter.cancel()
            if not done.done():
                job.cancel()

    return app


# ---------------------------------------------------------------- running it
class BackgroundServer:
    """uvicorn in a daemon thread on a free loopback port (tests, benchmarks, the load test).

        with BackgroundServer(app) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0):
        import socket
        import threading

        import uvicorn

        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="molmo-uvicorn", daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
