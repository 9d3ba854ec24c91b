"""Stage `preference`: a reward model learned from partner-ab ratings, into ``run_dir/preference``.

Reads every study under ``preference.ratings`` (default ``$PARTNER_DATA/ratings``), holds out a
share of the seeker posts (grouped by post, per corpus), trains Bradley-Terry on the ``overall``
question of the rest (plus any auxiliary questions), and records the split and the held-out
accuracy in ``preference.json``. ``partner-eval preference`` compares it with other predictors on
the same held-out posts. The shipped ``models/preference`` is a copy of this folder.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)


def ratings_root(cfg) -> Path:
    return Path(cfg.preference.ratings) if cfg.preference.ratings else Path(cfg.data_path()) / "ratings"


def feedback_pairs(spec: str) -> list:
    """Pairs from partner-serve choice logs (``preference.feedback``: comma-separated files), for training only: the
    held-out accuracy stays a measure on partner-ab ratings."""
    from partner.serve.feedback import load_feedback_pairs

    files = [f.strip() for f in spec.split(",") if f.strip()]
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"preference.feedback: no partner-serve log at {f}")
    pairs = load_feedback_pairs(files) if files else []
    if files:
        log.info("preference: %d pairs from %d partner-serve log(s) join the training pairs", len(pairs), len(files))
    return pairs


def examples_from_pairs(pairs, pcfg) -> list:
    """Training pairs: overall answers (ties per ``pcfg.ties``) plus decisive auxiliary answers."""
    from classifiers.preference import PairExample

    if pcfg.ties not in ("drop", "half"):
        raise ValueError(f"preference.ties is {pcfg.ties!r}; expected drop or half")
    out = []
    for p in pairs:
        if p.question == "overall":
            weight = 1.0
        elif p.question in pcfg.aux_questions:
            weight = pcfg.aux_weight
        else:
            continue
        if p.answer == "tie":
            if p.question == "overall" and pcfg.ties == "half":
                out.append(PairExample(p.seeker_post, p.reply_a, p.reply_b, 0.5, weight))
            continue
        win, lose = (p.reply_a, p.reply_b) if p.answer == "A" else (p.reply_b, p.reply_a)
        out.append(PairExample(p.seeker_post, win, lose, 1.0, weight))
    return out


def heldout_accuracy(model, outcomes) -> dict:
    """Share of decisive held-out items (majority overall answer) where the model scores the chosen reply higher."""
    decisive = [o for o in outcomes if o.answer in ("A", "B")]
    if not decisive:
        return {"n": 0, "accuracy": None}
    s = model.score([o.seeker_post for o in decisive] * 2,
                    [o.reply_a for o in decisive] + [o.reply_b for o in decisive])
    n = len(decisive)
    right = sum((s[i] > s[n + i]) == (o.answer == "A") for i, o in enumerate(decisive))
    return {"n": n, "accuracy": right / n}


def run(cfg, force: bool = False) -> Path:
    from core.jsonio import atomic_write_json, atomic_write_text
    from classifiers.preference import train
    from partner.ab.pairs import item_outcomes, load_studies, source_of, split_inputs, study_dirs

    out = Path(cfg.run_dir) / "preference"
    if (out / ".complete").exists() and not force:
        log.info("preference: %s is complete; skipping (--force retrains)", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    pcfg = cfg.preference
    studies = study_dirs(ratings_root(cfg))
    pairs = load_studies(studies)
    train_ids, held_ids = split_inputs({p.input for p in pairs}, pcfg.heldout_fraction, pcfg.split_seed,
                                       pcfg.folds, pcfg.fold)
    feedback = feedback_pairs(pcfg.feedback)
    examples = examples_from_pairs([p for p in pairs if p.input in train_ids] + feedback, pcfg)
    log.info("preference: %d ratings from %d studies; %d training pairs over %d posts, %d posts held out (%s)",
             sum(p.question == "overall" for p in pairs), len(studies), len(examples), len(train_ids), len(held_ids),
             dict(Counter(source_of(i) for i in held_ids)))
    record = {"data": {"studies": [s.key for s in studies], "train_inputs": len(train_ids),
                       "feedback_logs": [f.strip() for f in pcfg.feedback.split(",") if f.strip()],
                       "feedback_pairs": len(feedback),
                       "heldout_inputs": sorted(held_ids),
                       "note": "ratings by language-model raters working blind from the rubric, not clinicians"}}
    model = train(pcfg, examples, out, record)
    held = heldout_accuracy(model, item_outcomes([p for p in pairs if p.input in held_ids]))
    model.meta["heldout"] = held
    atomic_write_json(out / "preference.json", model.meta)
    log.info("preference: held-out accuracy on %d decisive overall items: %s", held["n"],
             f"{held['accuracy']:.3f}" if held["accuracy"] is not None else "n/a")
    atomic_write_text(out / ".complete", "ok\n")
    return out
