"""PARTNER: empathic rewriting for online mental-health peer support.

Three packages on one base, one import direction: ``partner`` (agent, product, CLI) -> ``rewards``
(reward functions over batches) -> ``classifiers`` (trainable scorers) -> ``core`` (the shared
foundations: model registry, text, corpora, configs, JSONL I/O, provenance). Nothing heavy
happens at import time.
"""

__version__ = "0.1.0"
