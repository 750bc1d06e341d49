"""The pre-processor: image + text -> model inputs (arch-spec §1.8–1.9, §5.3).

Inference: `" User: " + prompt + " Assistant:"` (leading space), image block at the start, BOS (= EOS for
Qwen2/OLMo) prepended. Training: already-formatted message strings (alternating user / assistant, with
their leading spaces) tokenised one by one, EOS after every assistant string, loss weight on assistant
tokens, input = [BOS] + tokens[:-1] and labels = tokens. Several conversations about one image
(`message_lists`) are packed with sub-segment ids and restarted position ids; `root_subsegments` multiplies
their loss weights by sqrt(1/n).

    proc = MolmoProcessor(tokenizer, PreprocessorConfig.released())
    ex = proc.process(image, prompt="Describe this image.")                 # inference
    ex = proc.process(image, message_lists=[[" User: Q Assistant:", " A"]])  # training
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from molmo.image.loading import ImageSource, load_image
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.crops import make_crops
from molmo.preprocess.layout import image_layout

IMAGE_SUBSEGMENT = 10000


class PromptTooLongError(ValueError):
    """The tokenised example does not fit in the allowed sequence length."""


def format_prompt(prompt: str, style: str | None = None) -> str:
    """The released inference format, with the optional style prefix (`"<style>: "`)."""
    prefix = f"{style}: " if style else ""
    return f" User: {prefix}{prompt} Assistant:"


class MolmoProcessor:
    def __init__(self, tokenizer: Any, config: PreprocessorConfig | None = None,
                 max_sequence_length: int | None = None):
        self.tokenizer = tokenizer
        self.config = config or PreprocessorConfig.released()
        self.max_sequence_length = max_sequence_length

    # ---------------------------------------------------------------- image part
    def image_inputs(self, image: ImageSource, max_crops: int | None = None) -> dict[str, np.ndarray]:
        """Crops, masks, image token block and image_input_idx (relative to the block start)."""
        pixels = load_image(image)
        crops = make_crops(pixels, self.config, max_crops)
        tokens, idx = image_layout(crops, self.config, self.tokenizer.image_token_ids)
        return {"images": crops.images, "image_masks": crops.image_masks, "image_tokens": tokens,
                "image_input_idx": idx, "tiling": np.array(crops.tiling, np.int64),
                "image_size": np.array(pixels.shape[:2], np.int64)}

    # ---------------------------------------------------------------- examples
    def process(self, image: ImageSource | None = None, prompt: str | None = None, *, style: str | None = None,
                messages: list[str] | None = None, message_lists: list[list[str]] | None = None,
                max_crops: int | None = None, weight: float = 1.0,
                multi_annotation_weighting: str | None = None) -> dict[str, np.ndarray]:
        """Exactly one of `prompt` (inference), `messages` (one conversation) or `message_lists`."""
        given = [x is not None for x in (prompt, messages, message_lists)]
        if sum(given) != 1:
            raise ValueError("pass exactly one of prompt=, messages= or message_lists=")
        img = self.image_inputs(image, max_crops) if image is not None else None
        if prompt is not None:
            return self._inference(img, self.tokenizer.encode(format_prompt(prompt, style)))
        lists = [messages] if messages is not None else message_lists
        return self._training(img, lists, weight, multi_annotation_weighting)

    def _check_length(self, n: int) -> None:
        if self.max_sequence_length is not None and n > self.max_sequence_length:
            raise PromptTooLongError(
                f"example needs {n} tokens but the limit is {self.max_sequence_length}; "
                f"shorten the text or lower max_crops")

    def _inference(self, img: dict | None, text: list[int]) -> dict[str, np.ndarray]:
        bos = self.tokenizer.bos_token_id
        image_tokens = img["image_tokens"] if img is not None else np.zeros(0, np.int64)
        ids = np.concatenate([[bos], image_tokens, text]).astype(np.int64)
        self._check_length(len(ids))
        out = {"input_ids": ids}
        if img is not None:
            out.update(self._shifted_image(img, 1))
        return out

    @staticmethod
    def _shifted_image(img: dict, offset: int) -> dict[str, np.ndarray]:
        idx = img["image_input_idx"]
        return {"images": img["images"], "image_masks": img["image_masks"],
                "image_input_idx": np.where(idx >= 0, idx + offset, idx), "image_size": img["image_size"]}

    def _training(self, img: dict | None, lists: list[list[str]], weight: float,
                  weighting: str | None) -> dict[str, np.ndarray]:
        tok = self.tokenizer
        placeholder = tok.image_token_ids.image
        tokens: list[int] = []
        masks: list[float] = []
        subseg: list[int] = []
        multi = len(lists) > 1
        if weighting == "root_subsegments" and multi:
            weight = weight * math.sqrt(1.0 / len(lists))
        elif weighting not in (None, "root_subsegments"):
            raise ValueError(f"unknown multi_annotation_weighting {weighting!r}")
        for k, conversation in enumerate(lists):
            if not conversation:
                raise ValueError(f"conversation {k} is empty")
            for m, text in enumerate(conversation):
                ids = tok.encode(text)
                is_answer = m % 2 == 1
                if is_answer:
                    ids = ids + [tok.eos_token_id]
                tokens += ids
                masks += [weight if is_answer else 0.0] * len(ids)
                subseg += [k + 1] * len(ids)

        image_at = 0
        if img is not None:
            block = list(img["image_tokens"])
            if placeholder in tokens:  # the image goes where `<|image|>` is; otherwise at the start
                image_at = tokens.index(placeholder)
                del tokens[image_at], masks[image_at], subseg[image_at]
            tokens[image_at:image_at] = block
            masks[image_at:image_at] = [0.0] * len(block)
            subseg[image_at:image_at] = [IMAGE_SUBSEGMENT if image_at == 0 else image_at] * len(block)

        bos = tok.bos_token_id
        ends_with_eos = bool(tokens) and tokens[-1] == tok.eos_token_id
        if ends_with_eos:
            input_ids = [bos] + tokens[:-1]
            labels, loss = tokens, masks
            in_sub = [subseg[0]] + subseg[:-1]
        else:
            input_ids = [bos] + tokens
            labels, loss = tokens + [-1], masks + [0.0]
            in_sub = [subseg[0]] + subseg
        self._check_length(len(input_ids))
        out = {
            "input_ids": np.array(input_ids, np.int64),
            "labels": np.array(labels, np.int64),
            "loss_masks": np.array(loss, np.float32),
        }
        sub = np.array(in_sub, np.int64)
        if multi:
            out["subsegment_ids"] = sub
            out["position_ids"] = subsegment_positions(sub)
        else:
            out["position_ids"] = np.arange(len(input_ids), dtype=np.int64)
        if img is not None:
            out.update(self._shifted_image(img, 1 + image_at))
        return out

    # ---------------------------------------------------------------- chat template
    @staticmethod
    def apply_chat_template(messages: list[dict[str, Any]]) -> str:
        """HF-style messages (content as a string or parts `{"type": "image"|"text"}`) -> prompt text in the
        released format; multi-turn histories become alternating ` User: … Assistant: …` turns."""
        parts: list[str] = []
        for msg in messages:
            role = msg.get("role")
            content = msg.get("content", "")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if p.get("type") == "text").strip()
            if role in ("system",):
                continue
            if role == "user":
                parts.append(f" User: {content} Assistant:")
            elif role == "assistant":
                parts.append(f" {content}")
            else:
                raise ValueError(f"unknown message role {role!r}")
        if not parts or messages[-1].get("role") != "user":
            raise ValueError("the last message must come from the user")
        return "".join(parts)


def subsegment_positions(sub: np.ndarray) -> np.ndarray:
    """position_i = #{j <= i : sub_j >= sub_i} - 1 — every conversation continues right after the image."""
    pos = np.empty(len(sub), np.int64)
    for i, s in enumerate(sub):
        pos[i] = int((sub[: i + 1] >= s).sum()) - 1
    return pos
