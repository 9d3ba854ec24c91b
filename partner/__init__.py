"""PARTNER: empathic rewriting for online mental-health peer support.

Three packages on one base, one import direction: ``partner`` (agent, product, CLI) -> ``rewards``
(reward functions over batches) -> ``classifiers`` (trainable scorers) -> ``core`` (the shared
foundations: model registry, text, corpora, configs, JSONL I/O, provenance). Nothing heavy
happens at import time.

The Python API (``partner.api``), imported on first use so that ``import partner`` stays light::

    from partner import EmpathyScorer, Rewriter, RewardStack
    Rewriter.from_pretrained("models/policy_rl").rewrite(seeker_post, response)   # -> Rewrite(text, edits)
"""

__version__ = "0.1.0"

_API = ("EmpathyResult", "EmpathyScorer", "Rewrite", "Rewriter", "RewardStack")


def __getattr__(name: str):
    if name in _API:
        from partner import api

        return getattr(api, name)
    raise AttributeError(f"module 'partner' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
