"""partner-eval stock: how much ΔEmpathy does one fixed sentence buy? (the stock-sentence baseline)

EPITOME-style classifiers read surface cues more than context (seed 001 §4.5; in the EPITOME data
P(ER > 0 | the response says "sorry") = 0.87). So a rewriter can raise the headline metric, the mean
change in the classifier's 0-6 total, by adding the same sympathy phrase to every response, and RL
on that reward drifts towards doing exactly this. This command measures what each of a set of stock
sentences buys on an input file: the sentence is inserted into every response (at the start and/or
the end, as ``--method template`` does), both versions are scored by the classifier, and the mean
change (bootstrap 95 % CI), the change on responses whose original total is 0 and the change per
mechanism are reported, best first.

Choose the sentence on the dev split (``python -m partner.evaluation.rewrites export epitome-dev
dev.jsonl``) and report it on the test split as the template baseline (``partner-rewrite test.jsonl
--method template --set rewrite.template='...'``). A rewriter that does not beat it has learned
nothing the classifier would not pay a stock phrase for.

Input: JSONL with ``seeker_post`` and ``response_post`` (partner-rewrite input or output). A line
without them is reported with its line number and field and left out of every mean.
"""

from __future__ import annotations

import logging
from pathlib import Path

from classifiers.scorer import MECHANISMS
from core.jsonio import atomic_write_json, atomic_write_text, check_batch_size, DataError, read_jsonl
from core.provenance import git_commit
from partner import metrics, rewrite_jsonl
from partner.rewriters import insert_sentence

log = logging.getLogger(__name__)

# seed 001 Table 2 (its three seeds per mechanism, "I know how you feel." counted once), then phrases
# common in peer support and in this project's agents' outputs, and the template baseline's default.
STOCK_SENTENCES = (
    "I know how you feel.", "I'm sorry.", "I feel you.",
    "I feel the same way.", "I understand how you feel.",
    "Why?", "What happened?", "Why do you feel like that?",
    "I'm so sorry to hear that.", "I'm here for you.", "That must be really hard for you.",
    "I'm so sorry to hear that. What happened?",
)


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], list[dict]]:
    """(seeker, response) pairs of a JSONL file, and an error record (line, field, error) per unusable line."""
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    pairs, errors = [], []
    for row in read_jsonl(path):
        if row.error is not None:
            errors.append(row.error.record())
        else:
            pairs.append((row.data["seeker_post"], row.data["response_post"]))
    return pairs, errors


def measure(scorer, pairs: list[tuple[str, str]], sentences, positions=("start",), batch_size: int = 32) -> dict:
    """ΔEmpathy of inserting each sentence at each position into every response, best first."""
    seekers = [s for s, _ in pairs]
    originals = [r for _, r in pairs]
    before = scorer.score(seekers, originals, batch_size, rationales=False)
    totals = [b.total for b in before]
    rows = []
    for sentence in sentences:
        for at in positions:
            texts = [insert_sentence(r, sentence, at)[0] for r in originals]
            after = scorer.score(seekers, texts, batch_size, rationales=False)
            change = metrics.empathy_change_by_level(totals, [a.total for a in after])
            rows.append({
                "sentence": sentence, "at": at, "n": change["n"], "mean": change["overall"],
                "ci95": metrics.bootstrap_ci([a.total - b for b, a in zip(totals, after)]),
                "at_zero": change["by_level"][0],
                "by_mechanism": {m: metrics.mean([a.levels[m] - b.levels[m] for b, a in zip(before, after)])
                                 for m in MECHANISMS},
            })
    rows.sort(key=lambda r: -r["mean"])
    return {"n": len(pairs), "before_mean": metrics.mean(totals), "rows": rows}


def markdown(result: dict, meta: dict) -> str:
    lines = ["# Stock-sentence baseline: ΔEmpathy bought by one fixed sentence", "",
             f"Input: {meta['input']} ({result['n']} pairs, {meta['errors']} unusable lines); classifier: "
             f"{meta['model']}; commit {meta['commit']}. Mean total before: {result['before_mean']:.2f}.", "",
             "| sentence | inserted at | ΔEmpathy (95 % CI) | Δ at original 0 (n) | ER | IP | EX |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        ci = f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]" if r["ci95"] else ""
        z = r["at_zero"]
        zero = f"{z['mean']:+.2f} ({z['n']})" if z["mean"] is not None else "n/a (0)"
        m = r["by_mechanism"]
        lines.append(f"| {r['sentence']} | {r['at']} | {r['mean']:+.3f} {ci} | {zero} | {m['ER']:+.2f} | "
                     f"{m['IP']:+.2f} | {m['EX']:+.2f} |")
    if result["rows"]:
        best = result["rows"][0]
        lines += ["", f"Strongest: {best['sentence']!r} at the {best['at']} ({best['mean']:+.3f}). On another split, "
                      f"as the template baseline: `partner-rewrite FILE --method template --set "
                      f"\"rewrite.template={best['sentence']}\" --set rewrite.insert_at={best['at']}`."]
    return "\n".join(lines) + "\n"


def main(args) -> int:
    check_batch_size(args.batch_size)
    path = Path(args.input)
    pairs, errors = read_pairs(path)
    for e in errors:
        log.warning("%s, line %s, field %s: %s (left out)", path, e["line"], e["field"], e["error"])
    if not pairs:
        raise SystemExit(f"{path}: no usable (seeker_post, response_post) lines")
    sentences = args.sentences or list(STOCK_SENTENCES)
    scorer = rewrite_jsonl.load_scorer(args.model or "")
    result = measure(scorer, pairs, sentences, tuple(args.at), args.batch_size)
    meta = {"input": str(path), "errors": len(errors), "model": args.model or "models/epitome (shipped)",
            "commit": git_commit()}
    out = Path(args.out) if args.out else path.parent / "eval-stock"
    atomic_write_json(out / "stock.json", {**meta, **result, "error_records": errors})
    md = markdown(result, meta)
    atomic_write_text(out / "stock.md", md)
    print(md)
    return 0
