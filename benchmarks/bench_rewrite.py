"""Rewriting throughput: the PARTNER episode batched with a KV cache vs a naive per-example loop.

Both run the same episode code (``partner.episode.run_episodes``) with greedy decoding on the same
(seeker, response) pairs; only ``policy.act`` differs:

- **batched**: ``PartnerPolicy.act`` on batches of ``--batch-size`` states, one prompt forward,
  then one token per step through the KV cache (what ``partner-rewrite`` runs);
- **naive**: one example at a time, every generated token recomputing the whole sequence with no
  cache, as the authors' code did (``prepare_inputs_for_generation`` returned only ``input_ids``,
  partner-method.md §1.2).

The policy is the shipped one (``models/policy``) if present. Otherwise it is the bare backbone
with an untrained position head whose STOP class is masked, so that every episode writes
``policy.max_edits`` sentences of up to ``policy.max_sentence_tokens`` tokens (speed does not
depend on trained weights; the workload is stated in the results). The outputs of the two paths
are compared: with greedy decoding they should agree.

    python benchmarks/bench_rewrite.py [--n 16] [--naive-n 4] [--batch-size 16] [--model DIR]

The naive path is slow enough on a small CPU that it runs on the first ``--naive-n`` pairs only;
rates are per pair, and the output comparison covers those pairs.

Writes benchmarks/results/rewrite.json and .md with machine info, load average and the git commit.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.provenance import git_commit, machine_info  # noqa: E402
log = logging.getLogger("bench_rewrite")


def pairs(n: int):
    from core.corpora import epitome_splits

    try:
        test = epitome_splits()["test"]
        return [p.seeker_post for p in test[:n]], [p.response_post for p in test[:n]], "EPITOME test split (first n)"
    except Exception as exc:  # noqa: BLE001 - the benchmark must run without the data too
        log.warning("EPITOME data not available (%s); using examples/low-empathy.jsonl", exc)
        import json

        rows = [json.loads(x) for x in (ROOT / "examples" / "low-empathy.jsonl").read_text().splitlines() if x.strip()]
        rows = (rows * (n // len(rows) + 1))[:n]
        return [r["seeker_post"] for r in rows], [r["response_post"] for r in rows], "examples/low-empathy.jsonl"


def load_policy(model: str | None, cfg, device: str = "cpu"):
    import torch

    from partner.config import SHIPPED_MODELS
    from partner.policy import PartnerPolicy
    from partner import edits as E

    path = Path(model) if model else SHIPPED_MODELS / "policy"
    if (path / "policy_config.json").exists():
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return PartnerPolicy.load(str(path), cfg=cfg, device=device), f"trained policy {where}"
    policy = PartnerPolicy.load(cfg.backbone, cfg=cfg, device=device)
    with torch.no_grad():
        policy.head.bias[E.stop_class(policy.k)] = -1e4  # never stop: a fixed, full workload
    return policy, (f"untrained {cfg.backbone} with STOP masked (every episode edits until "
                    f"max_edits={cfg.max_edits} or the end of the response)")


class NaiveActor:
    """``policy.act`` one example at a time, without a KV cache (greedy; as the authors' code)."""

    def __init__(self, policy):
        self.policy, self.k, self.cfg = policy, policy.k, policy.cfg
        self.forwards = 0

    def act(self, seekers, windows, sample=False, generator=None, sample_sentence=None, top_p=None,
            temperature=None, **_):
        import torch

        from partner import edits as E
        from partner.policy import ActionBatch

        p = self.policy
        positions, sentences, sentence_ids, logp_pos, logp_sent = [], [], [], [], []
        with torch.no_grad():
            for seeker, window in zip(seekers, windows):
                ids = torch.tensor([p.state_ids(seeker, window)], device=p.device)
                out = p.model(input_ids=ids, output_hidden_states=True, use_cache=False)
                self.forwards += 1
                logits = p.head(out.hidden_states[-1][:, -1]).float()
                logits = logits.masked_fill(~p.class_mask([window]), float("-inf"))
                pos = int(logits.argmax(-1))
                gen: list[int] = []
                if pos != E.stop_class(self.k):
                    seq = ids[0].tolist() + p.marker_ids(pos)
                    for _ in range(int(self.cfg.max_sentence_tokens)):
                        step = p.model(input_ids=torch.tensor([seq + gen], device=p.device), use_cache=False).logits[0, -1]
                        self.forwards += 1
                        gen.append(int(step.argmax()))
                        if p._stops(gen):
                            break
                positions.append(pos)
                sentences.append(p.decode_sentence(gen))
                sentence_ids.append(torch.tensor(gen, dtype=torch.long))
                logp_pos.append(torch.log_softmax(logits, -1)[0, pos].cpu())
                logp_sent.append(torch.zeros(()))
        return ActionBatch(torch.tensor(positions), sentences, sentence_ids, torch.stack(logp_pos),
                           torch.stack(logp_sent), None)




def main(argv=None) -> int:
    import torch

    from core.jsonio import atomic_write_json, atomic_write_text
    from partner.config import DEFAULT_CONFIG, load_config
    from partner.episode import run_episodes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="pairs rewritten by each path")
    ap.add_argument("--naive-n", type=int, default=4, help="pairs rewritten by the naive path (the first ones)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default=None, help="policy folder (default: models/policy if shipped)")
    ap.add_argument("--device", default="cpu", help="cpu (the default), cuda, ...")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rewrite"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(0)
    cfg = load_config(DEFAULT_CONFIG).policy
    seekers, responses, source = pairs(args.n)
    policy, what = load_policy(args.model, cfg, args.device)
    log.info("policy: %s; %d pairs from %s", what, len(seekers), source)

    run_episodes(policy, seekers[:2], responses[:2], cfg, sample=False)  # warm-up
    load_before = os.getloadavg()
    t = time.perf_counter()
    batched = []
    for i in range(0, len(seekers), args.batch_size):
        batched += run_episodes(policy, seekers[i:i + args.batch_size], responses[i:i + args.batch_size], cfg,
                                sample=False)
    t_batched = time.perf_counter() - t
    log.info("batched (KV cache, batch %d): %.1f s", args.batch_size, t_batched)

    naive_actor = NaiveActor(policy)
    t = time.perf_counter()
    naive = []
    n_naive = min(args.naive_n, len(seekers))
    for s, r in zip(seekers[:n_naive], responses[:n_naive]):
        naive += run_episodes(naive_actor, [s], [r], cfg, sample=False)
    t_naive = time.perf_counter() - t
    load_after = os.getloadavg()
    log.info("naive (per example, no KV cache): %.1f s, %d forward passes", t_naive, naive_actor.forwards)

    agree = sum(a.text == b.text for a, b in zip(batched, naive)) / max(1, len(naive))
    sentences = sum(len(ep.edits) for ep in batched)
    result = {
        "what": "PARTNER rewrites per second (run_episodes, greedy), batched + KV cache vs naive per-example "
                "loop without KV cache",
        "policy": what, "device": args.device, "data": source, "n": len(seekers), "batch_size": args.batch_size,
        "max_edits": cfg.max_edits, "max_sentence_tokens": cfg.max_sentence_tokens,
        "sentences_written": sentences,
        "batched": {"n": len(seekers), "seconds": round(t_batched, 2),
                    "rewrites_per_s": round(len(seekers) / t_batched, 4)},
        "naive": {"n": n_naive, "seconds": round(t_naive, 2), "rewrites_per_s": round(n_naive / t_naive, 4),
                  "forward_passes": naive_actor.forwards},
        "speedup": round((len(seekers) / t_batched) / (n_naive / t_naive), 2),
        "same_output_share": round(agree, 3),
        "machine": {**machine_info(),
                    "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)]},
        "commit": git_commit(),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result)
    md = (f"# Rewriting throughput\n\n{result['what']}.\n\n"
          f"Policy: {what}. Data: {len(seekers)} pairs from the {source}; {sentences} sentences written "
          f"(max {cfg.max_edits} edits per response, {cfg.max_sentence_tokens} tokens per sentence).\n\n"
          "| path | pairs | seconds | rewrites / s |\n|---|---|---|---|\n"
          f"| batched, KV cache, batch {args.batch_size} | {len(seekers)} | {t_batched:.1f} | "
          f"{len(seekers) / t_batched:.4f} |\n"
          f"| naive per-example loop, no KV cache | {n_naive} | {t_naive:.1f} | {n_naive / t_naive:.4f} |\n\n"
          f"Speed-up: **{result['speedup']:.1f}x**. Identical rewrites from both paths on the {n_naive} pairs both "
          f"rewrote: {agree:.0%}.\n\n"
          f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (1-min load average, above the CPU count "
          "when other jobs shared them: "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after), torch {torch.__version__}, commit "
          f"{result['commit']}.\n")
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
