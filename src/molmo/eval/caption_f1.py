"""Caption F1: split captions into atomic statements and judge them. Precision = share of the generated
caption's statements supported by the reference captions; recall = share of the reference statements covered
by the generated caption; F1 = harmonic mean (recipe-spec §4.3, "cap F1"; the paper's GPT-4o protocol is
unverified, so the judge is pluggable).

Judges implement `supported(statements, evidence) -> list[bool]`:
- `ExactJudge()`: a statement is supported if, after normalisation, it equals a statement of the evidence; for
  generated captions whose scene facts are known, pass the facts as the references;
- `ChatJudge(url, model, api_key=None)`: asks an OpenAI-compatible `/chat/completions` endpoint, which must
  reply with a JSON list of true/false, one per statement.

    facts = ["There is a red circle.", "The background is white."]
    caption_f1("There is a red circle. It is big.", facts, ExactJudge())  # precision .5, recall .5
"""

from __future__ import annotations

import json
import re
from typing import Protocol, Sequence

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE = re.compile(r",\s+(?:and|but|while|whereas)\s+|\s+and\s+(?=(?:there|it|they|the|a|an)\b)", re.I)
_ARTICLES = {"a", "an", "the"}


class JudgeError(RuntimeError):
    """The judge endpoint failed or replied with something other than one verdict per statement."""


def split_statements(caption: str) -> list[str]:
    """Sentences, then coordinated clauses ("…, and …"), stripped of trailing punctuation; empty ones dropped."""
    out = []
    for sentence in _SENTENCE.split(caption.strip()):
        for clause in _CLAUSE.split(sentence):
            clause = clause.strip().rstrip(".!?;,").strip()
            if re.search(r"\w", clause):
                out.append(clause)
    return out


def normalize_statement(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


class Judge(Protocol):
    def supported(self, statements: Sequence[str], evidence: Sequence[str]) -> list[bool]: ...


class ExactJudge:
    def supported(self, statements: Sequence[str], evidence: Sequence[str]) -> list[bool]:
        known = {normalize_statement(s) for text in evidence for s in split_statements(text)}
        return [normalize_statement(s) in known for s in statements]


JUDGE_INSTRUCTION = ("You check statements about an image against reference descriptions of that image. For each "
                     "numbered statement answer true if the references support it, else false. Reply with only a "
                     "JSON list of booleans, one per statement, in order.")


class ChatJudge:
    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"judge url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout

    def supported(self, statements: Sequence[str], evidence: Sequence[str]) -> list[bool]:
        import httpx

        if not statements:
            return []
        refs = "\n\n".join(f"Reference {i + 1}: {e}" for i, e in enumerate(evidence))
        numbered = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(statements))
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": JUDGE_INSTRUCTION},
                             {"role": "user", "content": f"{refs}\n\nStatements:\n{numbered}"}]}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            resp = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
            raise JudgeError(f"judge request to {self.url} failed: {e}") from e
        return _parse_verdicts(content, len(statements))


def _parse_verdicts(content: str, n: int) -> list[bool]:
    m = re.search(r"\[[^\[\]]*\]", content)
    try:
        verdicts = json.loads(m.group(0).lower()) if m else None
    except json.JSONDecodeError:
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != n:
        raise JudgeError(f"judge reply is not a JSON list of {n} booleans: {content[:200]!r}")
    return [bool(v) for v in verdicts]


def caption_f1(prediction: str, references: Sequence[str], judge: Judge) -> dict[str, float]:
    """Precision / recall / F1 of one caption (0 when a side has no statements)."""
    pred_statements = split_statements(prediction)
    ref_statements = [s for r in references for s in split_statements(r)]
    precision = sum(judge.supported(pred_statements, references)) / len(pred_statements) if pred_statements else 0.0
    recall = sum(judge.supported(ref_statements, [prediction])) / len(ref_statements) if ref_statements else 0.0
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}
