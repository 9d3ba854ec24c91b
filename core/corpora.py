"""Loaders for the public corpora: EPITOME Reddit, ESConv pairs, CounselChat; the grouped split.

Every loader takes any path (a user's copy from the public source works as well as
``../shared/data``), parses with a real CSV/JSON parser, and raises ``DataError`` naming the file,
line and field of the first bad record.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.jsonio import DataError, iter_json_objects

log = logging.getLogger(__name__)

MECHANISMS = ("ER", "IP", "EX")
EPITOME_FILES = {
    "ER": "emotional-reactions-reddit.csv",
    "IP": "interpretations-reddit.csv",
    "EX": "explorations-reddit.csv",
}
EPITOME_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales")


def default_data_dir() -> Path:
    """``$PARTNER_DATA``, else ``../shared/data`` from the repository root."""
    env = os.environ.get("PARTNER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class EpitomePair:
    sp_id: str
    rp_id: str
    seeker_post: str
    response_post: str
    levels: dict[str, int]  # mechanism -> 0/1/2
    rationales: dict[str, list[tuple[int, int]]]  # mechanism -> character spans in response_post

    @property
    def total(self) -> int:
        return sum(self.levels.values())


@dataclass
class LoadReport:
    rows: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # identical repeated rows, dropped
    conflicts: list[tuple[str, str, str, list[int]]] = field(default_factory=list)  # (mech, sp, rp, levels)
    incomplete_pairs: int = 0  # missing from at least one mechanism file, dropped
    rationales_not_found: int = 0
    pairs: int = 0

    def summary(self) -> str:
        return (f"{self.pairs} pairs; rows per file {self.rows}; {self.duplicates} duplicate rows dropped; "
                f"{len(self.conflicts)} conflicting duplicates resolved to the highest level; "
                f"{self.incomplete_pairs} pairs missing from a mechanism file dropped; "
                f"{self.rationales_not_found} rationale fragments not found in their response")


def _open_csv(path: Path):
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    fh = open(path, encoding="utf-8", newline="")
    reader = csv.DictReader(fh)
    return fh, reader


def rationale_spans(response: str, rationales: str) -> tuple[list[tuple[int, int]], int]:
    """Character spans of the '|'-separated rationale fragments in the response.

    Fragments are found left to right (a repeated fragment takes its next occurrence); matching
    falls back to case- and whitespace-insensitive search. Returns (spans, fragments not found).
    """
    spans: list[tuple[int, int]] = []
    missing = 0
    cursor = 0
    lowered = response.lower()
    for frag in (f.strip() for f in (rationales or "").split("|")):
        if not frag:
            continue
        start = response.find(frag, cursor)
        if start < 0:
            start = response.find(frag)
        end = start + len(frag)
        if start < 0:
            pattern = r"\s+".join(re.escape(w) for w in frag.lower().split())
            m = re.search(pattern, lowered)
            if m is None:
                missing += 1
                continue
            start, end = m.span()
        spans.append((start, end))
        cursor = end
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged, missing


def load_epitome(data_dir: str | os.PathLike | None = None) -> tuple[list[EpitomePair], LoadReport]:
    """The three EPITOME Reddit files joined per (sp_id, rp_id).

    Exact duplicate rows are dropped; duplicates with conflicting levels keep the highest level
    (with the union of their rationales) and are listed in the report; pairs absent from any of
    the three files are dropped and counted.
    """
    root = Path(data_dir) if data_dir else default_data_dir() / "epitome-reddit"
    if (root / "epitome-reddit").is_dir():
        root = root / "epitome-reddit"
    report = LoadReport()
    per_mech: dict[str, dict[tuple[str, str], list[tuple[int, str, str, str]]]] = {}
    for mech, fname in EPITOME_FILES.items():
        path = root / fname
        fh, reader = _open_csv(path)
        with fh:
            missing_cols = [c for c in EPITOME_COLUMNS if c not in (reader.fieldnames or [])]
            if missing_cols:
                raise DataError(path, 1, missing_cols[0], "column is missing from the header")
            rows: dict[tuple[str, str], list[tuple[int, str, str, str]]] = defaultdict(list)
            count = 0
            for rec in reader:
                line = reader.line_num
                for col in ("sp_id", "rp_id"):
                    if not (rec.get(col) or "").strip():
                        raise DataError(path, line, col, "is empty")
                try:
                    level = int(rec["level"])
                except (TypeError, ValueError):
                    raise DataError(path, line, "level", f"must be 0, 1 or 2, got {rec['level']!r}") from None
                if level not in (0, 1, 2):
                    raise DataError(path, line, "level", f"must be 0, 1 or 2, got {level}")
                key = (rec["sp_id"].strip(), rec["rp_id"].strip())
                rows[key].append((level, rec["rationales"] or "", rec["seeker_post"] or "", rec["response_post"] or ""))
                count += 1
            report.rows[mech] = count
            per_mech[mech] = rows

    keys = set.intersection(*(set(r) for r in per_mech.values()))
    all_keys = set.union(*(set(r) for r in per_mech.values()))
    report.incomplete_pairs = len(all_keys - keys)
    pairs: list[EpitomePair] = []
    # Order by first appearance in the ER file, so the list is deterministic.
    for key in [k for k in per_mech["ER"] if k in keys]:
        levels, spans = {}, {}
        seeker = response = None
        for mech in MECHANISMS:
            entries = per_mech[mech][key]
            distinct = {(lv, ra) for lv, ra, _, _ in entries}
            report.duplicates += len(entries) - len(distinct)
            lvls = sorted({lv for lv, _ in distinct})
            if len(lvls) > 1:
                report.conflicts.append((mech, key[0], key[1], lvls))
            levels[mech] = max(lvls)
            seeker, response = entries[0][2], entries[0][3]
            frags = "|".join(ra for lv, ra in sorted(distinct) if lv == levels[mech])
            spans[mech], missing = rationale_spans(response, frags)
            report.rationales_not_found += missing
        pairs.append(EpitomePair(key[0], key[1], seeker, response, levels, spans))
    report.pairs = len(pairs)
    log.info("EPITOME: %s", report.summary())
    return pairs, report


def split_of(group: str, seed: int = 13, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
             folds: int = 0, fold: int = 0) -> str:
    """'train' / 'dev' / 'test' for a group id, from a hash: stable across runs, machines and order.

    With ``folds`` = k > 0 (k-fold cross-validation) the hash cuts [0, 1) into k equal folds instead:
    fold ``fold`` is test, the fold before it (cyclically) is dev, the rest is train, and
    ``fractions`` is ignored. Ten folds keep the fixed split's 80:10:10, and fold 9 of 10 is the
    fixed split itself.
    """
    h = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:12], 16) / float(16 ** 12)
    if folds:
        check_fold(folds, fold)
        b = min(int(h * folds), folds - 1)
        return "test" if b == fold else "dev" if b == (fold - 1) % folds else "train"
    if h < fractions[0]:
        return "train"
    if h < fractions[0] + fractions[1]:
        return "dev"
    return "test"


def check_fold(folds: int, fold: int) -> None:
    if folds < 3:
        raise ValueError(f"cross-validation needs at least 3 folds (test, dev, train), got folds={folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got fold={fold}")


def grouped_split(items, group_key, seed: int = 13, fractions=(0.8, 0.1, 0.1), folds: int = 0,
                  fold: int = 0) -> dict[str, list]:
    """Split items so that every group (e.g. a seeker post) lands in exactly one split."""
    out: dict[str, list] = {"train": [], "dev": [], "test": []}
    for item in items:
        out[split_of(str(group_key(item)), seed, fractions, folds, fold)].append(item)
    return out


def epitome_splits(data_dir=None, seed: int = 13, folds: int = 0, fold: int = 0) -> dict[str, list[EpitomePair]]:
    pairs, _ = load_epitome(data_dir)
    return grouped_split(pairs, lambda p: p.sp_id, seed, folds=folds, fold=fold)


@dataclass
class Pair:
    """A (seeker post, response) pair from any corpus; ``meta`` keeps the corpus's other fields."""

    id: str
    seeker_post: str
    response_post: str
    meta: dict = field(default_factory=dict)


def load_esconv(path: str | os.PathLike | None = None) -> list[Pair]:
    path = Path(path) if path else default_data_dir() / "esconv" / "esconv-dev-pairs.jsonl"
    out = []
    for n, obj in iter_json_objects(path):
        for col in ("id", "seeker_post", "response_post"):
            if not isinstance(obj.get(col), str):
                raise DataError(path, n, col, "is missing or not a string")
        out.append(Pair(obj["id"], obj["seeker_post"], obj["response_post"],
                        {k: v for k, v in obj.items() if k not in ("id", "seeker_post", "response_post")}))
    return out


def load_counselchat(path: str | os.PathLike | None = None) -> list[Pair]:
    """CounselChat answers as (question title + text, answer) pairs, grouped by questionID."""
    path = Path(path) if path else default_data_dir() / "counsel-chat" / "counsel-chat.csv"
    fh, reader = _open_csv(path)
    out = []
    with fh:
        for col in ("questionID", "questionTitle", "questionText", "answerText"):
            if col not in (reader.fieldnames or []):
                raise DataError(path, 1, col, "column is missing from the header")
        for i, rec in enumerate(reader):
            if not (rec.get("questionID") or "").strip():
                raise DataError(path, reader.line_num, "questionID", "is empty")
            answer = (rec.get("answerText") or "").strip()
            if not answer:
                continue  # a few rows have no answer; nothing to learn from them
            title = (rec.get("questionTitle") or "").strip()
            text = (rec.get("questionText") or "").strip()
            seeker = text if not title or title in text else f"{title} {text}".strip()
            out.append(Pair(f"counselchat-{rec['questionID']}-{i}", seeker, answer,
                            {"question_id": rec["questionID"], "topic": rec.get("topic"),
                             "upvotes": rec.get("upvotes"), "split": rec.get("split")}))
    return out


def level_counts(pairs: list[EpitomePair]) -> dict[str, Counter]:
    return {m: Counter(p.levels[m] for p in pairs) for m in MECHANISMS}
