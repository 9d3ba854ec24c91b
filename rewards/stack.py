"""The PARTNER reward: r = w_e·r_e + w_f·r_f + w_c·r_c + w_m·r_m (+ w_g·r_g), per sample (paper §5.5).

r_g, the guard penalty (``rewards.sentence_guard``), r_n, the novelty penalty (``rewards.novelty``), r_x, the
post-specificity reward (``rewards.context``), and r_p, the post-fit reward (``rewards.fit``), are ours,
not the paper's: off unless ``w_guard`` / ``w_novelty`` / ``w_context`` / ``w_fit`` > 0. r_n, r_x and r_p
remember recent episodes, so the stack has a ``state_dict`` for the RL trainer's checkpoints.

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

from .config import RewardConfig
from .edit import check_batch

log = logging.getLogger(__name__)

COMPONENTS = ("empathy", "fluency", "coherence", "mi", "guard", "novelty", "context", "fit")


@dataclass
class RewardOutput:
    total: list[float]
    components: dict[str, list[float]]          # enabled components, unweighted
    weights: dict[str, float]
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
                 empathy_scorer=None, coherence_scorer=None, lms: dict | None = None, guard=None):
        """
        cfg: weights and switches. policy_backbone: p→ and the default reference / reverse base.
        run_dir: where ``partner-train`` stages wrote their models (used when cfg leaves paths empty).
        empathy_scorer / coherence_scorer: ready objects (tests, callers that hold them already).
        lms: {name: rewards.lm.FrozenLM} to reuse already loaded LMs.
        guard: the sentence guard behind r_g and r_p's copy checks (``rewards.sentence_guard.SentenceGuard``; its
        defaults when None).
        """
        from .lm import FrozenLM

        self.cfg = cfg = cfg or RewardConfig()
        self.weights = {"empathy": cfg.w_empathy, "fluency": cfg.w_fluency, "coherence": cfg.w_coherence,
                        "mi": cfg.w_mi, "guard": cfg.w_guard, "novelty": cfg.w_novelty,
                        "context": cfg.w_context, "fit": cfg.w_fit}
        self.lms: dict = dict(lms or {})

        def lm(name: str):
            if name not in self.lms:
                self.lms[name] = FrozenLM(name, device=device)
            return self.lms[name]

        self.components: dict = {}
        empathy = None
        if cfg.w_empathy or cfg.w_context:
            from .empathy import EmpathyReward

            path = _pick(cfg.empathy_model, run_dir, "classifier", "")
            empathy = EmpathyReward(empathy_scorer, cfg.empathy_mode, cfg.batch_size, path, device,
                                    weights=cfg.empathy_weights)
        if cfg.w_empathy:
            self.components["empathy"] = empathy
        if cfg.w_fluency:
            from .fluency import FluencyReward

            self.components["fluency"] = FluencyReward(lm(cfg.reference_lm or policy_backbone),
                                                       cfg.max_response_tokens, cfg.batch_size)
        if cfg.w_coherence:
            from .coherence import CoherenceReward

            path = _pick(cfg.coherence_model, run_dir, "coherence", "")
            self.components["coherence"] = CoherenceReward(coherence_scorer, path, device, cfg.coherence_empty,
                                                           max(cfg.batch_size, 64))
        if cfg.w_mi:
            from classifiers.reverse import default_path

            from .mi import MutualInformationReward

            forward = lm(policy_backbone)
            reverse = None
            if cfg.lambda_mi < 1:
                reverse = lm(reverse_backbone or policy_backbone)
                reverse.attach_reverse(_pick(cfg.reverse_model, run_dir, "reverse", str(default_path())))
            self.components["mi"] = MutualInformationReward(forward, reverse, cfg.lambda_mi, cfg.max_seeker_tokens,
                                                            cfg.max_response_tokens, cfg.batch_size)
        if cfg.w_guard:
            from .sentence_guard import GuardPenalty

            self.components["guard"] = GuardPenalty(guard)
        if cfg.w_novelty:
            from .novelty import NoveltyPenalty

            self.components["novelty"] = NoveltyPenalty(cfg.novelty_window, cfg.novelty_words)
        if cfg.w_context:
            from .context import ContextReward

            self.components["context"] = ContextReward(empathy)  # shares r_e's scorer and cache
        if cfg.w_fit:
            from .fit import PostFitReward

            self.components["fit"] = PostFitReward(name=cfg.fit_embedder, device=device, guard=guard)

    @classmethod
    def from_config(cls, cfg, device: str | None = None, **kwargs) -> "RewardStack":
        """From a whole PartnerConfig (duck-typed: .rewards, .policy.backbone, .reverse.backbone, .run_dir;
        r_g and r_p use the thresholds of .rewrite, the guard rewriting applies)."""
        if (cfg.rewards.w_guard or cfg.rewards.w_fit) and "guard" not in kwargs:
            from .sentence_guard import SentenceGuard

            kwargs["guard"] = SentenceGuard.from_config(cfg.rewrite)
        return cls(cfg.rewards, policy_backbone=cfg.policy.backbone, reverse_backbone=cfg.reverse.backbone,
                   run_dir=cfg.run_dir, device=device, **kwargs)

    def __call__(self, seekers, originals, rewrites, edits=None) -> RewardOutput:
        check_batch(seekers, originals, rewrites, edits)
        n = len(seekers)
        comps: dict[str, list[float]] = {}
        details: dict[str, list[float]] = {}
        for name, fn in self.components.items():
            if name == "empathy":
                before, after, change = fn.breakdown(seekers, originals, rewrites)
                comps[name] = [a - b for a, b in zip(after, before)]
                details["empathy_before"], details["empathy_after"] = before, after
                details.update({f"empathy_{m}": delta for m, delta in change.items()})
            elif name == "mi":
                fwd, rev = fn.parts(seekers, rewrites)
                lam = fn.lambda_mi
                comps[name] = [lam * f + (1 - lam) * r for f, r in zip(fwd, rev)]
                details["mi_forward"], details["mi_reverse"] = fwd, rev
            elif name in ("context", "fit"):
                own, other = fn.parts(seekers, originals, rewrites)
                comps[name] = [a - b for a, b in zip(own, other)]
                details[f"{name}_unrelated"] = other
            else:
                comps[name] = fn(seekers, originals, rewrites, edits)
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
        from .trl import as_trl_reward

        names = list(self.components)
        return [as_trl_reward(self.components[k], name=k, **keys) for k in names], [self.weights[k] for k in names]
