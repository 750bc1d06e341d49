"""The request side of the OpenAI chat API, strict: every field's type and range is checked, fields this server
does not implement are refused with a 400 naming them (never silently ignored), JSON nesting is bounded, and
prompt text is measured in characters before anything is tokenized.

    body = parse_json(raw, max_depth=32)                  # APIError 400 on malformed or too deeply nested JSON
    opts = parse_options(body, settings)                   # max_tokens, stop, temperature, top_p, seed, stream, …
    text, image = parse_messages(body["messages"], settings)   # image: ImageRef | None (not yet decoded)

Every refusal is an `APIError` that becomes a JSON body `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from molmo.text.prompts import chat_prompt

# Fields we read; fields accepted only at their no-op value (anything else is a 400 naming the field); fields
# ignored because they do not change the answer. Any other field is refused, so a typo is never ignored.
READ = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
        "n", "seed", "max_crops"}
NO_OP = {"logprobs": (None, False), "top_logprobs": (None, 0), "tools": (None, []), "tool_choice": (None, "none"),
         "functions": (None, []), "function_call": (None, "none"), "parallel_tool_calls": (None, False, True),
         "response_format": (None, {"type": "text"}), "presence_penalty": (None, 0, 0.0),
         "frequency_penalty": (None, 0, 0.0), "logit_bias": (None, {}), "best_of": (None, 1),
         "echo": (None, False), "suffix": (None,), "modalities": (None, ["text"]), "audio": (None,),
         "prediction": (None,), "reasoning_effort": (None,), "web_search_options": (None,)}
IGNORED = {"user", "metadata", "store", "stream_options", "service_tier"}


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type_, code, headers


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


@dataclass(frozen=True)
class ImageRef:
    """An image as the request gave it, not yet decoded: base64 text of a data URL, or a remote URL."""

    data: str | None = None  # base64 payload
    url: str | None = None


# ---------------------------------------------------------------- JSON
def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (so a deep value cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def parse_json(raw: bytes, max_depth: int) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise APIError(400, f"JSON body is nested too deeply (the limit is {max_depth} levels)",
                       code="json_too_deep") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"malformed JSON body: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "the JSON body must be an object", code="invalid_json")
    if _depth(body, max_depth) > max_depth:
        raise APIError(400, f"JSON body is nested too deeply (the limit is {max_depth} levels)", code="json_too_deep")
    return body


# ---------------------------------------------------------------- options
def _check_fields(body: dict) -> None:
    for key, value in body.items():
        if key in READ or key in IGNORED:
            continue
        if key in NO_OP:
            if not any(type(value) is type(ok) and value == ok for ok in NO_OP[key]):
                raise APIError(400, f"'{key}' is not supported by this server (got {json.dumps(value)[:80]}); "
                                    f"remove the field", code="unsupported_parameter")
            continue
        raise APIError(400, f"unknown field '{key}'", code="unknown_parameter")


def _number(body: dict, key: str, default: Any, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise APIError(400, f"'{key}' must be {'an integer' if integer else 'a number'}, got {json.dumps(value)[:40]}",
                       code="invalid_parameter")
    if not lo <= value <= hi:
        raise APIError(400, f"'{key}' must be between {lo} and {hi}, got {value}", code="invalid_parameter")
    return value


def parse_options(body: dict, settings: Any) -> dict[str, Any]:
    _check_fields(body)
    if "messages" not in body:
        raise APIError(400, "missing required field 'messages'", code="missing_field")
    if body.get("model") is not None and not isinstance(body["model"], str):
        raise APIError(400, "'model' must be a string", code="invalid_parameter")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(settings.default_max_tokens, settings.max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise APIError(400, f"'max_tokens' must be a positive integer, got {max_tokens!r}", code="invalid_parameter")
    if max_tokens > settings.max_tokens:
        raise APIError(400, f"'max_tokens' is {max_tokens} but this server allows at most {settings.max_tokens}",
                       code="max_tokens_exceeded")
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else ([] if stop is None else stop)
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in stop):
        raise APIError(400, "'stop' must be a string or a list of up to 4 non-empty strings (200 characters "
                            "at most)", code="invalid_parameter")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, f"'stream' must be a boolean (true or false), got {json.dumps(stream)[:40]}",
                       code="invalid_parameter")
    if _number(body, "n", 1, 1, 1_000_000, integer=True) != 1:
        raise APIError(400, "'n' must be 1: this server returns one choice per request", code="unsupported_parameter")
    return {"max_tokens": max_tokens, "stop": tuple(stop), "stream": stream,
            "temperature": float(_number(body, "temperature", 0.0, 0.0, 2.0)),
            "top_p": float(_number(body, "top_p", 1.0, 1e-6, 1.0)),
            "seed": _number(body, "seed", None, -(2**63), 2**63 - 1, integer=True),
            "max_crops": _number(body, "max_crops", settings.max_crops, 1, 64, integer=True)}


# ---------------------------------------------------------------- messages
def _image_ref(url: Any, settings: Any) -> ImageRef:
    if not isinstance(url, str) or not url:
        raise APIError(400, "image_url.url must be a non-empty string", code="invalid_image_url")
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep:
            raise APIError(400, "malformed data URL: no comma between header and data", code="invalid_image_url")
        mime = header[5:].split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            raise APIError(415, f"unsupported content type {mime[:40] or '(none)'!r} in data URL; send an image/* "
                                f"data URL (PNG, JPEG, WebP, GIF, ...)", code="unsupported_media_type")
        if ";base64" not in header:
            raise APIError(400, "data URL must be base64-encoded (data:image/png;base64,...)", code="invalid_image_url")
        if len(payload) > settings.max_image_bytes * 4 // 3 + 4:
            raise APIError(413, f"image is over the limit of {settings.max_image_bytes} bytes", code="image_too_large")
        return ImageRef(data=payload)
    if url.startswith(("http://", "https://")):
        if not settings.allow_remote_images:
            raise APIError(400, "remote image URLs are disabled on this server; send the image as a data URL "
                                "(or start the server with --allow-remote-images)", code="remote_images_disabled")
        if len(url) > 2048:
            raise APIError(400, "image URL is longer than 2048 characters", code="invalid_image_url")
        return ImageRef(url=url)
    raise APIError(400, "image_url.url must be a data: URL or an http(s) URL", code="invalid_image_url")


def decode_data(ref: ImageRef, settings: Any) -> bytes:
    """The bytes of a data-URL image (run off the event loop: base64 of megabytes takes a while)."""
    try:
        data = base64.b64decode(ref.data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise APIError(400, f"image data URL is not valid base64 ({e})", code="invalid_image_url") from None
    if len(data) > settings.max_image_bytes:
        raise APIError(413, f"image is over the limit of {settings.max_image_bytes} bytes", code="image_too_large")
    return data


def parse_messages(messages: Any, settings: Any) -> tuple[str, ImageRef | None]:
    """OpenAI chat messages -> (model prompt text, the image reference or None). Text is measured in characters
    against `settings.max_prompt_chars` before any tokenizing."""
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", code="invalid_messages")
    if len(messages) > settings.max_messages:
        raise APIError(400, f"{len(messages)} messages; this server takes at most {settings.max_messages}",
                       code="invalid_messages")
    plain: list[dict[str, Any]] = []
    images: list[ImageRef] = []
    chars = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise APIError(400, f"messages[{i}] needs a role of 'system', 'user' or 'assistant'",
                           code="invalid_messages")
        content = m.get("content")
        if isinstance(content, str):
            texts = [content]
        elif isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    url = part.get("image_url")
                    images.append(_image_ref(url.get("url") if isinstance(url, dict) else url, settings))
                else:
                    raise APIError(400, f"messages[{i}].content[{j}] must be a text or image_url part",
                                   code="invalid_messages")
        else:
            raise APIError(400, f"messages[{i}].content must be a string or a list of parts", code="invalid_messages")
        chars += sum(len(t) for t in texts)
        if chars > settings.max_prompt_chars:
            raise APIError(400, f"the messages hold over {settings.max_prompt_chars} characters of text, more than "
                                f"the model's context can take", code="context_length_exceeded")
        plain.append({"role": m["role"], "content": " ".join(t.strip() for t in texts if t.strip())})
    if len(images) > 1:
        raise APIError(400, f"Molmo takes one image per conversation, got {len(images)}", code="too_many_images")
    if plain[-1]["role"] != "user" or not plain[-1]["content"]:
        raise APIError(400, "the last message must be a user message with text", code="invalid_messages")
    return chat_prompt(plain), (images[0] if images else None)
