"""The PixMo data engine: raw examples, the Molmo formatter, point text, own-data JSONL, generators."""
