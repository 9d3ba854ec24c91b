"""PARTNER: empathic rewriting for online mental-health peer support.

Three packages, one import direction: ``partner`` (agent, product, CLI) -> ``rewards`` (reward
functions over batches) -> ``classifiers`` (trainable scorers plus the base layer: model registry,
text, corpora, configs, JSONL I/O). Nothing heavy happens at import time.
"""

__version__ = "0.1.0"
