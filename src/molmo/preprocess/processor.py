"""The pre-processor: image + text -> model inputs (arch-spec §1.8–1.9, §5.3). `encode` is the one entry
point for inference (the API, the server, evaluation) and training.

Inference: the prompt in the released format (`molmo.text.prompts`), image block at the start, BOS (= EOS
for Qwen2/OLMo) prepended. Training: already-formatted message strings (alternating user / assistant, with
their leading spaces) tokenised one by one, EOS after every assistant string, loss weight on assistant
tokens, input = [BOS] + tokens[:-1] and labels = tokens. Several conversations about one image
(`message_lists`) are packed with sub-segment ids and restarted position ids; `root_subsegments` multiplies
their loss weights by sqrt(1/n). The image is decoded once, here; the example's `image_size` is the
decoded image's (width, height).

    proc = MolmoProcessor(tokenizer, PreprocessorConfig.released(), max_sequence_length=4096)
    ex = proc.encode(image, prompt="Describe this image.", max_new_tokens=200)    # inference, a question
    ex = proc.encode(image, chat=[{"role": "user", "content": "Hi"}])              # inference, chat messages
    ex = proc.encode(image, message_lists=[[" User: Q Assistant:", " A"]])         # training
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from molmo.choices import AnnotationWeighting
from molmo.image.loading import DEFAULT_MAX_PIXELS, ImageSource, load_image
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.crops import make_crops
from molmo.preprocess.layout import image_layout
from molmo.text.context import check_context_length
from molmo.text.prompts import chat_prompt, format_prompt

IMAGE_SUBSEGMENT = 10000


class MolmoProcessor:
    """`max_sequence_length`: the model's context (None: unchecked); `max_pixels`: the largest image decoded."""

    def __init__(self, tokenizer: Any, config: PreprocessorConfig | None = None,
                 max_sequence_length: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.tokenizer = tokenizer
        self.config = config or PreprocessorConfig.released()
        self.max_sequence_length = max_sequence_length
        self.max_pixels = max_pixels

    # ---------------------------------------------------------------- image part
    def image_inputs(self, image: ImageSource, max_crops: int | None = None) -> dict[str, np.ndarray]:
        """Crops, masks, image token block and image_input_idx (relative to the block start)."""
        pixels = load_image(image, max_pixels=self.max_pixels)
        crops = make_crops(pixels, self.config, max_crops)
        tokens, idx = image_layout(crops, self.config, self.tokenizer.image_token_ids)
        return {"images": crops.images, "image_masks": crops.image_masks, "image_tokens": tokens,
                "image_input_idx": idx, "tiling": np.array(crops.tiling, np.int64),
                "image_size": np.array(pixels.shape[1::-1], np.int64)}

    # ---------------------------------------------------------------- examples
    def encode(self, image: ImageSource | None = None, prompt: str | None = None, *, style: str | None = None,
               text: str | None = None, chat: list[dict[str, Any]] | None = None,
               messages: list[str] | None = None, message_lists: list[list[str]] | None = None,
               max_crops: int | None = None, max_new_tokens: int = 0, weight: float = 1.0,
               multi_annotation_weighting: str | None = None) -> dict[str, np.ndarray]:
        """One example from exactly one of: `prompt` (a question, with the optional `style`), `text` (a
        prompt already in the model's format), `chat` (HF-style messages) -- inference, checked to leave room
        for `max_new_tokens` -- or `messages` (one formatted conversation) / `message_lists` (several) --
        training, with labels and loss weights."""
        given = [x is not None for x in (prompt, text, chat, messages, message_lists)]
        if sum(given) != 1:
            raise ValueError("pass exactly one of prompt=, text=, chat=, messages= or message_lists=")
        img = self.image_inputs(image, max_crops) if image is not None else None
        if messages is not None or message_lists is not None:
            lists = [messages] if messages is not None else message_lists
            return self._training(img, lists, weight, multi_annotation_weighting)
        if prompt is not None:
            text = format_prompt(prompt, style)
        elif chat is not None:
            text = chat_prompt(chat)
        return self._inference(img, self.tokenizer.encode(text), max_new_tokens)

    def _inference(self, img: dict | None, text: list[int], max_new_tokens: int) -> dict[str, np.ndarray]:
        bos = self.tokenizer.bos_token_id
        image_tokens = img["image_tokens"] if img is not None else np.zeros(0, np.int64)
        ids = np.concatenate([[bos], image_tokens, text]).astype(np.int64)
        check_context_length(len(ids), max_new_tokens, self.max_sequence_length)
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
        weighting = AnnotationWeighting.parse(weighting or "none", "multi_annotation_weighting")
        if weighting == AnnotationWeighting.ROOT_SUBSEGMENTS and multi:
            weight = weight * math.sqrt(1.0 / len(lists))
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
        check_context_length(len(input_ids), 0, self.max_sequence_length)
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


def subsegment_positions(sub: np.ndarray) -> np.ndarray:
    """position_i = #{j <= i : sub_j >= sub_i} - 1 — every conversation continues right after the image."""
    pos = np.empty(len(sub), np.int64)
    for i, s in enumerate(sub):
        pos[i] = int((sub[: i + 1] >= s).sum()) - 1
    return pos
