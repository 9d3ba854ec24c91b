"""The public Python API: what ``from partner import ...`` gives, each built with ``from_pretrained``.

    from partner import EmpathyScorer, Rewriter
    rewriter = Rewriter.from_pretrained("models/policy_rl")
    result = rewriter.rewrite("I lost my job and I feel useless.", "You will find another one.")
    scorer = EmpathyScorer.from_pretrained("models/epitome")
    print(result.text, result.edits, scorer.score([result.seeker_post], [result.text])[0].total)

Thin wrappers over the classes the console scripts use (``partner.rewriters``,
``classifiers.scorer``, ``rewards.stack``), configured from the same YAML recipes; nothing here
that the CLI does differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from classifiers.scorer import EmpathyResult, EmpathyScorer
from partner import rewriters
from partner.config import DEFAULT_CONFIG, load_config
from rewards import stack

__all__ = ["EmpathyResult", "EmpathyScorer", "Rewrite", "Rewriter", "RewardStack"]


@dataclass
class Rewrite:
    """One rewritten response: ``text``, and ``edits`` that turn ``response`` into it
    (``[{"action": "insert" | "replace", "position": i, "sentence": "..."}]``, as partner-rewrite writes
    them; ``partner.edits.apply_edits(response, edits) == text``)."""

    seeker_post: str
    response: str
    text: str
    edits: list[dict]


class Rewriter:
    """Rewrites peer-support responses to be more empathic, as ``partner-rewrite`` does.

    ``Rewriter.from_pretrained(path)`` loads a trained policy folder (``models/policy_rl``, the
    shipped default; ``models/policy``, the warm start; a ``partner-train`` output) with the rewrite
    settings of a config (``configs/default.yaml`` unless ``config`` is given): the sentence guard on,
    the policy's greedy episode, retrieved and zero-shot sentences ranked by the preference model
    (``overrides=["rewrite.pool=[policy]"]``: the policy alone). ``method`` picks a baseline instead
    (``template``, ``retrieval``, ``zeroshot``, ``identity``; see ``partner.rewriters``).
    """

    def __init__(self, method: rewriters.Rewriter):
        self.method = method

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, method: str = "partner", config: str | Path | None = None,
                        overrides: list[str] | tuple[str, ...] = (), device: str | None = None) -> "Rewriter":
        """``path``: a policy folder (default: the shipped agent); ``overrides``: ``["rewrite.candidates=4"]``
        style, as ``--set`` on the command line."""
        cfg = load_config(config or DEFAULT_CONFIG, list(overrides))
        return cls(rewriters.build_rewriter(method, cfg, model=str(path) if path else None, device=device))

    def rewrite(self, seeker_post, response, seed: int | None = None):
        """One ``Rewrite`` for a (seeker post, response) pair of strings; a list of them for two lists."""
        if isinstance(seeker_post, str):
            return self.rewrite([seeker_post], [response], seed)[0]
        seekers, responses = list(seeker_post), list(response)
        out = self.method.rewrite(seekers, responses, seed=seed)
        return [Rewrite(s, r, text, edits) for s, r, (text, edits) in zip(seekers, responses, out)]


class RewardStack(stack.RewardStack):
    """The PARTNER reward (``rewards.stack.RewardStack``): change in empathy, fluency, coherence and
    mutual information, weighted as a config says; call it on batches,
    ``stack(seekers, originals, rewrites) -> RewardOutput`` (``.total`` and every component)."""

    @classmethod
    def from_pretrained(cls, config: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                        device: str | None = None) -> "RewardStack":
        """The reward of a recipe (``configs/default.yaml`` unless ``config`` is given) with its shipped
        scorers (``models/epitome``, ``models/coherence``, ``models/reverse``); models load on first use."""
        return cls.from_config(load_config(config or DEFAULT_CONFIG, list(overrides)), device=device)
