"""Adapt a reward (or the whole stack) to TRL's ``reward_funcs`` calling convention.

TRL 1.16's GRPOTrainer calls each reward function as
``f(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=..., log_extra=...,
log_metric=...)`` and expects one float (or None) per completion (trl/trainer/grpo_trainer.py,
``_calculate_rewards``); it names the function by ``__name__``. Our rewards need the seeker post, the
original response and optionally the edit: they come from dataset columns (``seeker_key``,
``original_key``, ``edit_key``). Without a seeker column the prompt text is used as the seeker
post; without an original column the original is "" (r_e then measures the rewrite's own level).
Conversational completions (lists of messages) are reduced to the last message's content.
"""

from __future__ import annotations

from .edit import EditInfo


def _text(x) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, list) and x and isinstance(x[-1], dict):
        return str(x[-1].get("content", ""))
    if isinstance(x, dict):
        return str(x.get("content", ""))
    return "" if x is None else str(x)


class TRLReward:
    """A picklable callable with a ``__name__``, as TRL wants."""

    def __init__(self, fn, name: str | None = None, seeker_key: str = "seeker_post",
                 original_key: str = "response_post", edit_key: str = "edit"):
        self.fn = fn
        self.__name__ = name or getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__)
        self.seeker_key = seeker_key
        self.original_key = original_key
        self.edit_key = edit_key

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        completions = list(completions or [])
        n = len(completions)
        seekers = kwargs.get(self.seeker_key)
        if seekers is None:
            seekers = [_text(p) for p in (prompts or [""] * n)]
        originals = kwargs.get(self.original_key) or [""] * n
        raw_edits = kwargs.get(self.edit_key)
        edits = None if raw_edits is None else [EditInfo.from_dict(e) for e in raw_edits]
        out = self.fn(list(seekers), list(originals), [_text(c) for c in completions], edits)
        if hasattr(out, "total"):  # a RewardOutput: log every part, return the total
            log_metric = kwargs.get("log_metric")
            if log_metric is not None:
                for key, value in out.means(prefix="").items():
                    if key != "total":
                        log_metric(f"{self.__name__}/{key}", value)
            out = out.total
        return [float(x) for x in out]


def as_trl_reward(fn, name: str | None = None, seeker_key: str = "seeker_post", original_key: str = "response_post",
                  edit_key: str = "edit") -> TRLReward:
    """Wrap ``fn(seekers, originals, rewrites, edits)`` (a component or a RewardStack) for TRL."""
    return TRLReward(fn, name, seeker_key, original_key, edit_key)
