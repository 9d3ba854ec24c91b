"""`make demo`: the main job on the shipped default model.

Runs the most complete pipeline that exists so far on examples/low-empathy.jsonl. Stages that
have not landed yet are skipped with a note, never faked.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "low-empathy.jsonl"
OUT = ROOT / "runs" / "demo"


def _have(cmd: list[str]) -> bool:
    """True if a console script is implemented (exit 3 means 'not implemented yet')."""
    probe = subprocess.run(cmd + ["--help"], capture_output=True)
    return probe.returncode == 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from classifiers import corpora
    from classifiers.text import split_sentences
    from classifiers.jsonio import read_jsonl

    OUT.mkdir(parents=True, exist_ok=True)
    print("== data")
    try:
        pairs, report = corpora.load_epitome()
        splits = corpora.grouped_split(pairs, lambda p: p.sp_id)
        print(report.summary())
        print({k: len(v) for k, v in splits.items()}, "pairs in the grouped train/dev/test split")
    except corpora.DataError as exc:
        print(f"(shared data not found: {exc}; set PARTNER_DATA)")

    print("\n== sentence windows of the example responses")
    for row in read_jsonl(EXAMPLES):
        print(f"{row.data['id']}: {split_sentences(row.data['response_post'])}")

    bindir = Path(sys.executable).parent
    rewrite = [str(bindir / "partner-rewrite"), str(EXAMPLES), "-o", str(OUT / "rewritten.jsonl"), "--overwrite"]
    score = [str(bindir / "partner-score"), str(EXAMPLES), "-o", str(OUT / "scored.jsonl"), "--overwrite"]
    probe = subprocess.run(rewrite, capture_output=True, text=True)
    if probe.returncode == 0:
        print(probe.stdout)
        return 0
    print(f"\n(partner-rewrite: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'failed'})")
    probe = subprocess.run(score, capture_output=True, text=True)
    if probe.returncode == 0:
        print("\n== empathy of the example responses (partner-score)")
        print(probe.stdout)
        return 0
    print(f"(partner-score: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'failed'})")

    print("\n== the embedded policy backbone, untrained, continuing one response")
    import torch
    from classifiers.registry import load_causal_lm

    lm, tok = load_causal_lm("smollm2-135m")
    first = next(iter(read_jsonl(EXAMPLES))).data
    msgs = [{"role": "user", "content": f"Someone wrote: {first['seeker_post']}\nWrite one short, kind reply."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(0)
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id)
    print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
