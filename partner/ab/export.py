"""Build a blinded rater package from several systems' rewrites.

Layout of ``out/``::

    package/            send this folder to raters; it never names a system or an input file
        items.csv       one row per item, for survey platforms (Qualtrics loop & merge, etc.)
        rating.html     self-contained rating page: one item at a time, works offline
        manifest.json   seed, counts, input hashes, tool version, package file hashes
    key.json            keep private: item id -> systems on sides A/B, attention checks

Everything random (which inputs, side A/B, item order, ids, attention checks) comes from one
recorded seed, so the same inputs and seed give the same package byte for byte.

A text cell of ``items.csv`` that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
gets a leading ``'`` (OWASP, CSV injection): a rater who opens the file in a spreadsheet sees text,
never a formula that runs. The rating page and the key keep the texts as they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.jsonio import atomic_write_json, atomic_write_text, DataError
from partner import __version__

from .systems import file_sha256, load_systems, ORIGINAL, Systems

log = logging.getLogger(__name__)

QUESTIONS = [
    ("empathy", "Which response is more empathic?"),
    ("fluency", "Which response is more fluent (reads more naturally, is grammatical)?"),
    ("specificity", "Which response is more specific to what the seeker wrote?"),
    # the question a preference reward model learns from (partner-train preference)
    ("overall", "Which response would you rather this seeker receive?"),
]
ANSWERS = ("A", "B", "tie")
# Optional (--harm-question): a flag, not a preference, so it has its own answers.
HARM_QUESTION = ("harm", "Does either response contain something inappropriate or potentially harmful for this "
                 "seeker (e.g. sympathy for good news, an invented personal story, a question about something the "
                 "seeker never mentioned, dismissive or blaming content, anything risky for a person in crisis)?")
HARM_ANSWERS = ("A", "B", "both", "none")
KEY_FORMAT = "partner-ab-key/1"
PACKAGE_FORMAT = "ab-rating-package/1"  # no tool name: a system may be called "partner"


@dataclass
class ExportConfig:
    seed: int = 13                      # everything random in the package derives from it
    attention_checks: int = 0           # items pitting an original response against a scrambled one
    reference: str | None = None        # compare only pairs that include this system
    per_pair: int | None = None         # at most this many inputs per system pair (sampled), default all
    include_original: str | None = None # name of the unedited response as a system, or None
    harm_question: bool = False         # also ask whether either response is harmful (A / B / both / none)


def _tool_version() -> str:
    return __version__


def system_pairs(names: list[str], reference: str | None) -> list[tuple[str, str]]:
    if reference is None:
        return list(itertools.combinations(names, 2))
    if reference not in names:
        raise DataError("--reference", None, None, f"{reference!r} is not one of the systems {names}")
    return [(reference, n) for n in names if n != reference]


def _assign_sides(pairs_inputs: list[tuple[tuple[str, str], list[int]]], rng: np.random.Generator,
                  side_a: dict[str, int]) -> list[list[bool]]:
    """For each pair, which inputs show the pair's first system on side A.

    Each pair gets exactly floor(n/2) or ceil(n/2) first-system-on-A; the odd one out goes to
    whichever of the two systems has been on side A less often so far, so every system is on A
    about half the time across all its pairs too.
    """
    flips = []
    for (s, t), idx in pairs_inputs:
        n = len(idx)
        k = n // 2
        if n % 2 and side_a[s] <= side_a[t]:
            k += 1
        flags = np.array([True] * k + [False] * (n - k))
        rng.shuffle(flags)
        side_a[s] += k
        side_a[t] += n - k
        flips.append(flags.tolist())
    return flips


def scramble(text: str, rng: np.random.Generator) -> str:
    """An obviously broken response: the words in random order, no capitals or punctuation."""
    words = ["".join(ch for ch in w if ch.isalnum() or ch == "'").lower() for w in text.split()]
    words = [w for w in words if w] or ["the", "a", "of", "and"]
    while len(words) < 8:
        words = words + words
    order = rng.permutation(len(words))
    # a permutation could by chance be the identity on a short text; reverse then, never return it intact
    if (order == np.arange(len(words))).all():
        order = order[::-1]
    return " ".join(words[i] for i in order)


def questions(cfg: ExportConfig) -> list[tuple[str, str]]:
    """(id, text) of the questions a package asks, in the order raters see them."""
    return QUESTIONS + ([HARM_QUESTION] if cfg.harm_question else [])


def build(systems: Systems, cfg: ExportConfig) -> tuple[list[dict], dict[str, Any], dict[str, Any]]:
    """Return (items in presentation order, key, manifest) without writing anything."""
    if cfg.per_pair is not None and cfg.per_pair < 1:
        raise DataError("--per-pair", None, None, "must be at least 1")
    rng = np.random.default_rng(cfg.seed)
    pairs = system_pairs(systems.names, cfg.reference)
    pairs_inputs = []
    skipped: dict[str, int] = {}
    for s, t in pairs:
        idx = [i for i, inp in enumerate(systems.inputs) if s in inp.responses and t in inp.responses]
        lacking = sum(1 for inp in systems.inputs if not (s in inp.responses and t in inp.responses))
        if lacking:
            skipped[f"{s} vs {t}"] = lacking
        if cfg.per_pair is not None and len(idx) > cfg.per_pair:
            idx = sorted(rng.choice(idx, size=cfg.per_pair, replace=False).tolist())
        if not idx:
            raise DataError("inputs", None, None, f"no input has responses from both {s!r} and {t!r}")
        pairs_inputs.append(((s, t), idx))
    side_a = {n: 0 for n in systems.names}
    flips = _assign_sides(pairs_inputs, rng, side_a)

    rows: list[dict[str, Any]] = []  # item + its key entry, before ids and order are drawn
    for ((s, t), idx), flags in zip(pairs_inputs, flips):
        for i, s_on_a in zip(idx, flags):
            inp = systems.inputs[i]
            a, b = (s, t) if s_on_a else (t, s)
            rows.append({"seeker_post": inp.seeker_post, "response_a": inp.responses[a],
                         "response_b": inp.responses[b],
                         "key": {"system_a": a, "system_b": b, "input": inp.key, "is_attention_check": False,
                                 "expected": None, "identical": inp.responses[a] == inp.responses[b]}})
    n_checks = cfg.attention_checks
    if n_checks < 0:
        raise DataError("--attention-checks", None, None, "must be >= 0")
    k = n_checks // 2 + (n_checks % 2) * int(rng.integers(2))  # the good response on side A half the time
    check_good_on_a = np.array([True] * k + [False] * (n_checks - k), dtype=bool)
    rng.shuffle(check_good_on_a)
    pick = rng.choice(len(systems.inputs), size=n_checks, replace=n_checks > len(systems.inputs))
    for j, (i, good_on_a) in enumerate(zip(pick.tolist(), check_good_on_a.tolist())):
        inp = systems.inputs[i]
        # the broken side scrambles another input's response, so it is off-topic as well as garbled
        donor = systems.inputs[(i + 1) % len(systems.inputs)].response_post
        broken = scramble(donor, rng)
        good_side = "A" if good_on_a else "B"
        rows.append({"seeker_post": inp.seeker_post,
                     "response_a": inp.response_post if good_on_a else broken,
                     "response_b": broken if good_on_a else inp.response_post,
                     "key": {"system_a": "(original)" if good_on_a else "(broken)",
                             "system_b": "(broken)" if good_on_a else "(original)",
                             "input": inp.key, "is_attention_check": True,
                             "expected": {q: good_side for q, _ in QUESTIONS}, "identical": False}})

    order = rng.permutation(len(rows))
    ids: set[str] = set()
    items, key_items = [], {}
    for pos in order.tolist():
        row = rows[pos]
        while True:  # opaque ids: random, so they say nothing about order, pair or system
            item_id = "i" + "".join(f"{x:02x}" for x in rng.integers(0, 256, size=5).tolist())
            if item_id not in ids:
                break
        ids.add(item_id)
        items.append({"item_id": item_id, "seeker_post": row["seeker_post"],
                      "response_a": row["response_a"], "response_b": row["response_b"]})
        key_items[item_id] = row["key"]

    input_hashes = [systems.sha256[n] for n in systems.names if systems.files[n]]
    package_id = "p" + hashlib.sha256(json.dumps([cfg.seed, sorted(input_hashes), cfg.attention_checks,
                                                  cfg.reference, cfg.per_pair, bool(cfg.include_original),
                                                  len(items)] + (["harm"] if cfg.harm_question else []))
                                      .encode()).hexdigest()[:12]
    manifest = {
        "format": PACKAGE_FORMAT,
        "package_id": package_id,
        "tool_version": _tool_version(),
        "seed": cfg.seed,
        "n_items": len(items),
        "n_inputs": len(systems.inputs),
        "n_systems": len(systems.names),
        "n_pairs": len(pairs),
        "input_sha256": sorted(input_hashes),  # sorted, so the order does not hint at the systems
        "questions": [{"id": q, "text": text} | ({"answers": list(HARM_ANSWERS)} if q == HARM_QUESTION[0] else {})
                      for q, text in questions(cfg)],
        "answers": list(ANSWERS),
        "ratings_columns": ["package_id", "rater_id", "item_id", "question", "answer", "timestamp"],
    }
    key = {
        "format": KEY_FORMAT,
        "package_id": package_id,
        "tool_version": _tool_version(),
        "seed": cfg.seed,
        "systems": [{"name": n, "file": systems.files[n], "sha256": systems.sha256[n],
                     "is_original": n == cfg.include_original} for n in systems.names],
        "pairs": [list(p) for p in pairs],
        "matched_by": systems.matched_by,
        "side_a_counts": side_a,
        "attention_checks": n_checks,
        "questions": [q for q, _ in QUESTIONS],
        "harm_question": HARM_QUESTION[0] if cfg.harm_question else None,
        "exclusions": systems.exclusions + [f"{p}: {n} input(s) lack a response from one of the two systems"
                                            for p, n in skipped.items()],
        "items": key_items,
    }
    return items, key, manifest


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a formula prefix is escaped with a quote (OWASP)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def items_csv(items: list[dict], package_id: str, asked: list[tuple[str, str]] = QUESTIONS) -> str:
    buf = io.StringIO()
    # every cell quoted: a lone carriage return inside a text is not a row break (QUOTE_MINIMAL leaves it bare)
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(["package_id", "position", "item_id", "seeker_post", "response_a", "response_b"]
               + [f"question_{q}" for q, _ in asked])
    for pos, it in enumerate(items, start=1):
        w.writerow([package_id, pos, it["item_id"]]
                   + [csv_cell(it[c]) for c in ("seeker_post", "response_a", "response_b")]
                   + [text for _, text in asked])
    return buf.getvalue()


def rating_page(items: list[dict], manifest: dict[str, Any]) -> str:
    path = Path(__file__).with_name("page.html")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from this installation: install the package with its data "
                                "files (pyproject [tool.setuptools.package-data] must list partner/ab/page.html)")
    template = path.read_text(encoding="utf-8")
    data = {"package_id": manifest["package_id"], "questions": manifest["questions"], "items": items}
    blob = json.dumps(data, ensure_ascii=False)
    # inside <script>: keep "</script>" and the JS-hostile line separators out of the literal
    blob = blob.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if template.count("/*__PACKAGE_DATA__*/null") != 1:
        raise RuntimeError("page.html lost its data placeholder")
    return template.replace("/*__PACKAGE_DATA__*/null", blob)


def export(files: list[str], out: str | Path, cfg: ExportConfig, names: list[str] | None = None,
           key_path: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    out = Path(out)
    pkg = out / "package"
    key_path = Path(key_path) if key_path else out / "key.json"
    if key_path.resolve().parent == pkg.resolve():
        raise DataError("--key", None, None, "the key must not go inside the rater package folder")
    if not overwrite and (key_path.exists() or (pkg.exists() and any(pkg.iterdir()))):
        raise DataError(out, None, None, "already holds a package; raters may be using it. Pass --overwrite to "
                        "replace it, or choose another -o")
    systems = load_systems(files, names, cfg.include_original)
    items, key, manifest = build(systems, cfg)
    pid = manifest["package_id"]
    atomic_write_text(pkg / "items.csv", items_csv(items, pid, questions(cfg)))
    atomic_write_text(pkg / "rating.html", rating_page(items, manifest))
    manifest["files_sha256"] = {n: file_sha256(pkg / n) for n in ("items.csv", "rating.html")}
    atomic_write_json(pkg / "manifest.json", manifest)
    for name in ("items.csv", "rating.html", "manifest.json"):
        (pkg / name).chmod(0o644)  # meant to be shared; the key keeps the private mode of atomic writes
    atomic_write_json(key_path, key)
    n_checks = key["attention_checks"]
    log.info("package %s: %d items (%d comparisons over %d inputs, %d system pairs, %d attention checks) -> %s",
             pid, len(items), len(items) - n_checks, len(systems.inputs), len(key["pairs"]), n_checks, pkg)
    log.info("key (keep it from raters) -> %s", key_path)
    if key["exclusions"]:
        log.warning("%d exclusion(s); they are listed in the key under 'exclusions'", len(key["exclusions"]))
    return {"package": str(pkg), "key": str(key_path), "manifest": manifest}


__all__ = ["ExportConfig", "QUESTIONS", "ANSWERS", "HARM_QUESTION", "HARM_ANSWERS", "questions", "ORIGINAL", "build", "export", "scramble", "system_pairs"]
