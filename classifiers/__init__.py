"""Trainable scorers (EPITOME empathy, coherence, reverse LM) and the toolkit's base layer:
model registry (``registry``), text (``text``), corpora (``corpora``), configs (``configuration``)
and JSONL I/O (``jsonio``)."""
