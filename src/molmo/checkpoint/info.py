"""What a checkpoint folder tells its users about the model: `model_info.json` beside `config.json`.

    {"name": "tiny-molmo", "version": "v3", "reads_images": false, "card": "MODEL_CARD.md",
     "summary": "a 12M-parameter model trained only on this project's synthetic shapes, clocks and bar charts"}

`reads_images` is the model card's verdict: false while the model's held-out scores are below the card's
"reads images" bar. The CLI, the server's `/v1/models` and the web page then print `notice()`, one line that
says so and names the card; flipping the flag to true (when a model passes) removes the line everywhere.
Folders without the file (released checkpoints, training outputs) carry no notice.

    info = ModelInfo.from_dir("src/molmo/assets/tiny-molmo")
    info.label, info.notice()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

INFO_FILE = "model_info.json"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str | None = None
    reads_images: bool | None = None  # None: the folder makes no claim
    summary: str | None = None
    card: Path | None = None  # the model card, if the folder has one

    @classmethod
    def from_dir(cls, path: str | Path, name: str | None = None) -> "ModelInfo":
        """The folder's `model_info.json` (a broken file is ignored rather than stopping the model from loading)."""
        path = Path(path)
        try:
            raw = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        card = path / str(raw.get("card", "MODEL_CARD.md"))
        reads = raw.get("reads_images")
        return cls(name=name or str(raw.get("name") or path.name), version=raw.get("version"),
                   reads_images=reads if isinstance(reads, bool) else None, summary=raw.get("summary"),
                   card=card if card.is_file() else None)

    @property
    def label(self) -> str:
        """The model's name as users see it: `tiny-molmo (v3)`."""
        return f"{self.name} ({self.version})" if self.version else self.name

    def notice(self, show_path: bool = True) -> str | None:
        """One line while the model is known not to read images; None otherwise. `show_path=False` names the
        card without this machine's path (for remote clients)."""
        if self.reads_images is not False:
            return None
        what = f"{self.label} is {self.summary}" if self.summary else f"{self.label} is a small model"
        card = f"; see {self.card if show_path else self.card.name}" if self.card else ""
        return (f"note: {what}. Its held-out scores are below its model card's 'reads images' bar, so its "
                f"answers are not reliable{card}")

    def to_dict(self, show_path: bool = True) -> dict:
        return {"name": self.name, "label": self.label, "version": self.version, "reads_images": self.reads_images,
                "notice": self.notice(show_path),
                "card": (str(self.card) if show_path else self.card.name) if self.card else None}
