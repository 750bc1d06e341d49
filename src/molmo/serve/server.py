"""`molmo serve`: an OpenAI-compatible HTTP server (FastAPI + uvicorn) with dynamic batching and a web page.

    molmo serve --model PATH --host 127.0.0.1 --port 8000 [--api-key KEY] [--allow-remote-images]

Endpoints: `POST /v1/chat/completions` (messages with `image_url` content parts as data URLs; http(s) URLs
only with --allow-remote-images; `stream`, `temperature`, `top_p`, `max_tokens`, `stop`; each response carries
a `molmo` field with the points in pixels and the count), `GET /v1/models`, `GET /health`, and the page at `/`.
Every refusal is a 4xx JSON body `{"error": {"message", "type", "code"}}`. In Python:

    app = create_app(Molmo.from_pretrained(path), ServerSettings(api_key="secret"))
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import time
import urllib.request
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from molmo.api import Answer, GenerationRequest, Molmo
from molmo.image.loading import ImageError
from molmo.preprocess.processor import MolmoProcessor, PromptTooLongError
from molmo.serve.batcher import Batcher, BatcherSettings, QueueFullError

STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ServerSettings:
    model_name: str | None = None  # the id clients send as "model"; default: the checkpoint folder name
    api_key: str | None = None
    allow_remote_images: bool = False
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_tokens: int = 1024  # the most a request may ask for
    default_max_tokens: int = 200
    max_crops: int | None = None  # None: the pre-processor's default
    max_batch_size: int = 8
    batch_window_s: float = 0.01
    max_queue: int = 64
    remote_timeout_s: float = 10.0


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


# ---------------------------------------------------------------- request parsing
def decode_image_url(url: str, settings: ServerSettings) -> bytes:
    if not isinstance(url, str) or not url:
        raise APIError(400, "image_url.url must be a non-empty string", code="invalid_image_url")
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep:
            raise APIError(400, "malformed data URL: no comma between header and data", code="invalid_image_url")
        mime = header[5:].split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            raise APIError(415, f"unsupported content type {mime or '(none)'!r} in data URL; send an image/* "
                                f"data URL (PNG, JPEG, WebP, GIF, ...)", code="unsupported_media_type")
        if ";base64" not in header:
            raise APIError(400, "data URL must be base64-encoded (data:image/png;base64,...)", code="invalid_image_url")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as e:
            raise APIError(400, f"image data URL is not valid base64 ({e})", code="invalid_image_url") from e
    if url.startswith(("http://", "https://")):
        if not settings.allow_remote_images:
            raise APIError(400, "remote image URLs are disabled on this server; send the image as a data URL "
                                "(or start the server with --allow-remote-images)", code="remote_images_disabled")
        return _fetch(url, settings)
    raise APIError(400, "image_url.url must be a data: URL or an http(s) URL", code="invalid_image_url")


def _fetch(url: str, settings: ServerSettings) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=settings.remote_timeout_s) as r:  # noqa: S310 - opt-in flag
            kind = (r.headers.get("Content-Type") or "").split(";")[0].lower()
            if kind and not kind.startswith("image/") and kind != "application/octet-stream":
                raise APIError(415, f"{url} is served as {kind!r}, not an image", code="unsupported_media_type")
            data = r.read(settings.max_body_bytes + 1)
    except APIError:
        raise
    except Exception as e:  # noqa: BLE001 - any network failure is the client's URL problem
        raise APIError(400, f"cannot fetch image {url}: {e}", code="image_fetch_failed") from e
    if len(data) > settings.max_body_bytes:
        raise APIError(413, f"remote image is over {settings.max_body_bytes} bytes", code="image_too_large")
    return data


def parse_messages(messages: Any, settings: ServerSettings) -> tuple[str, bytes | None]:
    """OpenAI chat messages -> (model prompt text, image bytes or None)."""
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", code="invalid_messages")
    plain: list[dict[str, Any]] = []
    images: list[bytes] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise APIError(400, f"messages[{i}] needs a role of 'system', 'user' or 'assistant'", code="invalid_messages")
        content = m.get("content")
        if isinstance(content, str):
            plain.append({"role": m["role"], "content": content})
            continue
        if not isinstance(content, list):
            raise APIError(400, f"messages[{i}].content must be a string or a list of parts", code="invalid_messages")
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                images.append(decode_image_url(url, settings))
            else:
                raise APIError(400, f"messages[{i}].content[{j}] must be a text or image_url part", code="invalid_messages")
        plain.append({"role": m["role"], "content": " ".join(t.strip() for t in texts if t.strip())})
    if len(images) > 1:
        raise APIError(400, f"Molmo takes one image per conversation, got {len(images)}", code="too_many_images")
    if plain[-1]["role"] != "user" or not plain[-1]["content"]:
        raise APIError(400, "the last message must be a user message with text", code="invalid_messages")
    return MolmoProcessor.apply_chat_template(plain), (images[0] if images else None)


def _number(body: dict, key: str, default: float, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise APIError(400, f"'{key}' must be {'an integer' if integer else 'a number'}", code="invalid_parameter")
    if not lo <= value <= hi:
        raise APIError(400, f"'{key}' must be between {lo} and {hi}, got {value}", code="invalid_parameter")
    return value


def parse_options(body: dict, settings: ServerSettings) -> dict[str, Any]:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(settings.default_max_tokens, settings.max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise APIError(400, f"'max_tokens' must be a positive integer, got {max_tokens!r}", code="invalid_parameter")
    if max_tokens > settings.max_tokens:
        raise APIError(400, f"'max_tokens' is {max_tokens} but this server allows at most {settings.max_tokens}",
                       code="max_tokens_exceeded")
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else (stop or [])
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise APIError(400, "'stop' must be a string or a list of up to 4 non-empty strings", code="invalid_parameter")
    if body.get("n", 1) != 1:
        raise APIError(400, "only n=1 is supported", code="invalid_parameter")
    return {"max_tokens": max_tokens, "stop": tuple(stop),
            "temperature": float(_number(body, "temperature", 0.0, 0.0, 2.0)),
            "top_p": float(_number(body, "top_p", 1.0, 1e-6, 1.0)),
            "max_crops": _number(body, "max_crops", settings.max_crops, 1, 64, integer=True),
            "stream": bool(body.get("stream", False))}


def molmo_field(answer: Answer) -> dict[str, Any]:
    return {"points": [{"x": round(p.x, 2), "y": round(p.y, 2), "label": p.label} for p in answer.points],
            "count": answer.count, "image_size": list(answer.image_size) if answer.image_size else None}


def usage_field(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


# ---------------------------------------------------------------- the app
def create_app(model: Molmo, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    name = settings.model_name or model.name
    model.max_pixels = settings.max_image_pixels
    batch_settings = BatcherSettings(settings.max_batch_size, settings.batch_window_s, settings.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.batcher = Batcher(model, batch_settings).start()
        try:
            yield
        finally:
            app.state.batcher.close()

    app = FastAPI(title="molmo", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.model_name = name

    def fail(e: APIError) -> JSONResponse:
        return JSONResponse(error_body(e.message, e.type, e.code), status_code=e.status)

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
        return JSONResponse(error_body(f"internal error: {type(e).__name__}: {e}", "server_error", "internal_error"),
                            status_code=500)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return fail(APIError(413, f"request body of {int(length)} bytes is over the limit of "
                                      f"{settings.max_body_bytes} bytes", code="body_too_large"))
        if settings.api_key and request.url.path.startswith("/v1/"):
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {settings.api_key}":
                return fail(APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                     "authentication_error", "invalid_api_key"))
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        b = app.state.batcher
        return {"status": "ok", "model": name, "queued": b.queued, "batches": b.stats.batches,
                "requests": b.stats.rows, "largest_batch": b.stats.largest_batch,
                "auth_required": bool(settings.api_key)}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "molmo",
                                            "molmo": model.info.to_dict(show_path=False)}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            raise APIError(413, f"request body is over the limit of {settings.max_body_bytes} bytes",
                           code="body_too_large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise APIError(415, f"Content-Type must be application/json, got {kind or '(none)'!r}",
                           code="unsupported_media_type")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise APIError(400, f"malformed JSON body: {e}", code="invalid_json") from e
        if not isinstance(body, dict):
            raise APIError(400, "the JSON body must be an object", code="invalid_json")
        if "messages" not in body:
            raise APIError(400, "missing required field 'messages'", code="missing_field")
        if body.get("model") not in (None, name):
            raise APIError(404, f"model {body.get('model')!r} does not exist; this server serves {name!r}",
                           code="model_not_found")
        opts = parse_options(body, settings)
        text, image = parse_messages(body["messages"], settings)
        return await _complete(text, image, opts)

    async def _complete(text: str, image: bytes | None, opts: dict[str, Any]):
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()
        on_text = (lambda d: loop.call_soon_threadsafe(deltas.put_nowait, d)) if opts["stream"] else None
        req = GenerationRequest(image, text, opts["max_tokens"], opts["stop"], opts["max_crops"], on_text)
        try:
            prepared = await run_in_threadpool(model.prepare, req)
        except ImageError as e:
            raise APIError(400, f"invalid image: {e}", code="invalid_image") from e
        except PromptTooLongError as e:
            raise APIError(400, str(e), code="context_length_exceeded") from e
        try:
            future = app.state.batcher.submit(req, prepared, temperature=opts["temperature"], top_p=opts["top_p"])
        except QueueFullError as e:
            raise APIError(429, str(e), "rate_limit_error", "queue_full") from e
        done = asyncio.wrap_future(future)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not opts["stream"]:
            try:
                answer = await done
            except ValueError as e:
                raise APIError(400, str(e), code="invalid_request") from e
            except Exception as e:  # noqa: BLE001 - a failed generation is reported, the server keeps serving
                raise APIError(500, f"generation failed: {type(e).__name__}: {e}", "server_error",
                               "generation_failed") from e
            return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                                 "finish_reason": answer.finish_reason}],
                    "usage": usage_field(answer), "molmo": molmo_field(answer)}
        return StreamingResponse(_sse(cid, created, deltas, done), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _sse(cid: str, created: int, deltas: asyncio.Queue, done: asyncio.Future):
        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(body)}\n\n"

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
        while not deltas.empty():
            yield chunk({"content": deltas.get_nowait()})
        yield chunk({}, answer.finish_reason, usage=usage_field(answer), molmo=molmo_field(answer))
        yield "data: [DONE]\n\n"

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


# ---------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServerSettings()
    parser.add_argument("--model", default=None,
                        help="checkpoint folder or Hub id, e.g. allenai/Molmo-7B-D-0924 (default: the embedded model)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit for a Hub id --model")
    parser.add_argument("--adapter", default=None, help="PEFT LoRA adapter folder or Hub id to apply to --model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--api-key", default=os.environ.get("MOLMO_API_KEY"),
                        help="require 'Authorization: Bearer KEY' on /v1/* (default: $MOLMO_API_KEY)")
    parser.add_argument("--allow-remote-images", action="store_true", help="accept http(s) image URLs")
    parser.add_argument("--max-batch-size", type=int, default=d.max_batch_size)
    parser.add_argument("--batch-window-ms", type=float, default=d.batch_window_s * 1000)
    parser.add_argument("--max-queue", type=int, default=d.max_queue)
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens, help="the most a request may ask for")
    parser.add_argument("--max-body-mb", type=float, default=d.max_body_bytes / 2**20)
    parser.add_argument("--max-image-pixels", type=int, default=d.max_image_pixels)
    parser.add_argument("--max-crops", type=int, default=None)


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(api_key=args.api_key or None, allow_remote_images=args.allow_remote_images,
                          max_body_bytes=int(args.max_body_mb * 2**20), max_image_pixels=args.max_image_pixels,
                          max_tokens=args.max_tokens, max_crops=args.max_crops, max_batch_size=args.max_batch_size,
                          batch_window_s=args.batch_window_ms / 1000, max_queue=args.max_queue)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    model = Molmo.from_pretrained(args.model, dtype=args.dtype, device=args.device, revision=args.revision,
                                  adapter=args.adapter)
    app = create_app(model, settings_from_args(args))
    print(f"molmo: serving {model.name!r} on http://{args.host}:{args.port}/ (OpenAI API under /v1)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
