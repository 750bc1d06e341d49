"""Research beside the molmo library: experiments and probes that import the library and are never imported
by it (nor shipped in its wheel). Run them from the repository root, e.g. `python -m research.tiny_molmo.decoder_check`."""
