"""The `captions` generator: long and short captions (and transcripts for documents) written from the scene
description of another generator's image, plus CapQA-style question/answer pairs derived from the same
facts. Nothing is invented beyond what the scene says, so captions are exact. Long captions of point scenes open
with the amount of each colour and shape ("Counted by colour: red 3, blue 1; by shape: ...").

    item = generate_one("captions", seed=0, index=2, source="clocks")
    molmo data generate captions --n 500 --out data/captions          # source defaults to "points"
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from molmo.data.generators.base import GeneratedImage, get_generator, register
from molmo.data.generators.scenes import PLURAL

OPENERS = ["The image shows {x}.", "This picture contains {x}.", "In this image there is {x}.",
           "We can see {x}.", "The picture shows {x}.", "Shown here is {x}."]
CONNECT = ["There is also {x}.", "It also has {x}.", "Next to that is {x}.", "We can also see {x}.", "{X}."]
SHORT = ["{x}.", "An image of {x}.", "A picture showing {x}.", "{X}, rendered on a plain canvas."]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def long_caption(facts: list[str], rng: np.random.Generator) -> str:
    if not facts:
        return "An empty image."
    order = [facts[0]] + [facts[i] for i in rng.permutation(np.arange(1, len(facts)))]
    parts = [str(rng.choice(OPENERS)).format(x=order[0])]
    for fact in order[1:]:
        parts.append(str(rng.choice(CONNECT)).format(x=fact, X=_cap(fact)))
    return " ".join(parts)


def tally_sentence(objects: list[dict], rng: np.random.Generator) -> str:
    """Amounts per colour and per shape, each label right before its number ("red 3"): the caption states how
    many of each kind the image holds, in the order a model can learn to read from the image."""
    colours, shapes = Counter(o["colour"] for o in objects), Counter(o["shape"] for o in objects)
    by_colour = ", ".join(f"{c} {colours[c]}" for c in rng.permutation(sorted(colours)))
    by_shape = ", ".join(f"{PLURAL[s]} {shapes[s]}" for s in rng.permutation(sorted(shapes)))
    return f"Counted by colour: {by_colour}; by shape: {by_shape}."


def short_caption(facts: list[str], rng: np.random.Generator) -> str:
    first = facts[0] if facts else "an empty image"
    return _cap(str(rng.choice(SHORT)).format(x=first, X=_cap(first)))


def scene_qa(scene: dict, rng: np.random.Generator) -> list[dict]:
    """Questions answerable from the scene description alone."""
    qa = []
    if scene.get("generator") == "points" and scene.get("objects"):
        objs = scene["objects"]
        colours = Counter(o["colour"] for o in objs)
        shapes = Counter(o["shape"] for o in objs)
        c = str(rng.choice(sorted(colours)))
        qa.append({"question": f"How many {c} objects are in the image?", "answer": str(colours[c]), "metric": "exact"})
        qa.append({"question": "How many shapes are there in total?", "answer": str(len(objs)), "metric": "exact"})
        s = str(rng.choice(sorted(shapes)))
        present = sorted({o["colour"] for o in objs if o["shape"] == s})
        if len(present) == 1:
            qa.append({"question": f"What colour is the {s}?" if shapes[s] == 1 else f"What colour are the {s}s?",
                       "answer": present[0], "metric": "exact"})
        qa.append({"question": "What kind of background does the image have?", "answer": scene["background"],
                   "metric": "exact"})
    elif scene.get("generator") == "clocks":
        qa.append({"question": "What time does the clock show?", "answer": f"{scene['hour']}:{scene['minute']:02d}",
                   "metric": "clock"})
        qa.append({"question": "What shape is the clock face?", "answer": scene["dial"], "metric": "exact"})
    elif scene.get("generator") == "docs":
        qa.append({"question": "What kind of document or chart is this?", "answer": scene["kind"].replace("_", " "),
                   "metric": "exact"})
    return qa


@register("captions")
def generate_captions(rng: np.random.Generator, index: int, source: str = "points", **options) -> GeneratedImage:
    if source == "captions":
        raise ValueError("the captions generator needs another generator as its source")
    item = get_generator(source)(rng, index, **options)
    facts = item.scene.get("caption_facts", [])
    caption = long_caption(facts, rng)
    if item.scene.get("objects"):
        caption = tally_sentence(item.scene["objects"], rng) + " " + caption  # first: never truncated
    lines = [{"task": "caption", "answer": caption},
             {"question": "Write a short caption for this image.", "answer": short_caption(facts, rng)}]
    if item.scene.get("transcript"):
        lines.append({"question": "Transcribe the text in this image.", "answer": item.scene["transcript"],
                      "metric": "anls"})
    lines += scene_qa(item.scene, rng)
    scene = {**item.scene, "source": source, "generator": "captions", "source_generator": source}
    return GeneratedImage(image=item.image, annotations=lines, scene=scene)
