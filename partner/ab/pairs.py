"""Preference pairs from any ``partner-ab`` study: raters' answers joined with the key and the texts.

A study is three things: the rating files (the page's CSV or JSON, or a survey export in the long
or wide format), the key (``key.json``: which system was on side A and B of each item, which
input it came from) and the package (``package/items.csv``: the seeker post and the two replies
each rater saw). :func:`load_preference_pairs` joins them into one :class:`PreferencePair` per
rating and question, with the harm flag of the same rating attached. The ratings are read and
checked by :mod:`partner.ab.analyze` (a rating that does not fit the key is an error naming the
file and line), and raters who fail attention checks are left out as ``partner-ab analyze`` does.

These pairs are what ``partner-train preference`` learns from.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from core.jsonio import DataError, UsageError

from .analyze import HARM, _check_raters, load_key, read_ratings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreferencePair:
    seeker_post: str
    reply_a: str
    reply_b: str
    question: str           # "overall", "empathy", "fluency", "specificity"
    answer: str             # "A", "B" or "tie"
    rater: str
    item_id: str
    input: str              # the key's input id (the seeker post): split by it, never by item
    system_a: str
    system_b: str
    harm: str | None        # the same rater's harm flag for the item ("A", "B", "both", "none"), if asked
    study: str              # the package id
    where: str              # "file, line n" of the rating

    @property
    def decisive(self) -> bool:
        return self.answer in ("A", "B")


@dataclass(frozen=True)
class Study:
    """Where one study's files are: rating files, the key, and the package folder (default: next to the key)."""

    ratings: tuple[str, ...]
    key: str
    package: str | None = None


def read_package_items(package: str | Path, package_id: str) -> dict[str, dict[str, str]]:
    """item_id -> {seeker_post, response_a, response_b} from a package's ``items.csv``."""
    path = Path(package)
    if path.is_dir():
        path = path / "items.csv"
    if not path.exists():
        raise FileNotFoundError(f"package file {path} does not exist (pass the package folder export wrote)")
    items: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        need = ("item_id", "seeker_post", "response_a", "response_b")
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(path, 1, None, f"lacks the column(s) {missing}; expected the items.csv written by "
                            "partner-ab export")
        for line, row in enumerate(reader, start=2):
            pid = row.get("package_id")
            if pid not in (None, "") and pid != package_id:
                raise DataError(path, line, "package_id", f"is {pid!r} but the key is for {package_id!r}")
            items[row["item_id"]] = {k: row[k] for k in need[1:]}
    return items


def load_preference_pairs(rating_files: Iterable[str | Path], key: str | Path | dict[str, Any],
                          package: str | Path | None = None, questions: Iterable[str] | None = None,
                          max_failed_checks: int = 0, keep_latest: bool = False) -> list[PreferencePair]:
    """One pair per rating and preference question of one study (attention checks left out).

    ``key`` is the key file (or its parsed dict, then ``package`` is required); ``package`` defaults to
    ``package/`` next to the key. ``questions`` keeps only those questions (default: every one answered).
    """
    if isinstance(key, dict):
        if package is None:
            raise DataError("package", None, None, "is required when the key is given as a dict")
        key_obj = key
    else:
        key_obj = load_key(key)
        package = package if package is not None else Path(key).parent / "package"
    files = [str(f) for f in rating_files]
    if not files:
        raise DataError("ratings", None, None, "no rating files given")
    texts = read_package_items(package, key_obj["package_id"])
    loaded = read_ratings(files, key_obj, keep_latest=keep_latest)
    excluded, _ = _check_raters(loaded.ratings, key_obj, max_failed_checks)
    for rater in sorted(excluded):
        log.warning("rater %r excluded from the pairs: failed more than %d attention check(s)", rater,
                    max_failed_checks)
    wanted = set(questions) if questions is not None else None
    harm: dict[tuple[str, str], str] = {}
    by_item: dict[tuple[str, str], list] = defaultdict(list)
    for r in loaded.ratings:
        if r.rater in excluded:
            continue
        if r.question == HARM:
            harm[(r.rater, r.item)] = r.answer
        elif wanted is None or r.question in wanted:
            by_item[(r.rater, r.item)].append(r)
    pairs = []
    for (rater, item), ratings in by_item.items():
        k = key_obj["items"][item]
        if k["is_attention_check"]:
            continue
        if item not in texts:
            raise DataError(ratings[0].where.split(",")[0], None, "item_id",
                            f"{item!r} is in the key but not in the package's items.csv ({package}): wrong package?")
        t = texts[item]
        for r in ratings:
            pairs.append(PreferencePair(seeker_post=t["seeker_post"], reply_a=t["response_a"], reply_b=t["response_b"],
                                        question=r.question, answer=r.answer, rater=rater, item_id=item,
                                        input=k["input"], system_a=k["system_a"], system_b=k["system_b"],
                                        harm=harm.get((rater, item)), study=key_obj["package_id"], where=r.where))
    pairs.sort(key=lambda p: (p.item_id, p.rater, p.question))
    return pairs


def load_studies(studies: Iterable[Study], **kwargs) -> list[PreferencePair]:
    """Pairs of several studies, concatenated (each with its own key and package)."""
    out: list[PreferencePair] = []
    for s in studies:
        out += load_preference_pairs(s.ratings, s.key, s.package, **kwargs)
    return out


def study_dirs(root: str | Path) -> list[Study]:
    """Studies laid out as ``ROOT/*/key.json``, ``ROOT/*/package/``, ``ROOT/*/ratings/*.{csv,json}``.

    ``ROOT`` may itself be one such study folder.
    """
    root = Path(root)
    folders = [root] if (root / "key.json").exists() else sorted(p.parent for p in root.glob("*/key.json"))
    if not folders:
        raise FileNotFoundError(f"no study under {root}: expected key.json in it or in its subfolders")
    out = []
    for f in folders:
        ratings = sorted(str(p) for p in (f / "ratings").glob("*") if p.suffix.lower() in (".csv", ".json"))
        if not ratings:
            raise FileNotFoundError(f"{f / 'ratings'} holds no rating files (*.csv, *.json)")
        out.append(Study(tuple(ratings), str(f / "key.json"), str(f / "package")))
    return out


def source_of(input_id: str) -> str:
    """The corpus an input id comes from: its prefix (``epi-...`` -> ``epi``, ``esc-...`` -> ``esc``)."""
    return input_id.split("-", 1)[0] if "-" in input_id else ""


def split_inputs(inputs: Iterable[str], heldout_fraction: float, seed: int, folds: int = 0,
                 fold: int = 0) -> tuple[set[str], set[str]]:
    """(train, held-out) sets of input ids: a seeded share of each source's posts is held out, so
    every corpus (EPITOME, ESConv) is on both sides and no post is on both. ``folds`` ≥ 2: grouped
    cross-validation instead; each source's posts are dealt in seeded order into ``folds`` folds and
    fold ``fold`` is held out (``heldout_fraction`` is then unused), so the folds of one seed
    partition the posts."""
    import numpy as np

    if folds:
        if folds < 2 or not 0 <= fold < folds:
            raise UsageError(f"preference.folds={folds}, preference.fold={fold}: expected folds >= 2 and "
                             "0 <= fold < folds (or folds=0)")
    elif not 0 < heldout_fraction < 1:
        raise UsageError(f"heldout_fraction is {heldout_fraction}; expected a share between 0 and 1")
    by_source: dict[str, list[str]] = defaultdict(list)
    for i in sorted(set(inputs)):
        by_source[source_of(i)].append(i)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for source in sorted(by_source):
        ids = by_source[source]
        order = rng.permutation(len(ids)).tolist()
        if folds:
            held |= {ids[j] for n, j in enumerate(order) if n % folds == fold}
            continue
        k = max(1, round(heldout_fraction * len(ids))) if len(ids) > 1 else 0
        held |= {ids[j] for j in order[:k]}
    return set().union(*by_source.values()) - held, held


@dataclass(frozen=True)
class ItemOutcome:
    """One compared item under one question: the majority of its raters (a split vote is a tie)."""

    seeker_post: str
    reply_a: str
    reply_b: str
    answer: str
    input: str
    system_a: str
    system_b: str
    harm: tuple[str, ...]   # every rater's harm flag for the item
    item_id: str


def item_outcomes(pairs: Iterable[PreferencePair], question: str = "overall") -> list[ItemOutcome]:
    from collections import Counter

    grouped: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        if p.question == question:
            grouped[p.item_id].append(p)
    out = []
    for item, ps in sorted(grouped.items()):
        c = Counter(p.answer for p in ps).most_common()
        answer = "tie" if len(c) > 1 and c[0][1] == c[1][1] else c[0][0]
        p = ps[0]
        out.append(ItemOutcome(p.seeker_post, p.reply_a, p.reply_b, answer, p.input, p.system_a, p.system_b,
                               tuple(q.harm for q in ps if q.harm is not None), item))
    return out


__all__ = ["ItemOutcome", "PreferencePair", "Study", "item_outcomes", "load_preference_pairs", "load_studies",
           "read_package_items", "source_of", "split_inputs", "study_dirs"]
