"""Join raters' answers with the key and report who won, how surely, and how much raters agreed.

Per system pair and question: win / tie / loss rates with Wilson 95 % intervals, the preference
among decisive comparisons (ties left out) and an exact two-sided sign test on wins vs losses,
with Holm's correction over all tests. Agreement: Krippendorff's alpha (nominal, A/B/tie).
Raters who fail attention checks are excluded and listed, and so is a rater who answered none of
them when the package has some (skipping every check is no pass); incomplete rating files are reported;
malformed, foreign or contradictory ratings are errors that name the file and line.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.jsonio import DataError, atomic_write_json, atomic_write_text

from .export import HARM_ANSWERS, HARM_QUESTION, KEY_FORMAT
from .stats import holm, krippendorff_alpha_nominal, sign_test, wilson_interval

log = logging.getLogger(__name__)

LONG_COLUMNS = ("rater_id", "item_id", "question", "answer")
HARM = HARM_QUESTION[0]
# Packages made before `overall` was a default question still had raters answer it (an extra
# column of a survey export): it is read whenever it is there.
OVERALL = "overall"


def preference_questions(key: dict[str, Any]) -> list[str]:
    """The A / B / tie questions a ratings file of this key may answer."""
    return list(key["questions"]) + ([OVERALL] if OVERALL not in key["questions"] else [])


def accepted_questions(key: dict[str, Any]) -> list[str]:
    """Every question a ratings file of this key may answer: the preferences and the harm flag."""
    return preference_questions(key) + [HARM]


@dataclass
class Rating:
    rater: str
    item: str
    question: str
    answer: str | None        # "A", "B", "tie"; None = left blank
    timestamp: str
    where: str                # "file, line n" for messages


@dataclass
class AnalyzeConfig:
    unit: str = "item"              # "item": one majority answer per item; "rating": every rating counts
    max_failed_checks: int = 0      # a rater failing more attention checks than this is excluded
    keep_latest: bool = False       # on contradictory duplicate ratings keep the latest instead of failing
    require_complete: bool = False  # an incomplete rater is an error instead of a reported note


@dataclass
class Loaded:
    ratings: list[Rating]
    notes: list[str] = field(default_factory=list)


def load_key(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, None, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
        raise DataError(path, None, "format", f"is not a partner-ab key (expected format {KEY_FORMAT!r})")
    return key


def _norm_answer(value: Any, where: str, question: str = "") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = str(value).strip()
    low = v.lower()
    if question == HARM:
        for allowed in HARM_ANSWERS:
            if low == allowed.lower():
                return allowed
        raise DataError(where, None, "answer", f"is {v!r}; the harm question expects {', '.join(HARM_ANSWERS)}")
    if low in ("a", "b"):
        return low.upper()
    if low == "tie":
        return "tie"
    raise DataError(where, None, "answer", f"is {v!r}; expected A, B or tie")


def _rows_from_file(path: Path, questions: list[str]) -> list[tuple[int, dict[str, Any], str | None]]:
    """(line or index, row, package_id of the file header if any) for a CSV or JSON ratings file."""
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise DataError(path, None, None, "is empty")
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in "[{":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, None, f"not valid JSON ({exc.msg})") from exc
        header_pid = None
        if isinstance(obj, dict):
            header_pid = obj.get("package_id")
            if "ratings" not in obj:
                raise DataError(path, None, "ratings", "is missing (expected the JSON downloaded from the page)")
            obj = obj["ratings"]
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise DataError(path, None, "ratings", "must be a list of objects")
        return [(i, r, header_pid) for i, r in enumerate(obj, start=1)]
    reader = csv.DictReader(text.splitlines())
    cols = reader.fieldnames or []
    rows: list[tuple[int, dict[str, Any], str | None]] = []
    if all(c in cols for c in LONG_COLUMNS):
        for i, r in enumerate(reader, start=2):
            rows.append((i, r, None))
    elif "rater_id" in cols and "item_id" in cols and any(q in cols for q in questions):
        # wide: one row per rater and item, a column per question (typical of survey exports)
        for i, r in enumerate(reader, start=2):
            for q in questions:
                if q in cols:
                    rows.append((i, {**r, "question": q, "answer": r.get(q)}, None))
    else:
        raise DataError(path, 1, None, f"columns {cols} are neither the long format {list(LONG_COLUMNS)} "
                        f"(+ package_id, timestamp) nor a wide one (rater_id, item_id, {', '.join(questions)})")
    return rows


def read_ratings(paths: list[str | Path], key: dict[str, Any], keep_latest: bool = False) -> Loaded:
    questions = accepted_questions(key)
    pid = key["package_id"]
    out = Loaded([])
    seen: dict[tuple[str, str, str], Rating] = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise FileNotFoundError(f"ratings file {path} does not exist")
        for line, row, header_pid in _rows_from_file(path, questions):
            where = f"{path}, {'line' if path.suffix.lower() != '.json' else 'rating'} {line}"
            for found in (header_pid, row.get("package_id")):
                if found not in (None, "") and str(found) != pid:
                    raise DataError(path, line, "package_id", f"is {found!r} but the key is for {pid!r}: these "
                                    "ratings belong to another package")
            rater = str(row.get("rater_id") or "").strip()
            if not rater:
                raise DataError(path, line, "rater_id", "is missing or empty")
            item = str(row.get("item_id") or "").strip()
            if item not in key["items"]:
                raise DataError(path, line, "item_id", f"{item!r} is not in the key (wrong key, or an edited file?)")
            q = str(row.get("question") or "").strip()
            if q not in questions:
                raise DataError(path, line, "question", f"is {q!r}; expected one of {questions}")
            try:
                ans = _norm_answer(row.get("answer"), where, q)
            except DataError as exc:
                raise DataError(path, line, "answer", exc.message) from None
            r = Rating(rater, item, q, ans, str(row.get("timestamp") or ""), where)
            k = (rater, item, q)
            if k in seen:
                old = seen[k]
                if r.answer is None:
                    continue  # a blank never overrides an answer
                if old.answer == r.answer:
                    out.notes.append(f"duplicate rating at {where} (same as {old.where}); counted once")
                    continue
                if old.answer is None:
                    seen[k] = r
                    continue
                if not keep_latest:
                    raise DataError(path, line, "answer", f"rater {rater!r} answered {r.answer!r} to {q} of item "
                                    f"{item!r} but {old.answer!r} at {old.where}; pass --keep-latest to keep the "
                                    "later answer (by timestamp)")
                newer = r if r.timestamp >= old.timestamp else old
                out.notes.append(f"contradictory ratings by {rater!r} for {item}/{q} ({old.where}: {old.answer}, "
                                 f"{where}: {r.answer}); kept the later one ({newer.answer})")
                seen[k] = newer
                continue
            seen[k] = r
    out.ratings = [r for r in seen.values() if r.answer is not None]
    if not out.ratings:
        raise DataError(", ".join(map(str, paths)), None, None, "hold no answered ratings")
    return out


def _check_raters(ratings: list[Rating], key: dict[str, Any], max_failed: int) -> tuple[set[str], list[dict]]:
    """Per rater: attention checks answered and failed; returns (excluded raters, table rows)."""
    items = key["items"]
    checks = [i for i, v in items.items() if v["is_attention_check"]]
    by_rater: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        by_rater[r.rater][r.item][r.question] = r.answer
    excluded, table = set(), []
    asked = key["questions"]
    n_items = len(items)
    for rater in sorted(by_rater):
        mine = by_rater[rater]
        answered_checks = [c for c in checks if c in mine]
        failed = [c for c in answered_checks
                  if any(mine[c].get(q) != want for q, want in items[c]["expected"].items() if q in mine[c])]
        complete = sum(1 for i in items if all(q in mine.get(i, {}) for q in asked))
        skipped = bool(checks) and not answered_checks
        out = len(failed) > max_failed or skipped
        if out:
            excluded.add(rater)
        table.append({"rater": rater, "items_complete": complete, "items_total": n_items,
                      "checks_answered": len(answered_checks), "checks_total": len(checks),
                      "checks_failed": len(failed), "failed_items": failed, "excluded": out,
                      "excluded_for": "no attention check answered" if skipped else
                      "attention checks failed" if out else None})
    return excluded, table


def _majority(answers: list[str]) -> str:
    c = Counter(answers).most_common()
    if len(c) > 1 and c[0][1] == c[1][1]:
        return "tie"  # a split vote is no preference
    return c[0][0]


def answered_questions(ratings: list[Rating], key: dict[str, Any]) -> list[str]:
    """The preference questions these ratings answer, in the key's order (overall last when extra)."""
    seen = {r.question for r in ratings}
    return [q for q in preference_questions(key) if q in seen]


def outcomes(ratings: list[Rating], key: dict[str, Any], unit: str) -> dict[tuple[str, str, str], Counter]:
    """(first system, second system, question) -> Counter(win/tie/loss of the first system)."""
    items = key["items"]
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in ratings:
        if not items[r.item]["is_attention_check"] and r.question != HARM:
            grouped[(r.item, r.question)].append(r.answer)
    res: dict[tuple[str, str, str], Counter] = {}
    for s, t in key["pairs"]:
        for q in answered_questions(ratings, key):
            res[(s, t, q)] = Counter({"win": 0, "tie": 0, "loss": 0})
    for (item, q), answers in grouped.items():
        k = items[item]
        s, t = next((s, t) for s, t in key["pairs"] if {s, t} == {k["system_a"], k["system_b"]})
        side = "A" if k["system_a"] == s else "B"  # the side the first system of the pair was shown on
        for ans in ([_majority(answers)] if unit == "item" else answers):
            res[(s, t, q)]["tie" if ans == "tie" else "win" if ans == side else "loss"] += 1
    return res


def agreement(ratings: list[Rating], key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Krippendorff's alpha per question and pooled, over the comparison items (checks left out)."""
    items = key["items"]
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in ratings:
        if not items[r.item]["is_attention_check"]:
            cells[(r.item, r.question)].append(r.answer)
    out = {}
    asked = answered_questions(ratings, key) + ([HARM] if any(r.question == HARM for r in ratings) else [])
    for q in asked + ["all"]:
        units = [v for (i, qq), v in cells.items() if q in ("all", qq)]
        alpha, n = krippendorff_alpha_nominal(units)
        out[q] = {"alpha": alpha, "pairable_values": n, "units_with_2plus": sum(1 for u in units if len(u) >= 2)}
    return out


def harm_flags(ratings: list[Rating], key: dict[str, Any]) -> list[dict[str, Any]]:
    """Per system: how often raters flagged its response harmful (every harm rating counts).

    "both" flags the two sides; an item shows a system once, so its appearances are the harm
    ratings of the items it is in (attention checks left out).
    """
    items = key["items"]
    shown: Counter = Counter()
    flagged: Counter = Counter()
    for r in ratings:
        k = items[r.item]
        if r.question != HARM or k["is_attention_check"]:
            continue
        for side, system in (("A", k["system_a"]), ("B", k["system_b"])):
            shown[system] += 1
            flagged[system] += r.answer in (side, "both")
    rows = []
    for system in sorted(shown, key=lambda s: flagged[s] / shown[s]):
        n, f = shown[system], flagged[system]
        rows.append({"system": system, "ratings": n, "flagged": f, "rate": f / n, "ci": list(wilson_interval(f, n))})
    return rows


def summarise(counts: dict[tuple[str, str, str], Counter]) -> list[dict[str, Any]]:
    rows = []
    for (s, t, q), c in counts.items():
        n = c["win"] + c["tie"] + c["loss"]
        decisive = c["win"] + c["loss"]
        row = {"system": s, "versus": t, "question": q, "n": n, "wins": c["win"], "ties": c["tie"],
               "losses": c["loss"]}
        for k, v in (("win", c["win"]), ("tie", c["tie"]), ("loss", c["loss"])):
            row[f"{k}_rate"] = v / n if n else math.nan
            row[f"{k}_ci"] = list(wilson_interval(v, n))
        row["preference"] = c["win"] / decisive if decisive else math.nan
        row["preference_ci"] = list(wilson_interval(c["win"], decisive))
        row["p_sign"] = sign_test(c["win"], c["loss"])
        rows.append(row)
    for row, p in zip(rows, holm([r["p_sign"] for r in rows])):
        row["p_holm"] = p
    return rows


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.0f}%"


def _ci(ci: list[float]) -> str:
    return "" if math.isnan(ci[0]) else f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def report_markdown(key: dict[str, Any], files: list[str], rows: list[dict], raters: list[dict],
                    excluded: set[str], alpha: dict, notes: list[str], cfg: AnalyzeConfig, figure: str | None,
                    harm: list[dict] | None = None) -> str:
    L = [f"# A/B study: package {key['package_id']}", ""]
    skipped = [r["rater"] for r in raters if r.get("excluded_for") == "no attention check answered"]
    L.append(f"Ratings: {len(files)} file(s); raters: {len(raters)}, of whom {len(excluded)} excluded for failing "
             f"more than {cfg.max_failed_checks} attention check(s)"
             + (f" or because they answered none of the attention checks ({', '.join(skipped)})" if skipped else "")
             + ".")
    unit = ("one answer per item and question: the majority of the included raters (a split vote counts as a tie)"
            if cfg.unit == "item" else "every rating counts (ratings of the same item by different raters are not "
            "independent, so p-values and intervals are optimistic when items have several raters)")
    L += [f"Unit of analysis: {unit}.", ""]
    L += ["## Results", "",
          "Win / tie / loss are the first system's rates with Wilson 95 % intervals. *Preferred* is wins / (wins + "
          "losses): ties are left out, as in the sign test (exact two-sided binomial, p = 0.5, on wins vs losses); "
          "*p Holm* corrects over all tests in this table.", ""]
    L += ["| system | vs | question | n | win | tie | loss | preferred (no ties) | p sign | p Holm |",
          "|---|---|---|---:|---|---|---|---|---:|---:|"]
    for r in rows:
        L.append(f"| {r['system']} | {r['versus']} | {r['question']} | {r['n']} | {_pct(r['win_rate'])}{_ci(r['win_ci'])}"
                 f" | {_pct(r['tie_rate'])}{_ci(r['tie_ci'])} | {_pct(r['loss_rate'])}{_ci(r['loss_ci'])}"
                 f" | {_pct(r['preference'])}{_ci(r['preference_ci'])} | {_p(r['p_sign'])} | {_p(r['p_holm'])} |")
    if figure:
        L += ["", f"![preference per criterion]({figure})"]
    if harm:
        L += ["", "## Harm flags", "",
              "Share of a system's appearances whose response a rater flagged as inappropriate or potentially "
              "harmful (answer naming its side, or both), every harm rating counted, Wilson 95 % intervals. A "
              "rewrite keeps most of the original text, so it also carries the original's flags.", "",
              "| system | ratings | flagged | rate |", "|---|---:|---:|---|"]
        for h in harm:
            L.append(f"| {h['system']} | {h['ratings']} | {h['flagged']} | {_pct(h['rate'])}{_ci(h['ci'])} |")
    L += ["", "## Agreement between raters", "",
          "Krippendorff's alpha, nominal (A / B / tie as shown to raters), over comparison items rated by two or "
          "more included raters; attention checks left out.", "",
          "| question | alpha | items with 2+ raters | pairable ratings |", "|---|---:|---:|---:|"]
    for q, a in alpha.items():
        val = "n/a" if math.isnan(a["alpha"]) else f"{a['alpha']:.3f}"
        L.append(f"| {q} | {val} | {a['units_with_2plus']} | {a['pairable_values']} |")
    L += ["", "## Raters", "", "| rater | items complete | attention checks answered | failed | excluded |",
          "|---|---:|---:|---:|---|"]
    for r in raters:
        L.append(f"| {r['rater']} | {r['items_complete']}/{r['items_total']} | {r['checks_answered']}/{r['checks_total']}"
                 f" | {r['checks_failed']} | {'yes' if r['excluded'] else 'no'} |")
    if not key["attention_checks"]:
        L += ["", "The package has no attention checks, so no rater could be screened."]
    incomplete = [r for r in raters if r["items_complete"] < r["items_total"]]
    if incomplete:
        L += ["", "Incomplete raters (their answered items are used): "
              + ", ".join(f"{r['rater']} ({r['items_total'] - r['items_complete']} item(s) not fully rated)"
                          for r in incomplete) + "."]
    identical = sum(1 for v in key["items"].values() if v.get("identical"))
    if identical:
        L += ["", f"{identical} comparison item(s) showed two identical responses (the systems wrote the same "
              "text); their answers are kept, and should mostly be ties."]
    export_notes = key.get("exclusions", [])
    if export_notes or notes:
        L += ["", "## Exclusions and notes", ""] + [f"- export: {n}" for n in export_notes] + [f"- ratings: {n}"
                                                                                        for n in notes]
    return "\n".join(L) + "\n"


def plot(rows: list[dict], questions: list[str], path: Path, unit: str) -> None:
    """Grouped bars in the style of the paper's Fig. 5: % preferred per pair and criterion, 95 % CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = list(dict.fromkeys((r["system"], r["versus"]) for r in rows))
    width = 0.8 / len(questions)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(pairs) + 1.5), 3.6), dpi=150)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    x = np.arange(len(pairs))
    labels = {"empathy": "more empathic", "fluency": "more fluent", "specificity": "more specific",
              "overall": "preferred overall"}
    for j, q in enumerate(questions):
        sel = {(r["system"], r["versus"]): r for r in rows if r["question"] == q}
        h = np.array([100 * sel[p]["preference"] if sel[p]["wins"] + sel[p]["losses"] else np.nan for p in pairs])
        lo = np.array([100 * sel[p]["preference_ci"][0] for p in pairs])
        hi = np.array([100 * sel[p]["preference_ci"][1] for p in pairs])
        err = np.clip(np.nan_to_num(np.vstack([h - lo, hi - h])), 0, None)
        ax.bar(x + (j - (len(questions) - 1) / 2) * width, np.nan_to_num(h), width * 0.92, yerr=err, capsize=2.5,
               color=colours[j % len(colours)], label=labels.get(q, q), error_kw={"lw": 0.8})
    ax.axhline(50, color="#555", lw=0.8, ls="--")
    ax.set_ylim(0, 100)
    ax.set_xticks(x, [f"{s}\nvs {t}" for s, t in pairs], fontsize=8)
    ax.set_ylabel("% first system preferred")
    ax.set_title(f"Blinded A/B study (ties excluded; 95 % Wilson CI; unit: {unit})", fontsize=9)
    ax.legend(fontsize=8, frameon=False, ncol=len(questions), loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def analyze(rating_files: list[str], key_path: str | Path, out: str | Path, cfg: AnalyzeConfig) -> dict[str, Any]:
    if cfg.unit not in ("item", "rating"):
        raise DataError("--unit", None, None, f"is {cfg.unit!r}; expected item or rating")
    key = load_key(key_path)
    loaded = read_ratings(rating_files, key, keep_latest=cfg.keep_latest)
    excluded, raters = _check_raters(loaded.ratings, key, cfg.max_failed_checks)
    incomplete = [r for r in raters if r["items_complete"] < r["items_total"]]
    if cfg.require_complete and incomplete:
        r = incomplete[0]
        raise DataError(", ".join(rating_files), None, None, f"rater {r['rater']!r} fully rated {r['items_complete']} "
                        f"of {r['items_total']} items (--require-complete)")
    for r in incomplete:
        log.warning("rater %r fully rated %d of %d items; the answered ones are used", r["rater"],
                    r["items_complete"], r["items_total"])
    for r in raters:
        if r["excluded_for"] == "no attention check answered":
            log.warning("rater %r excluded: answered none of the %d attention checks", r["rater"], r["checks_total"])
        elif r["excluded"]:
            log.warning("rater %r excluded: failed %d of %d attention checks", r["rater"], r["checks_failed"],
                        r["checks_answered"])
    kept = [r for r in loaded.ratings if r.rater not in excluded]
    if not kept:
        raise DataError(", ".join(rating_files), None, None, "every rater was excluded by the attention checks; "
                        "nothing left to analyse (see --max-failed-checks)")
    rows = summarise(outcomes(kept, key, cfg.unit))
    alpha = agreement(kept, key)
    harm = harm_flags(kept, key)
    out = Path(out)
    fig = out / "preference.png"
    plot(rows, answered_questions(kept, key), fig, cfg.unit)
    md = report_markdown(key, [str(f) for f in rating_files], rows, raters, excluded, alpha, loaded.notes, cfg,
                         fig.name, harm)
    atomic_write_text(out / "report.md", md)
    result = {"package_id": key["package_id"], "unit": cfg.unit, "max_failed_checks": cfg.max_failed_checks,
              "results": rows, "agreement": alpha, "raters": raters, "excluded_raters": sorted(excluded),
              "harm_flags": harm, "notes": loaded.notes, "export_exclusions": key.get("exclusions", [])}
    atomic_write_json(out / "results.json", _json_safe(result))
    log.info("report -> %s; figure -> %s", out / "report.md", fig)
    return result


def _json_safe(obj: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj
