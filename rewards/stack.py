"""The PARTNER reward: r = w_e·r_e + w_f·r_f + w_c·r_c + w_m·r_m (+ w_n·r_n + w_pref·r_pref), per sample (paper §5.5).

r_n, the novelty penalty (``rewards.novelty``), and r_pref, the preference-model gain
(``rewards.preference``), are ours, not the paper's: off unless ``w_novelty`` / ``w_preference`` > 0.
It remembers recent episodes, so the stack has a ``state_dict`` for the RL trainer's checkpoints.

``RewardStack(cfg)(seekers, originals, rewrites, edits)`` returns a ``RewardOutput`` with the
weighted total and every enabled component unweighted (plus the parts behind them: f_e before and
after, each mechanism's unweighted change ``empathy_ER/IP/EX``, the forward and reverse MI terms),
each one float per sample, ready to log. A component with weight 0 is neither computed nor loaded
(the paper's ablations). Models load lazily, once; the reference LM, the MI forward LM and the
reverse model's base share one copy when their names match.

Each component is also a standalone reward function with the same signature
(``stack.components["fluency"](seekers, originals, rewrites, edits)``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from classifiers.reverse import default_path

from .coherence import CoherenceReward
from .config import RewardConfig
from .edit import check_batch
from .empathy import EmpathyReward
from .fluency import FluencyReward
from .lm import FrozenLM
from .mi import MutualInformationReward
from .novelty import NoveltyPenalty
from .trl import as_trl_reward

log = logging.getLogger(__name__)

COMPONENTS = ("empathy", "fluency", "coherence", "mi", "guard", "novelty", "context", "fit", "preference")


@dataclass
class RewardOutput:
    """What every reward function of the toolkit returns: one weighted total per sample, and the parts."""

    total: list[float]
    components: dict[str, list[float]] = field(default_factory=dict)  # enabled components, unweighted
    weights: dict[str, float] = field(default_factory=dict)
    details: dict[str, list[float]] = field(default_factory=dict)  # empathy_before/after, mi_forward/reverse

    def __len__(self) -> int:
        return len(self.total)

    def means(self, prefix: str = "reward/") -> dict[str, float]:
        """Batch means of the total, every component and detail, for a logger."""
        out = {f"{prefix}total": _mean(self.total)}
        for name, vals in {**self.components, **self.details}.items():
            out[f"{prefix}{name}"] = _mean(vals)
        return out

    def rows(self) -> list[dict[str, float]]:
        """One dict per sample: total, components, details."""
        cols = {"total": self.total, **self.components, **self.details}
        return [{k: v[i] for k, v in cols.items()} for i in range(len(self.total))]


def _mean(vals) -> float:
    return sum(vals) / len(vals) if vals else math.nan


def _pick(explicit: str, run_dir: str | None, stage: str, shipped: str) -> str | None:
    """An explicit folder; else the run's own stage output if complete; else the shipped model."""
    if explicit:
        return explicit
    if run_dir and (Path(run_dir) / stage / ".complete").exists():
        return str(Path(run_dir) / stage)
    return None if shipped == "" else shipped


class RewardStack:
    def __init__(self, cfg: RewardConfig | None = None, policy_backbone: str = "smollm2-135m",
                 reverse_backbone: str = "", run_dir: str | None = None, device: str | None = None,
                 empathy_scorer=None, coherence_scorer=None, lms: dict | None = None, preference_model=None):
        """
        cfg: weights and switches. policy_backbone: p→ and the default reference / reverse base.
        run_dir: where ``partner-train`` stages wrote their models (used when cfg leaves paths empty).
        empathy_scorer / coherence_scorer: ready objects (tests, callers that hold them already).
        lms: {name: rewards.lm.FrozenLM} to reuse already loaded LMs.
        preference_model: a ready PreferenceModel (or anything with its ``score``) behind r_pref.
        """
        self.cfg = cfg = cfg or RewardConfig()
        self.weights = {"empathy": cfg.w_empathy, "fluency": cfg.w_fluency, "coherence": cfg.w_coherence,
                        "mi": cfg.w_mi, "novelty": cfg.w_novelty, "preference": cfg.w_preference}
        self.lms: dict = dict(lms or {})

        def lm(name: str):
            if name not in self.lms:
                self.lms[name] = FrozenLM(name, device=device)
            return self.lms[name]

        self.components: dict = {}
        if cfg.w_empathy:
            path = _pick(cfg.empathy_model, run_dir, "classifier", "")
            self.components["empathy"] = EmpathyReward(empathy_scorer, cfg.empathy_mode, cfg.batch_size, path, device)
        if cfg.w_fluency:
            self.components["fluency"] = FluencyReward(lm(cfg.reference_lm or policy_backbone),
                                                       cfg.max_response_tokens, cfg.batch_size)
        if cfg.w_coherence:
            path = _pick(cfg.coherence_model, run_dir, "coherence", "")
            self.components["coherence"] = CoherenceReward(coherence_scorer, path, device, cfg.coherence_empty,
                                                           max(cfg.batch_size, 64))
        if cfg.w_mi:
            forward = lm(policy_backbone)
            reverse = None
            if cfg.lambda_mi < 1:
                reverse = lm(reverse_backbone or policy_backbone)
                reverse.attach_reverse(_pick(cfg.reverse_model, run_dir, "reverse", str(default_path())))
            self.components["mi"] = MutualInformationReward(forward, reverse, cfg.lambda_mi, cfg.max_seeker_tokens,
                                                            cfg.max_response_tokens, cfg.batch_size)
        if cfg.w_novelty:
            self.components["novelty"] = NoveltyPenalty(cfg.novelty_window)
        if cfg.w_preference:
            from .preference import PreferenceReward

            path = _pick(cfg.preference_model, run_dir, "preference", "")
            self.components["preference"] = PreferenceReward(preference_model, path, device, max(cfg.batch_size, 32))

    @classmethod
    def from_config(cls, cfg, device: str | None = None, **kwargs) -> "RewardStack":
        """From a whole PartnerConfig (duck-typed: .rewards, .policy.backbone, .reverse.backbone, .run_dir)."""
        return cls(cfg.rewards, policy_backbone=cfg.policy.backbone, reverse_backbone=cfg.reverse.backbone,
                   run_dir=cfg.run_dir, device=device, **kwargs)

    def __call__(self, seekers, originals, rewrites, edits=None) -> RewardOutput:
        check_batch(seekers, originals, rewrites, edits)
        n = len(seekers)
        comps: dict[str, list[float]] = {}
        details: dict[str, list[float]] = {}
        for name, fn in self.components.items():  # one signature; a component's Scores may carry details
            scores = fn(seekers, originals, rewrites, edits)
            comps[name] = [float(x) for x in scores]
            details.update(getattr(scores, "details", {}))
        total = [sum(self.weights[k] * comps[k][i] for k in comps) for i in range(n)]
        return RewardOutput(total, comps, {k: self.weights[k] for k in comps}, details)

    def state_dict(self) -> dict:
        """The state of the stateful components (r_n's memory), for checkpoints; {} when none is on."""
        return {k: fn.state_dict() for k, fn in self.components.items() if hasattr(fn, "state_dict")}

    def load_state_dict(self, state: dict) -> None:
        for k, sub in state.items():
            if k in self.components and hasattr(self.components[k], "load_state_dict"):
                self.components[k].load_state_dict(sub)

    def trl_reward_funcs(self, **keys) -> tuple[list, list[float]]:
        """(reward_funcs, reward_weights) for TRL's GRPOTrainer: one function per enabled component,
        so TRL logs each one; pass the weights as GRPOConfig(reward_weights=...)."""
        names = list(self.components)
        return [as_trl_reward(self.components[k], name=k, **keys) for k in names], [self.weights[k] for k in names]
