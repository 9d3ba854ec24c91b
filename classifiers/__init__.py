"""Trainable scorers: the EPITOME empathy classifier, the coherence classifier and the reverse
(response -> seeker) language model of the mutual-information reward. The base layer they build
on (registry, text, corpora, configs, JSONL I/O) is ``core``."""
