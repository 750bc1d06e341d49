"""Short-answer metrics as the official evaluators compute them (recipe-spec §4.3): VQA v2 answer
normalisation and `vqa_score`, ANLS (theta 0.5), relaxed correctness (5 %), exact match, A-OKVQA direct
answer. Predictions are expected already post-processed (`text.postprocess_prediction`).
"""

from __future__ import annotations

import re
from collections import Counter

from molmo.eval.metrics.text import edit_distance

NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
# The VQA v2 evaluation's table of contractions written without their apostrophe.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
               "?", "!"]
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")  # a period not followed by a digit
_MAX_PERIODS = 32  # the official call passes re.UNICODE (= 32) as the count argument


def _punctuation(text: str) -> str:
    out = text
    has_number_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in PUNCTUATION:
        # Deleted where it touches a space (or in numbers like 1,000); otherwise it separates words.
        if f"{p} " in text or f" {p}" in text or has_number_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out, count=_MAX_PERIODS)


def _digits_and_articles(text: str) -> str:
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
    return " ".join(words)


def normalize_vqa_answer(answer: str) -> str:
    answer = answer.replace("\n", " ").replace("\t", " ").lower().strip()
    return _digits_and_articles(_punctuation(answer))


def vqa_score(prediction: str, references: list[str]) -> float:
    """min(#references equal to the prediction / 3, 1) after normalisation, over all references."""
    counts = Counter(normalize_vqa_answer(r) for r in references)
    return min(counts[normalize_vqa_answer(prediction)] / 3.0, 1)


def anls(prediction: str, references: list[str], threshold: float = 0.5) -> float:
    """Max over references of 1 - normalised Levenshtein (case-insensitive), 0 below the threshold."""
    best = 0.0
    for ref in references:
        longest = max(len(ref), len(prediction))
        if longest == 0:  # both empty: identical (the official code divides by zero here)
            best = max(best, 1.0)
            continue
        nl = edit_distance(ref.lower(), prediction.lower()) / longest
        best = max(best, 1 - nl if nl < threshold else 0.0)
    return best


def _to_float(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correctness(prediction: str, references: list[str], tolerance: float = 0.05) -> bool:
    """Numbers within 5 % of a non-zero target; otherwise case-insensitive string equality."""
    for ref in references:
        p, t = _to_float(prediction), _to_float(ref)
        if p is not None and t:
            ok = abs(p - t) / abs(t) <= tolerance
        else:
            ok = prediction.lower() == ref.lower()
        if ok:
            return True
    return False


def exact_match(prediction: str, references: list[str]) -> bool:
    return prediction.lower() in [r.lower() for r in references]


def a_okvqa_score(prediction: str, references: list[str]) -> float:
    counts = Counter(r.lower().strip() for r in references)
    return min(counts[prediction.lower().strip()] / 3.0, 1)
