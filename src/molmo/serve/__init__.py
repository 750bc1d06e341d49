"""Serving Molmo: the one-shot CLI commands (`commands`), the OpenAI-compatible server and web page
(`server`, `static/index.html`), dynamic batching (`batcher`), point overlays (`draw`) and the bundled sample
images (`samples`). The Python API itself is `molmo.api`."""
