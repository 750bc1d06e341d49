"""The Python API: load a Molmo checkpoint and ask it about images in one call.

    from molmo.api import Molmo
    model = Molmo.from_pretrained()                 # the embedded tiny model (src/molmo/assets/tiny-molmo)
    answer = model.ask("photo.jpg", "Point to the red circles.")
    answer.text, answer.points, answer.count        # points are in pixels of the input image
    model.point(img, "cat"); model.count(img, "cat"); model.caption(img, length=40)
    model.ask_many([img1, img2], ["What is this?", "How many dogs?"])   # one batched generate
    batch = model.processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image", "image": img}, {"type": "text", "text": "Describe this image."}]}])

Checkpoints: our format (`save_molmo`) and released HF-format Molmo directories (`load_molmo`), with a
`tokenizer.json` and optionally a `preprocessor_config.json` (else the released pre-processor, with the crop
size of the model's ViT). Images: a path, PIL image, numpy array or encoded bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from molmo.assets import DEFAULT_MODEL_DIR
from molmo.checkpoint.info import ModelInfo
from molmo.data.formatter import DEFAULT_INFERENCE_LENGTH, inference_caption_prompt
from molmo.image.loading import DEFAULT_MAX_PIXELS, ImageSource
from molmo.preprocess.collate import collate
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.processor import MolmoProcessor
from molmo.text import templates
from molmo.text.context import PromptTooLongError
from molmo.text.points import Point, parse_points
from molmo.text.prompts import chat_prompt, format_prompt
from molmo.text.stops import cut_at_stop, first_stop, stop_holdback

POINT_TEMPLATE = templates.POINTING[1]  # "Point to the {label}."
COUNT_TEMPLATE = templates.POINT_COUNT[0]  # "How many {label} are there?"

__all__ = ["Molmo", "Answer", "Usage", "Point", "ChatProcessor", "ModelNotFoundError", "PromptTooLongError",
           "DEFAULT_MODEL_DIR"]


class ModelNotFoundError(FileNotFoundError):
    """The checkpoint directory does not exist or is not a Molmo checkpoint, or a Hub id cannot be resolved."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Answer:
    text: str
    points: list[Point] = field(default_factory=list)  # pixels of the input image
    count: int | None = None
    finish_reason: str = "stop"  # "stop" | "length"
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    image_size: tuple[int, int] | None = None  # (width, height)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "points": [asdict(p) for p in self.points], "count": self.count,
                "finish_reason": self.finish_reason, "image_size": list(self.image_size) if self.image_size else None,
                "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens}}


@dataclass(frozen=True)
class GenerationRequest:
    """One row of a batched generation: the prompt text in the model's raw format plus its own limits."""

    image: Any  # None, or anything `load_image` accepts
    text: str  # raw model text, e.g. " User: What is this? Assistant:"
    max_new_tokens: int = 200
    stop: tuple[str, ...] = ()
    max_crops: int | None = None
    on_text: Callable[[str], None] | None = None  # streamed text deltas


class StreamDecoder:
    """Token ids -> text deltas. Waits while the text ends in an incomplete UTF-8 sequence (U+FFFD) and holds
    back a tail that could still become a stop string, so a stream never shows text the final answer drops."""

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()):
        self.decode = decode
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.emitted = ""
        self.stopped = False

    def push(self, token_id: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token_id)
        text = self.decode(self.ids).lstrip()
        if text.endswith("\ufffd"):
            return ""
        at = first_stop(text, self.stop)
        if at is not None:
            self.stopped = True
            return self._emit(text[:at])
        hold = stop_holdback(self.stop)
        return self._emit(text[: len(text) - hold] if hold else text)

    def finish(self, final_text: str) -> str:
        """The remaining delta once the final answer text is known."""
        return self._emit(final_text)

    def _emit(self, text: str) -> str:
        if len(text) <= len(self.emitted) or not text.startswith(self.emitted):
            return ""
        delta, self.emitted = text[len(self.emitted):], text
        return delta


class ChatProcessor:
    """Tensors for users who drive the model themselves (the Hugging Face processor convention)."""

    def __init__(self, processor: MolmoProcessor):
        self.processor = processor
        self.tokenizer = processor.tokenizer

    def encode(self, image: Any, text: str, max_crops: int | None = None) -> dict[str, np.ndarray]:
        """One inference example from raw model text (the image block goes first, after BOS)."""
        return self.processor.encode(image, text=text, max_crops=max_crops)

    def apply_chat_template(self, messages: list[dict[str, Any]], images: Sequence[Any] | None = None, *,
                            max_crops: int | None = None, return_text: bool = False) -> dict[str, torch.Tensor] | str:
        """Messages whose content is a string or parts `{"type": "image", "image": …}` / `{"type": "text",
        "text": …}` -> a collated batch of one (input_ids, images, image_masks, image_input_idx). Images may
        also be given in `images`; Molmo takes at most one image per conversation."""
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")
        found = list(images or [])
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or "type" not in part:
                        raise ValueError(f"content parts must be dicts with a 'type', got {part!r}")
                    if part["type"] == "image" and part.get("image") is not None:
                        found.append(part["image"])
        if len(found) > 1:
            raise ValueError(f"Molmo takes one image per conversation, got {len(found)}")
        text = chat_prompt(messages)
        if return_text:
            return text
        return collate([self.encode(found[0] if found else None, text, max_crops)])


class Molmo:
    """A loaded model + tokenizer + pre-processor, with one-call question answering."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: PreprocessorConfig,
                 name: str = "molmo", max_pixels: int = DEFAULT_MAX_PIXELS, info: ModelInfo | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.info = info or ModelInfo(name)  # what the folder says about the model (`info.notice()`)
        ctx = model.config.llm.max_position_embeddings
        self.processor = ChatProcessor(MolmoProcessor(tokenizer, preprocessor, max_sequence_length=ctx,
                                                      max_pixels=max_pixels))
        eos = {tokenizer.eos_token_id}
        if model.config.eos_token_id is not None:
            eos.add(int(model.config.eos_token_id))
        self.eos_token_ids = sorted(eos)

    @property
    def max_pixels(self) -> int:
        """The largest image (width x height) decoded; the server lowers it to its own limit."""
        return self.processor.processor.max_pixels

    @max_pixels.setter
    def max_pixels(self, value: int) -> None:
        self.processor.processor.max_pixels = int(value)

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, dtype: str | torch.dtype = "float32",
                        device: str | torch.device = "cpu", name: str | None = None, *,
                        revision: str | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool | None = None, adapter: str | Path | None = None,
                        quantize: str | None = None) -> "Molmo":
        """`path`: a checkpoint folder or a Hub id such as "allenai/Molmo-7B-D-0924" (fetched into the Hub
        cache at `revision`; `local_files_only` / HF_HUB_OFFLINE=1 use the cache only). `adapter`: a PEFT LoRA
        adapter folder or Hub id, merged into the weights after loading. `dtype`: "float32", "bfloat16",
        "float16" or "auto" (molmo.precision); `device`: "cpu", "cuda[:N]" or "auto" (cuda when present).
        `quantize`: None, "int8" (CPU: fp32 model with int8 decoder layers; GPU: torchao) or "nf4" (GPU,
        bitsandbytes); applied after any adapter is merged (molmo.model.quantize)."""
        from molmo.checkpoint.hub import HubError, is_hub_id, resolve_model
        from molmo.checkpoint.io import load_molmo
        from molmo.precision import resolve_dtype
        from molmo.text.tokenizer import MolmoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = resolve_dtype(dtype, device)  # "auto": bf16 where this device computes it fast, else fp32
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but torch sees no CUDA device")
        hub_name = str(path) if path is not None and is_hub_id(path) else None
        try:
            path = resolve_model(path, revision, cache_dir=cache_dir, local_files_only=local_files_only) \
                if path is not None else DEFAULT_MODEL_DIR
            if adapter is not None:
                adapter = resolve_model(adapter, cache_dir=cache_dir, local_files_only=local_files_only,
                                        files=("adapter_config.json", "adapter_model.safetensors"),
                                        required="adapter_config.json")
        except HubError as e:
            raise ModelNotFoundError(str(e)) from e
        if not (path / "config.json").is_file():
            hint = " (the embedded default model is not bundled in this install)" if path == DEFAULT_MODEL_DIR else ""
            raise ModelNotFoundError(f"{path}: not a Molmo checkpoint directory, no config.json{hint}")
        model, config = load_molmo(path, dtype=dtype, device=device)
        if adapter is not None:
            from molmo.checkpoint.lora import load_adapter, merge_lora

            merge_lora(load_adapter(model, adapter)).eval()
        if quantize is not None:
            from molmo.model.quantize import quantize_decoder
            quantize_decoder(model, quantize)
        tokenizer = MolmoTokenizer.from_dir(path)
        pre_file = path / "preprocessor_config.json"
        if pre_file.is_file():
            pre = PreprocessorConfig.from_json(pre_file)
        else:  # released pre-processing at the model's crop size (margins shrink with small crops)
            grid = config.vision.image_size[0] // config.vision.patch_size
            margin = min(4, grid // 4)
            pre = PreprocessorConfig.released().replace(base_image_input_size=tuple(config.vision.image_size),
                                                        patch_size=config.vision.patch_size,
                                                        overlap_margins=(margin, margin))
        info = ModelInfo.from_dir(path, name or hub_name)
        if adapter is not None:  # the card's verdict is about the base weights, not the adapted ones
            info = ModelInfo(f"{info.label} + adapter {Path(adapter).name}")
        return cls(model, tokenizer, pre, name=name or hub_name or path.name, info=info)

    # ---------------------------------------------------------------- one-call helpers
    def ask(self, image: ImageSource | None, question: str, *, style: str | None = None, max_new_tokens: int = 200,
            temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] | str | None = None,
            max_crops: int | None = None, stream: Callable[[str], None] | None = None,
            seed: int | None = None) -> Answer:
        """Answer one question; `stream(delta)` receives the text as it is generated."""
        return self.ask_many([image], [question], style=style, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=top_p, stop=stop, max_crops=max_crops,
                             stream=(lambda i, d: stream(d)) if stream else None, seed=seed)[0]

    def ask_many(self, images: Sequence[ImageSource | None], questions: Sequence[str], *, style: str | None = None,
                 max_new_tokens: int = 200, temperature: float = 0.0, top_p: float = 1.0,
                 stop: Sequence[str] | str | None = None, max_crops: int | None = None,
                 stream: Callable[[int, str], None] | None = None, seed: int | None = None,
                 should_stop: Callable[[bool], bool] | None = None) -> list[Answer]:
        """Answer a batch with one batched generate; `stream(index, delta)` receives each row's text;
        `should_stop`: molmo.model.generation.generate's per-step stop rule (sharded multi-process callers)."""
        if len(images) != len(questions):
            raise ValueError(f"got {len(images)} images but {len(questions)} questions")
        for q in questions:
            if not isinstance(q, str) or not q.strip():
                raise ValueError("every question must be a non-empty string")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        reqs = [GenerationRequest(img, format_prompt(q, style), max_new_tokens, stops, max_crops,
                                  (lambda d, i=i: stream(i, d)) if stream else None)
                for i, (img, q) in enumerate(zip(images, questions))]
        return self.generate_requests(reqs, temperature=temperature, top_p=top_p, seed=seed,
                                      should_stop=should_stop)

    def caption(self, image: ImageSource, length: int | None = None, **kw: Any) -> Answer:
        """A caption with the captioner's length hint (roughly characters / 15; default 65 ≈ a long caption)."""
        length = DEFAULT_INFERENCE_LENGTH if length is None else int(length)
        if length < 0:
            raise ValueError(f"caption length must be >= 0, got {length}")
        kw.setdefault("max_new_tokens", 400)
        return self._raw(image, inference_caption_prompt(length), **kw)

    def point(self, image: ImageSource, label: str, **kw: Any) -> Answer:
        return self.ask(image, POINT_TEMPLATE.format(label=templates.plural_label(_label(label))), **kw)

    def count(self, image: ImageSource, label: str, **kw: Any) -> Answer:
        return self.ask(image, COUNT_TEMPLATE.format(label=templates.plural_label(_label(label))), **kw)

    def _raw(self, image: ImageSource, text: str, *, max_new_tokens: int = 200, temperature: float = 0.0,
             top_p: float = 1.0, stop: Sequence[str] | str | None = None, max_crops: int | None = None,
             stream: Callable[[str], None] | None = None, seed: int | None = None) -> Answer:
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        req = GenerationRequest(image, text, max_new_tokens, stops, max_crops, stream)
        return self.generate_requests([req], temperature=temperature, top_p=top_p, seed=seed)[0]

    # ---------------------------------------------------------------- the batched core
    def prepare(self, request: GenerationRequest) -> tuple[dict[str, np.ndarray], tuple[int, int] | None]:
        """Decode the image and build the example; errors (ImageError, PromptTooLongError) name the problem.
        Returns the example and the image's (width, height)."""
        if request.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {request.max_new_tokens}")
        example = self.processor.processor.encode(request.image, text=request.text, max_crops=request.max_crops,
                                                  max_new_tokens=request.max_new_tokens)
        size = tuple(int(v) for v in example["image_size"]) if "image_size" in example else None
        return example, size

    def generate_requests(self, requests: Sequence[GenerationRequest], *, temperature: float = 0.0,
                          top_p: float = 1.0, top_k: int | None = None, seed: int | None = None,
                          prepared: Sequence[tuple[dict, tuple[int, int] | None]] | None = None,
                          should_stop: Callable[[bool], bool] | None = None) -> list[Answer]:
        """Run rows with their own stop strings and token limits in ONE generate call (the server's batches)."""
        from molmo.model.generation import generate

        if not requests:
            return []
        if temperature < 0 or not (0 < top_p <= 1):
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        prepared = list(prepared) if prepared is not None else [self.prepare(r) for r in requests]
        batch = collate([ex for ex, _ in prepared])
        decode = self.tokenizer.decode
        streams = [StreamDecoder(decode, r.stop) if r.on_text else None for r in requests]
        counts = [0] * len(requests)

        def on_token(row: int, tok: int) -> None:
            counts[row] += 1
            s = streams[row]
            if s is not None and counts[row] <= requests[row].max_new_tokens:
                delta = s.push(tok)
                if delta:
                    requests[row].on_text(delta)

        shared_stop = requests[0].stop if all(r.stop == requests[0].stop for r in requests) else ()
        gen = torch.Generator(device=next(self.model.parameters()).device) if seed is not None else None
        if gen is not None:
            gen.manual_seed(int(seed))
        out = generate(self.model, batch, max_new_tokens=max(r.max_new_tokens for r in requests),
                       eos_token_ids=self.eos_token_ids, temperature=temperature, top_p=top_p, top_k=top_k,
                       stop_strings=shared_stop, decode=decode if shared_stop else None, generator=gen,
                       on_token=on_token, should_stop=should_stop)
        answers = []
        for row, (req, (example, size)) in enumerate(zip(requests, prepared)):
            ids = out.tokens[row]
            reason = out.finish_reasons[row]
            if len(ids) > req.max_new_tokens:  # a shorter limit than the batch's
                ids, reason = ids[: req.max_new_tokens], "length"
            text, hit = cut_at_stop(decode(ids), req.stop)
            if hit:
                reason = "stop"
            if streams[row] is not None:
                delta = streams[row].finish(text.lstrip())
                if delta:
                    req.on_text(delta)
            answers.append(self.make_answer(text, size, reason, int((example["input_ids"] >= 0).sum()), len(ids)))
        return answers

    @staticmethod
    def make_answer(text: str, size: tuple[int, int] | None, reason: str, prompt_tokens: int,
                    completion_tokens: int) -> Answer:
        parsed = parse_points(text, image_size=size)
        points = parsed.points if size is not None else []
        return Answer(text=text.strip(), points=points, count=parsed.count, finish_reason=reason,
                      usage=Usage(prompt_tokens, completion_tokens), image_size=size)


def _label(label: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise ValueError("label must be a non-empty string")
    return label.strip()
