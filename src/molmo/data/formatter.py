"""The Molmo formatter: raw annotations -> message strings for the pre-processor (recipe-spec §1).

Every string carries its leading space. SFT (`message_format="role"`): ` User: [style: ]prompt Assistant:`
then ` answer`; pre-training (`message_format="none"`): the user string is only the style prefix with the
length hint (` long_caption 42:`) and the answer is the caption. Style tags follow recipe-spec §1.3: demo
styles (pointing, point_count, user_qa, long_caption) get their prefix 10 % of the time, android_control
never, every other style always. All randomness comes from a per-example RNG seeded with
`seed + index + dataset_size * epoch`, so every draw is reproducible.

Pre-training packs the caption and ONE randomly drawn transcript per image, in shuffled order; SFT packs every
annotation of the example (or `max_annotations` of them, drawn per use), shuffled. A question with several
reference answers is trained on the most frequent one, ties drawn at random (recipe-spec §1.6). Differences
from the released code (its bugs are not reproduced): a "no pointing" prefix goes on the matching counting
question, not always on the first question (CapQA bug); ScienceQA hints are not duplicated.

    fmt = Formatter(stage="sft", seed=50189)
    message_lists = fmt.format(example, index=7, epoch=0)   # [[" User: …", " …"], ...]
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from molmo.choices import Choice
from molmo.data.example import Annotation, RawExample
from molmo.text import templates
from molmo.text.points import NONE_TEXT, count_text, points_to_text
from molmo.text.prompts import assistant_turn, user_turn

DEMO_STYLES = {"point_count", "pointing", "user_qa", "long_caption"}
NEVER_PREFIX = {"android_control", "demo"}
EVAL_RENAMES = {"eval_short_answer": "vqa2", "eval_multiple_choice": "a_okvqa_mc"}
DEFAULT_INFERENCE_LENGTH = 65
# Styles whose "how many …" questions get a "no pointing" instruction: AskModelAnything (and own-data QA, which
# takes its style) and CapQA, where the released code adds it; counting datasets (TallyQA, VQA v2, …) do not.
NO_POINTING_STYLES = {"user_qa", "synthetic_qa"}
LETTERS = "ABCDEFG"
# Style used when an own-data line gives none.
DEFAULT_STYLE = {"qa": "user_qa", "point": "pointing", "count": "point_count", "caption": "long_caption",
                 "transcript": "transcript", "messages": "user_qa", "mc": "a_okvqa_mc"}


def length_hint(text: str, rng: np.random.RandomState) -> int:
    """(characters + int(N(0, 25))) // 15, no clipping."""
    return (len(text) + int(rng.normal(scale=25))) // 15


class Stage(Choice):
    PRETRAIN = "pretrain"  # `" <style> <length>:"` then the caption, no role tags (recipe-spec §1.2, §1.4)
    SFT = "sft"  # `" User: [<style>: ]<prompt> Assistant:"` then the answer


@dataclass
class Formatter:
    stage: Stage = Stage.SFT
    seed: int = 0
    dataset_size: int = 0
    shuffle_messages: bool = True
    # > 0: only this many of an example's annotations, drawn per (index, epoch), so an image reused over epochs
    # is asked something else each time (short sequences: one question per image in a grounding phase)
    max_annotations: int = 0

    def __post_init__(self) -> None:
        self.stage = Stage.parse(self.stage, "formatter stage")

    def rng(self, index: int, epoch: int = 0) -> np.random.RandomState:
        return np.random.RandomState(self.seed + index + self.dataset_size * epoch)

    # ------------------------------------------------------------------ public
    def format(self, example: RawExample, index: int = 0, epoch: int = 0) -> list[list[str]]:
        rng = self.rng(index, epoch)
        if self.stage == "pretrain":
            convs = [self._pretrain(a, rng) for a in pretrain_annotations(example, rng)]
        else:
            convs = [self.format_annotation(a, example.image_size, rng) for a in example.annotations]
        if 0 < self.max_annotations < len(convs):
            keep = sorted(rng.choice(len(convs), self.max_annotations, replace=False))
            convs = [convs[i] for i in keep]
        if self.shuffle_messages and len(convs) > 1:
            order = rng.permutation(len(convs))
            convs = [convs[i] for i in order]
        return convs

    def prompt(self, text: str, style: str | None, rng: np.random.RandomState | None = None) -> str:
        """The user string for one question with the style-prefix rule (inference uses it too)."""
        style = EVAL_RENAMES.get(style, style)
        prefix = self._style_prefix(style, rng)
        body = f"{prefix} {text}" if prefix and text else (prefix or text)
        return user_turn(body)

    # ------------------------------------------------------------------ pieces
    def _style_prefix(self, style: str | None, rng: np.random.RandomState | None) -> str | None:
        if not style or style in NEVER_PREFIX:
            return None
        if style in DEMO_STYLES:
            draw = rng.random() if rng is not None else 1.0
            return f"{style}:" if draw < 0.1 else None
        return f"{style}:"

    def _pretrain(self, a: Annotation, rng: np.random.RandomState) -> list[str]:
        style = "transcript" if a.kind == "transcript" else "long_caption"
        text = a.answer or ""
        if rng.random() > 0.10:
            prefix = f"{style} {length_hint(text, rng)}:"
        else:
            prefix = f"{style} :"  # the released code keeps this space before the colon
        return [f" {prefix}", f" {text}"]

    def format_annotation(self, a: Annotation, image_size, rng: np.random.RandomState) -> list[str]:
        style = a.style or DEFAULT_STYLE[a.kind]
        if a.kind == "messages":
            return self._messages(a, style, rng)
        question, answer = self.question_and_answer(a, image_size, rng)
        return [self.prompt(question, style, rng), f" {answer}"]

    def question_and_answer(self, a: Annotation, image_size, rng: np.random.RandomState) -> tuple[str, str]:
        kind = a.kind
        if kind in ("point", "count"):
            if image_size is None:
                raise ValueError("pointing/counting annotations need the image size to format points")
            label = (a.label or "").lower()
            pts = [p[:2] for p in (a.points or [])]
            table = templates.POINTING if kind == "point" else templates.POINT_COUNT
            question = a.question or table[rng.randint(len(table))].format(label=label)
            answer = points_to_text(pts, image_size, label) if kind == "point" else count_text(pts, image_size, label)
            return question, answer
        if kind == "caption":
            return a.question or templates.CAPTION[rng.randint(len(templates.CAPTION))], a.answer or ""
        if kind == "transcript":
            return a.question or templates.TRANSCRIPT[rng.randint(len(templates.TRANSCRIPT))], a.answer or ""
        if kind == "mc":
            return multiple_choice_prompt(a.question or "", a.options or [], letters=a.style != "ai2_diagram_no_letter"), \
                self._mc_answer(a)
        question = self._no_pointing(a.question or "", a.style, rng)
        if len(a.meta.get("answers") or ()) > 1:  # several reference answers: the most frequent, ties at random
            return question, select_best_answer([str(x) for x in a.meta["answers"]], rng)
        return question, a.answer if a.answer is not None else ""

    def _mc_answer(self, a: Annotation) -> str:
        idx = a.answer_idx if a.answer_idx is not None else (a.options or []).index(a.answer)
        return LETTERS[idx] if a.style != "ai2_diagram_no_letter" else (a.options or [])[idx].upper()

    @staticmethod
    def _no_pointing(question: str, style: str | None, rng: np.random.RandomState) -> str:
        if style in NO_POINTING_STYLES and re.fullmatch(r"how many.*", question.lower(), flags=re.S):
            return templates.NO_POINTING[rng.randint(len(templates.NO_POINTING))] + question
        return question

    def _messages(self, a: Annotation, style: str, rng: np.random.RandomState) -> list[str]:
        out = []
        for i, m in enumerate(a.messages or []):
            if m["role"] == "user":
                text = self._no_pointing(m["content"], style, rng)
                out.append(self.prompt(text, style, rng) if i == 0 else user_turn(text))
            else:
                out.append(assistant_turn(m["content"]))
        return out


def pretrain_annotations(example: RawExample, rng: np.random.RandomState) -> list[Annotation]:
    """What one pre-training example packs (recipe-spec §1.9, §3.2): its caption(s) and ONE transcript drawn at
    random (PixMo-Cap has several transcripts per image)."""
    captions = [a for a in example.annotations if a.kind == "caption"]
    transcripts = [a for a in example.annotations if a.kind == "transcript"]
    chosen = captions + ([transcripts[rng.randint(len(transcripts))]] if transcripts else [])
    if not chosen:
        raise ValueError(f"example {example.id!r} has no caption or transcript for pre-training")
    return chosen


def multiple_choice_prompt(question: str, options: list[str], letters: bool = True) -> str:
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options are supported, got {len(options)}")
    lines = [f"{LETTERS[i]}: {o}" for i, o in enumerate(options)] if letters else [o.upper() for o in options]
    return question + "\n" + "\n".join(lines) + "\n"


def select_best_answer(answers: list[str], rng: np.random.RandomState) -> str:
    """Most frequent answer string; ties broken uniformly at random (recipe-spec §1.6)."""
    counts = Counter(answers)
    best = max(counts.values())
    tied = sorted(a for a, c in counts.items() if c == best)
    return tied[rng.randint(len(tied))] if len(tied) > 1 else tied[0]


def inference_caption_prompt(length: int = DEFAULT_INFERENCE_LENGTH) -> str:
    """The captioner's pre-training-style prompt at inference (no role tags)."""
    return f" long_caption {length}:"


__all__ = ["Formatter", "NONE_TEXT", "length_hint", "multiple_choice_prompt", "pretrain_annotations",
           "select_best_answer"]
