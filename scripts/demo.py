"""`make demo`: rewrite examples/low-empathy.jsonl with the shipped model and show before/after.

Runs ``partner-rewrite`` with its defaults: the shipped policy's greedy episode, retrieved human-written
sentences and the zero-shot sentence as candidates, ranked by the shipped preference model (retrieval
is left out, with a warning, when the shared data is missing). While no trained
policy is shipped it says so and runs the retrieval baseline instead (or the template baseline if
the shared data is missing); while no empathy classifier is shipped it rewrites without the
before/after scores. Nothing is faked: the table says which method produced it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "low-empathy.jsonl"
OUT = ROOT / "runs" / "demo"
sys.path.insert(0, str(ROOT))


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "failed"


def rewrite(method: str | None, scorer: str | None, out: Path) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "partner-rewrite"), str(EXAMPLES), "-o", str(out), "--overwrite"]
    if method:
        cmd += ["--method", method]
    if scorer:
        cmd += ["--scorer", scorer]
    print("$", " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
    # stderr (progress bar, log) is shown as it comes, and kept for the error message
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for chunk in iter(lambda: proc.stderr.read(256), ""):
        sys.stderr.write(chunk)
        sys.stderr.flush()
        seen.append(chunk)
    out = proc.stdout.read()
    return subprocess.CompletedProcess(cmd, proc.wait(), out, "".join(seen))


def table(rows: list[dict]) -> str:
    """A text grid: seeker post, original, rewrite, empathy before -> after; long cells wrap."""
    widths = (30, 30, 44, 9)
    head = ("seeker post", "original response", "rewritten response", "empathy")
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def grid_row(cells):
        wrapped = [textwrap.wrap(c, w) or [""] for c, w in zip(cells, widths)]
        return "\n".join("| " + " | ".join((col[i] if i < len(col) else "").ljust(w)
                                           for col, w in zip(wrapped, widths)) + " |"
                         for i in range(max(map(len, wrapped))))

    lines = [sep, grid_row(head), sep.replace("-", "=")]
    for r in rows:
        if "rewritten_response" not in r:
            lines += [grid_row((f"line {r.get('line')}: {r.get('error')}", "", "", "")), sep]
            continue
        emp = r.get("empathy")
        score = f"{emp['before']['total']} -> {emp['after']['total']}" if emp else "n/a"
        sources = sorted({e["source"] for e in r.get("edits", []) if e.get("source")})
        rewrite = r["rewritten_response"] + (f" [from: {', '.join(sources)}]" if sources else "")
        lines += [grid_row((r["seeker_post"], r["response_post"], rewrite, score)), sep]
    return "\n".join(lines)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from core import corpora
    from partner.config import SHIPPED_MODELS

    OUT.mkdir(parents=True, exist_ok=True)
    have_data = True
    try:
        _, report = corpora.load_epitome()
        print("== data:", report.summary())
    except corpora.DataError as exc:
        have_data = False
        print(f"== data: shared data not found ({exc}); set PARTNER_DATA")

    scorer = None
    if not (SHIPPED_MODELS / "epitome").exists():
        scorer = "none"
        print("(no empathy classifier shipped yet in models/epitome: rewriting without before/after scores)")

    out = OUT / "rewritten.jsonl"
    print("\n== rewriting", EXAMPLES.relative_to(ROOT))
    proc = rewrite(None, scorer, out)
    method = "PARTNER (the shipped policy's episode, retrieved and zero-shot sentences, ranked by the preference model)"
    if proc.returncode != 0:
        fallback = "retrieval" if have_data else "template"
        print(f"(partner-rewrite: {_last_line(proc.stderr)})")
        print(f"(showing the {fallback} baseline instead)")
        proc = rewrite(fallback, scorer, out)
        method = f"the {fallback} baseline, not PARTNER"
    if proc.returncode != 0:
        print(f"partner-rewrite failed: {_last_line(proc.stderr)}", file=sys.stderr)
        return 1
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"\n== before / after: {method}; empathy = EPITOME ER+IP+EX (0..6)")
    print(table(rows))
    scored = [r for r in rows if r.get("empathy")]
    if scored:
        gain = sum(r["empathy"]["after"]["total"] - r["empathy"]["before"]["total"] for r in scored) / len(scored)
        print(f"mean change in empathy over {len(scored)} examples: {gain:+.2f}")
    print(f"\nfull output: {out.relative_to(ROOT)}; metrics: partner-eval rewrites {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
