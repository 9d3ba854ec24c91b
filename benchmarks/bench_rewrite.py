"""Rewriting throughput: the PARTNER episode on this machine, the naive loop and each speed-up, one run.

Every path runs the same episode code (``partner.episode.run_episodes``, greedy) on the same
(seeker, response) pairs; only the actor (``policy.act`` or a stand-in) or the weights differ:

- **naive**: one example at a time, every generated token recomputing the whole sequence with no
  cache, as the authors' code did (``prepare_inputs_for_generation`` returned only ``input_ids``,
  partner-method.md §1.2);
- **batched (769d52b)**: ``PartnerPolicy.act`` as it was before this benchmark's speed-ups: one
  prompt pass per batch of states, the marker and the sentence through the KV cache, every row of
  the batch fed (padding) until the last sentence ends;
- **+ finished rows leave the batch**: ``act`` today without a prefix cache: STOP rows and
  finished sentences drop out of the KV cache, so decoding runs only on sentences being written;
- **+ seeker prefix reused**: also the KV cache of each state's seeker part, computed once per
  episode batch and reused by its later windows and guard retries;
- **+ weights packed**: the policy as partner-rewrite loads it, its Linear layers' weights packed
  once for oneDNN (``core.packed``) instead of at every call; the rows above run plain layers;
- **+ batch N**: the same on partner-rewrite's default batch (``rewrite.batch_size``,
  ``--batch-size``); the rows above run at ``--small-batch``, the default before it (16): every
  decoding step then serves more sentences, and its fixed costs (reading the weights, Python) are
  shared by more rows;
- **+ finished rows leave by quarters** (partner-rewrite): a finished sentence's row stays in the
  decoding batch, fed but unused, until a quarter of the rows have finished, instead of leaving at
  once: dropping rows copies the whole KV cache (46 KB a token for SmolLM2-135M); the two rows
  above it run today's ``act`` with rows leaving at once (``AtOnceActor``);
- **LoRA not merged**: the seeker-prefix path on the policy loaded for training (PEFT adapter
  applied at every layer) instead of merged into the weights, as inference loads it;
- **bf16** / **int8 dynamic** (``--dtypes``): the seeker-prefix path with the backbone cast to bfloat16,
  or its Linear layers dynamically quantised to int8 (``torch.ao.quantization.quantize_dynamic``),
  both from the plain (unpacked) layers;
  not used by partner-rewrite: they change outputs (the share of identical rewrites is reported).

The rows are timed in rounds, each round running every path once on the same pairs in turn, so
load that comes and goes on a shared machine falls on all of them. Wall seconds and this
process's CPU seconds are both reported. The naive path is slow, so it runs on the first
``--naive-n`` pairs only; the speed-up is computed on those pairs for both paths (same work).

    python benchmarks/bench_rewrite.py [--n 128] [--naive-n 4] [--rounds 1] [--dtypes bf16,int8]

The policy is the shipped agent (``models/policy_rl``, else ``models/policy``). Writes
benchmarks/results/rewrite.json and .md with machine info, load average and the git commit.
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
from core.provenance import git_commit, machine_info, parse_benchmark_args  # noqa: E402
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


def policy_path(model: str | None) -> Path:
    from partner.config import SHIPPED_MODELS

    if model:
        return Path(model)
    return SHIPPED_MODELS / ("policy_rl" if (SHIPPED_MODELS / "policy_rl").exists() else "policy")


def load_policy(model: str | None, cfg, device: str = "cpu", trainable: bool = False, packed: bool = True):
    """The policy as partner-rewrite loads it (LoRA merged, weights packed); ``packed=False``: merged,
    plain ``nn.Linear`` layers; ``trainable=True``: the PEFT adapter applied at every layer."""
    from partner.policy import PartnerPolicy

    path = policy_path(model)
    if not (path / "policy_config.json").exists():
        raise SystemExit(f"no trained policy at {path}: pass --model")
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    policy = PartnerPolicy.load(str(path), cfg=cfg, device=device, trainable=trainable or not packed)
    if not packed and not trainable and policy.finetune == "lora":
        policy.model, policy.finetune = policy.model.merge_and_unload().requires_grad_(False), "merged"
    return policy.eval(), f"trained policy {where}"


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


class PreviousActor:
    """``PartnerPolicy.act`` as at commit 769d52b (greedy only): every row stays in the decoding batch
    (fed padding once it stops) and each window's whole prompt runs through the model."""

    def __init__(self, policy):
        self.policy, self.k, self.cfg = policy, policy.k, policy.cfg

    def _forward_cached(self, ids, mask, past, n_before):
        import torch

        p = self.policy
        n_seen = n_before + mask.sum(-1)
        full_mask = mask if past is None else torch.cat([p._mask, mask], dim=1)
        pos_ids = (n_before[:, None] + mask.cumsum(-1) - 1).clamp(min=0)
        out = p.model(input_ids=ids, attention_mask=full_mask, position_ids=pos_ids, past_key_values=past,
                      use_cache=True, output_hidden_states=past is None, logits_to_keep=1)
        p._mask = full_mask
        return out, n_seen

    def act(self, seekers, windows, sample=False, **_):
        import torch

        from partner import edits as E
        from partner.policy import ActionBatch

        p, n = self.policy, len(seekers)
        with torch.no_grad():
            ids, mask = p._left_pad([p.state_ids(s, w) for s, w in zip(seekers, windows)])
            out, seen = self._forward_cached(ids, mask, None, torch.zeros(n, dtype=torch.long, device=p.device))
            pos_logits = p.head(out.hidden_states[-1][:, -1].to(p.head.weight.dtype)).float()
            pos_logits = pos_logits.masked_fill(~p.class_mask(windows), float("-inf"))
            pos_logp = torch.log_softmax(pos_logits, -1)
            pos = pos_logp.argmax(-1)
            stop = E.stop_class(self.k)
            active = [i for i in range(n) if int(pos[i]) != stop]
            gen = [[] for _ in range(n)]
            logps = [[] for _ in range(n)]
            if active:
                mids, mmask = p._left_pad([p.marker_ids(int(pos[i])) if i in active else [] for i in range(n)])
                out, seen = self._forward_cached(mids, mmask, out.past_key_values, seen)
                done = torch.tensor([i not in active for i in range(n)], device=p.device)
                for _ in range(int(self.cfg.max_sentence_tokens)):
                    logits = out.logits[:, -1].float()
                    lp = torch.log_softmax(logits, -1)
                    nxt = torch.where(done, torch.full_like(logits.argmax(-1), p.pad_id), logits.argmax(-1))
                    for i in range(n):
                        if not done[i]:
                            gen[i].append(int(nxt[i]))
                            logps[i].append(lp[i, nxt[i]])
                            if p._stops(gen[i]):
                                done[i] = True
                    if bool(done.all()):
                        break
                    out, seen = self._forward_cached(nxt[:, None], torch.ones_like(nxt)[:, None], out.past_key_values,
                                                     seen)
            p._mask = None
        return ActionBatch(pos, [p.decode_sentence(g) for g in gen], [torch.tensor(g, dtype=torch.long) for g in gen],
                           pos_logp.gather(-1, pos[:, None]).squeeze(-1),
                           torch.stack([torch.stack(x).sum() if x else torch.zeros(()) for x in logps]), pos_logits)


class AtOnceActor:
    """Today's ``act`` with every finished row leaving the decoding batch at once, as at adfcde2."""

    def __init__(self, policy):
        self.policy, self.k, self.cfg = policy, policy.k, policy.cfg

    def act(self, *a, **kw):
        import partner.policy

        saved = partner.policy._COMPACT_AT
        partner.policy._COMPACT_AT = 1e-9
        try:
            return self.policy.act(*a, **kw)
        finally:
            partner.policy._COMPACT_AT = saved


class Actor:
    """Today's ``act`` without the seeker-prefix cache (finished rows still leave the batch)."""

    def __init__(self, policy):
        self.policy, self.k, self.cfg = policy, policy.k, policy.cfg

    def act(self, *a, prefix_cache=None, **kw):
        return self.policy.act(*a, **kw)


def cast(policy, dtype: str):
    """A copy of ``policy`` whose backbone runs in bfloat16, or with int8 dynamically quantised Linears."""
    import copy

    import torch

    p = copy.deepcopy(policy)
    if dtype == "bf16":
        p.model.to(torch.bfloat16)
    elif dtype == "int8":
        from torch.ao.quantization import quantize_dynamic

        p.model = quantize_dynamic(p.model, {torch.nn.Linear}, dtype=torch.qint8)
    else:
        raise ValueError(f"--dtypes: bf16 or int8, not {dtype!r}")
    return p


def run(actor, seekers, responses, cfg, batch_size: int):
    from partner.episode import run_episodes

    eps = []
    for i in range(0, len(seekers), batch_size):
        eps += run_episodes(actor, seekers[i:i + batch_size], responses[i:i + batch_size], cfg, sample=False)
    return eps


def main(argv=None) -> int:
    import torch

    from core.jsonio import atomic_write_json, atomic_write_text
    from partner.config import DEFAULT_CONFIG, load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128, help="pairs rewritten by each batched path")
    ap.add_argument("--naive-n", type=int, default=4, help="pairs rewritten by the naive path (the first ones)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="partner-rewrite's path's batch (default: rewrite.batch_size)")
    ap.add_argument("--small-batch", type=int, default=16, help="the batch of every other batched path")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of every path in turn (times are summed)")
    ap.add_argument("--dtypes", default="bf16,int8", help="extra rows with the backbone cast: bf16,int8 or ''")
    ap.add_argument("--model", default=None, help="policy folder (default: the shipped agent)")
    ap.add_argument("--device", default="cpu", help="cpu (the default), cuda, ...")
    args = parse_benchmark_args(ap, argv, "rewrite")
    torch.manual_seed(0)
    config = load_config(DEFAULT_CONFIG)
    cfg = config.policy
    batch = args.batch_size or config.rewrite.batch_size
    seekers, responses, source = pairs(args.n)
    policy, what = load_policy(args.model, cfg, args.device)
    plain, _ = load_policy(args.model, cfg, args.device, packed=False)
    cfg = policy.cfg  # as the policy was trained (window, context)
    n_naive = min(args.naive_n, len(seekers))
    default = "+ finished rows leave by quarters (partner-rewrite)"
    big = f"+ batch {batch} (as at adfcde2)"
    paths = {"naive per-example loop, no KV cache": NaiveActor(plain),
             "batched, KV cache (as at 769d52b)": PreviousActor(plain),
             "+ finished rows leave the batch": Actor(plain),
             "+ seeker prefix reused": plain,
             "+ weights packed": AtOnceActor(policy),
             big: AtOnceActor(policy),
             default: policy}
    paths["seeker prefix reused, LoRA not merged (PEFT)"] = load_policy(args.model, cfg, args.device, trainable=True)[0]
    for d in filter(None, args.dtypes.split(",")):
        paths[f"seeker prefix reused, {'bfloat16' if d == 'bf16' else 'int8 dynamic quantisation'}"] = cast(plain, d)
    sizes = {name: args.small_batch for name in paths}
    sizes[big] = sizes[default] = batch
    log.info("policy: %s; %d pairs from %s; paths: %s", what, len(seekers), source, ", ".join(paths))

    for actor in paths.values():  # warm-up
        run(actor, seekers[:1], responses[:1], cfg, 1)
    wall = {k: 0.0 for k in paths}
    cpu = {k: 0.0 for k in paths}
    wall_small = {k: 0.0 for k in paths}  # on the naive path's pairs
    texts: dict[str, list[str]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, actor in paths.items():
            todo = [(n_naive, wall_small)] + ([] if name.startswith("naive") else [(len(seekers), wall)])
            for n, into in todo:
                t, c = time.perf_counter(), time.process_time()
                eps = run(actor, seekers[:n], responses[:n], cfg, sizes[name])
                into[name] += time.perf_counter() - t
                if into is wall or name.startswith("naive"):
                    cpu[name] += time.process_time() - c
                    texts[name] = [ep.text for ep in eps]
                    if name == default:
                        sentences = sum(len(ep.edits) for ep in eps)
            if name.startswith("naive"):
                wall[name] = wall_small[name]
            log.info("%s: %.1f s (%d pairs), %.1f s on the first %d", name, wall[name], len(texts[name]),
                     wall_small[name], n_naive)
        loads.append(os.getloadavg()[0])

    naive_name = next(iter(paths))
    base = texts["batched, KV cache (as at 769d52b)"]
    rows = []
    for name in paths:
        n = len(texts[name])
        same_prev = sum(a == b for a, b in zip(texts[name], base)) / len(texts[name])
        same_naive = sum(a == b for a, b in zip(texts[name][:n_naive], texts[naive_name])) / n_naive
        rows.append({"path": name, "pairs": n, "seconds": round(wall[name] / args.rounds, 2),
                     "cpu_seconds": round(cpu[name] / args.rounds, 2),
                     "rewrites_per_s": round(n * args.rounds / wall[name], 4),
                     "x_naive_rate": round((n / wall[name]) / (n_naive / wall[naive_name]), 2),
                     "x_naive_rate_cpu": round((n / cpu[name]) / (n_naive / cpu[naive_name]), 2),
                     "speedup_vs_naive_same_pairs": round(wall_small[naive_name] / wall_small[name], 2),
                     "same_as_769d52b": round(same_prev, 3), "same_as_naive": round(same_naive, 3)})
    result = {
        "what": "PARTNER rewrites per second (run_episodes, greedy): the naive per-example loop, the batched "
                "path before this benchmark's speed-ups, and each speed-up on top",
        "policy": what, "device": args.device, "data": source, "n": len(seekers), "naive_n": n_naive,
        "batch_size": batch, "small_batch": args.small_batch, "rounds": args.rounds, "max_edits": cfg.max_edits,
        "max_sentence_tokens": cfg.max_sentence_tokens, "sentences_written": sentences, "rows": rows,
        "speedup": next(r["x_naive_rate"] for r in rows if r["path"] == default),
        "speedup_cpu": next(r["x_naive_rate_cpu"] for r in rows if r["path"] == default),
        "machine": {**machine_info(), "load_average_per_round": [round(x, 2) for x in loads]},
        "commit": git_commit(), "command": "python benchmarks/bench_rewrite.py " + " ".join(argv or sys.argv[1:]),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result)
    lines = [f"# Rewriting throughput ({args.device})", "", f"{result['what']}.", "",
             f"Policy: {what}. Data: {len(seekers)} pairs from the {source} ({n_naive} for the naive loop); "
             f"{sentences} sentences written (max {cfg.max_edits} edits per response, {cfg.max_sentence_tokens} "
             f"tokens per sentence), batch {args.small_batch} (partner-rewrite's path: {batch}), {args.rounds} "
             f"round(s) of every path in turn.", "",
             "| path | pairs | wall s | CPU s | rewrites / s | × naive (wall) | × naive (CPU) | "
             "× naive, same %d pairs (wall) | same text as 769d52b | same text as naive |" % n_naive,
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['path']} | {r['pairs']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                     f"{r['rewrites_per_s']:.3f} | {r['x_naive_rate']:.1f} | {r['x_naive_rate_cpu']:.1f} | "
                     f"{r['speedup_vs_naive_same_pairs']:.1f} | {r['same_as_769d52b']:.0%} | {r['same_as_naive']:.0%} |")
    lines += ["", f"partner-rewrite's path (batch {batch}) vs the naive loop, rewrites per second: "
              f"**{result['speedup']:.1f}x** wall, {result['speedup_cpu']:.1f}x in this process's CPU time. "
              f"(× naive: each path's rate over its pairs ÷ the naive rate over the first {n_naive}; the same-pairs "
              f"column runs every path on those {n_naive} pairs only, as one small batch.)",
              "", f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads); 1-min load average before and after each round: "
              f"{', '.join(f'{x:.1f}' for x in loads)} (a shared machine: compare rows of one run, not runs); "
              f"commit {result['commit']}.", "", f"Command: `{result['command']}`", ""]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
