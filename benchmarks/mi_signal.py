"""What r_m adds to the RL reward within a state, and whether a cheap estimator keeps it.

RLOO (the shipped RL recipe) compares the rollouts of one state with each other, so what a reward
term contributes is its *differences between rollouts of the same state*. For ``--n`` EPITOME dev
states this builds five rollouts each, as one RL step writes them: the original (a STOP), a candidate
sentence inserted at the start, inserted after the first sentence, replacing the second sentence (or
appended), and a sentence of another post's response inserted at the start (off-topic). Candidates
come from bench_rewards' stock sentences and the retrieval index (human-written EPITOME-train
sentences). Every rollout gets the exact r_m (forward and reverse terms, rewards/mi.py), r_f
(rewards/fluency.py) and the MiniLM cosine of post and rollout, with this process's CPU seconds each.

Reported:

- the within-state spread of w_m·Δr_m against w_f·Δr_f (the paper's weights, 0.1 and 10), Δ from
  the state's original;
- the share of within-state rollout pairs whose order under w_f·r_f + w_m·r_m changes when r_m is
  left out (how often MI decides anything fluency has not decided already);
- a *delta estimator*, exact r_m on the original (one per state, cached in RL) plus a linear model
  of Δr_m from Δlog r_f (free: the fluency pass) and Δcosine, fitted on half the states and tested
  on the other half: Pearson of r_m, of Δr_m, and within-state pair concordance, for each term.

    python benchmarks/mi_signal.py [--n 120] [--threads 2]

Writes benchmarks/results/mi-signal.json and .md with the machine, load average and commit.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from core.provenance import git_commit, machine_info, parse_benchmark_args, write_report  # noqa: E402

log = logging.getLogger("mi_signal")


def rollouts(states, pool, seed: int = 0):
    """(seekers, rewrites, state index per rollout); the first rollout of each state is its original."""
    from core.text import split_sentences

    rng = random.Random(seed)
    seekers, rewrites, group = [], [], []
    for gi, p in enumerate(states):
        sents = split_sentences(p.response_post)
        other = split_sentences(states[(gi + 7) % len(states)].response_post)
        variants = [sents, [rng.choice(pool)] + sents, sents[:1] + [rng.choice(pool)] + sents[1:],
                    [sents[0], rng.choice(pool)] + sents[2:] if len(sents) > 1 else sents + [rng.choice(pool)],
                    [rng.choice(other)] + sents]
        for v in variants:
            seekers.append(p.seeker_post)
            rewrites.append(" ".join(v))
            group.append(gi)
    return seekers, rewrites, group


def concordance(groups, truth, est) -> float:
    """Share of within-state pairs (truth differs) that ``est`` orders as ``truth`` does."""
    hits = total = 0
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        for a in idx:
            for b in idx:
                if a < b and truth[a] != truth[b]:
                    total += 1
                    hits += (truth[a] > truth[b]) == (est[a] > est[b])
    return hits / total if total else float("nan")


def main(argv=None) -> int:
    import numpy as np
    from scipy.stats import pearsonr

    from bench_rewards import CANDIDATES
    from classifiers.reverse import (FORWARD_LABELS, REVERSE_LABELS, doc_start_id, encode_conditional,
                                     encode_target, encode_unconditional)
    from core.corpora import epitome_splits
    from core.registry import load_sentence_embedder
    from partner.config import load_config
    from partner.retrieval import RetrievalIndex
    from rewards.config import RewardConfig
    from rewards.stack import RewardStack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120, help="EPITOME dev states (five rollouts each)")
    args = parse_benchmark_args(ap, argv, "mi-signal")
    cfg = load_config(None)
    states = [p for p in epitome_splits()["dev"] if p.response_post.strip()][:args.n]
    index = RetrievalIndex.build_or_load(cfg.data_path())
    seekers, rewrites, group = rollouts(states, list(CANDIDATES) + list(index.sentences[:200]))
    w = RewardConfig()
    stack = RewardStack(RewardConfig(w_empathy=0, w_coherence=0), policy_backbone=cfg.policy.backbone)
    mi, fl = stack.components["mi"], stack.components["fluency"]
    load = [os.getloadavg()[0]]
    cpu = {}
    c = time.process_time()
    fwd, rev = mi.parts(seekers, rewrites)
    cpu["r_m (forward + reverse)"] = time.process_time() - c
    c = time.process_time()
    flu = fl.scores(rewrites)
    cpu["r_f"] = time.process_time() - c
    emb = load_sentence_embedder("minilm")
    c = time.process_time()
    es = emb.encode(seekers, batch_size=32, normalize_embeddings=True)
    er = emb.encode(rewrites, batch_size=32, normalize_embeddings=True)
    cpu["MiniLM cosine"] = time.process_time() - c
    # Bayes' rule: log p(S|R̂) = log p(R̂|S) + log p(S) - log p(R̂), and log p(S) is fixed within a state, so
    # the reverse term's within-state change is (Δ sum log p→(R̂|S) - Δ sum log p(R̂)) / |S| under one LM.
    # Sums from the two passes the stack runs anyway (forward term, fluency), and the marginal once more
    # in the forward term's own format, "<doc> Reply: R̂" (one extra pass, timed).
    tok = mi.forward_lm.tok
    n_fwd = [len(ids) - k for ids, k in (encode_conditional(tok, s, r, FORWARD_LABELS, mi.max_seeker_tokens,
                                                               mi.max_response_tokens) for s, r in zip(seekers, rewrites))]
    n_flu = [len(ids) - k for ids, k in (encode_unconditional(tok, r, fl.max_tokens) for r in rewrites)]
    n_post = [len(ids) - k for ids, k in (encode_conditional(tok, r, s, REVERSE_LABELS, *mi.reverse_lengths)
                                          for s, r in zip(seekers, rewrites))]
    reply = [doc_start_id(tok)] + tok.encode(FORWARD_LABELS[1], add_special_tokens=False)
    c = time.process_time()
    marg = mi.forward_lm.target_logprobs([(reply + encode_target(tok, r, mi.max_response_tokens), len(reply))
                                          for r in rewrites], adapter=False, batch_size=mi.batch_size)
    cpu["marginal log p(R̂) after 'Reply:' (extra pass)"] = time.process_time() - c
    load.append(os.getloadavg()[0])

    G = np.array(group)
    fwd, rev, flu = np.array(fwd), np.array(rev), np.array(flu)
    cos = (es * er).sum(1)
    rm = w.lambda_mi * fwd + (1 - w.lambda_mi) * rev
    first = {}
    for i, g in enumerate(group):
        first.setdefault(g, i)
    o = np.array([first[g] for g in group])
    edited = o != np.arange(len(group))
    d_rm, d_logf, d_cos = rm - rm[o], np.log(flu) - np.log(flu[o]), cos - cos[o]
    spread = {"w_m·Δr_m sd": float((w.w_mi * d_rm[edited]).std()),
              "w_f·Δr_f sd": float((w.w_fluency * (flu - flu[o])[edited]).std())}
    both = w.w_fluency * flu + w.w_mi * rm
    flips = 1 - concordance(group, both, w.w_fluency * flu)

    train = np.isin(G, np.unique(G)[::2])  # every other state fits the estimators, the rest tests them
    test = ~train
    rows = []
    for name, cols in (("r_m of the original only", []), ("+ a·Δlog r_f", [d_logf]),
                       ("+ a·Δlog r_f + b·Δcos", [d_logf, d_cos]), ("+ b·Δcos", [d_cos])):
        row = {"estimator": name}
        for term, truth in (("r_m", rm), ("reverse", rev)):
            d_truth = truth - truth[o]
            if cols:
                X = np.stack(cols, 1)
                coef = np.linalg.lstsq(X[train], d_truth[train], rcond=None)[0]
                est = truth[o] + X @ coef
                row[f"{term}_coef"] = [round(float(x), 4) for x in coef]
            else:
                est = truth[o].astype(float)
            m, me = test, test & edited
            row[f"{term}_pearson"] = round(float(pearsonr(truth[m], est[m])[0]), 4)
            row[f"{term}_delta_pearson"] = (round(float(pearsonr(d_truth[me], (est - truth[o])[me])[0]), 4)
                                           if cols else None)
            row[f"{term}_concordance"] = round(concordance(list(G[m]), truth[m], est[m]), 4)
        rows.append(row)
    # Bayes rows: the forward term stays exact, the reverse term is the original's exact value plus the
    # Bayes change; "fitted" lets least squares scale the two sums (one LM's joint is not the other's)
    fwd_sum, flu_sum = fwd * np.array(n_fwd), np.log(flu) * np.array(n_flu)
    marg_sum, n_s = np.array([s for s, _ in marg]), np.array(n_post, dtype=float)
    bayes = []
    for name, margin in (("fluency pass as the marginal (no extra pass)", flu_sum),
                         ("'Reply:' marginal (one extra pass)", marg_sum)):
        for fitted in (False, True):
            X = np.stack([(fwd_sum - fwd_sum[o]) / n_s, (margin - margin[o]) / n_s], 1)
            coef = (np.linalg.lstsq(X[train], (rev - rev[o])[train], rcond=None)[0] if fitted
                    else np.array([1.0, -1.0]))
            est_rev = rev[o] + X @ coef
            est_rm = w.lambda_mi * fwd + (1 - w.lambda_mi) * est_rev
            m, me = test, test & edited
            bayes.append({"estimator": name + (", fitted" if fitted else ""), "coef": [round(float(x), 4) for x in coef],
                          "r_m_pearson": round(float(pearsonr(rm[m], est_rm[m])[0]), 4),
                          "r_m_concordance": round(concordance(list(G[m]), rm[m], est_rm[m]), 4),
                          "reverse_delta_pearson": round(float(pearsonr((rev - rev[o])[me], (est_rev - rev[o])[me])[0]), 4),
                          "reverse_concordance": round(concordance(list(G[m]), rev[m], est_rev[m]), 4)})
    n = len(rewrites)
    result = {"what": f"{n} rollouts of {len(states)} EPITOME dev states (5 each)",
              "weights": {"w_m": w.w_mi, "w_f": w.w_fluency},
              "cpu_s_per_rollout": {k: round(v / n, 4) for k, v in cpu.items()}, "within_state_spread": spread,
              "fluency_plus_mi_pairs_reordered_by_mi": round(flips, 4), "estimators": rows, "bayes_reverse": bayes,
              "machine": {**machine_info(), "load_average_before_after": [round(x, 2) for x in load]},
              "commit": git_commit(), "command": "python benchmarks/mi_signal.py " + " ".join(argv or sys.argv[1:])}
    out = Path(args.out)
    lines = [f"# r_m within a state: {result['what']}", "",
             "CPU seconds per rollout (cold, nothing cached): " +
             ", ".join(f"{k} {v:.3f}" for k, v in result["cpu_s_per_rollout"].items()) + ".", "",
             f"Within-state spread at the paper's weights: sd of w_m·Δr_m {spread['w_m·Δr_m sd']:.4f}, of "
             f"w_f·Δr_f {spread['w_f·Δr_f sd']:.4f}. Leaving r_m out of w_f·r_f + w_m·r_m reorders "
             f"{flips:.1%} of the within-state rollout pairs.", "",
             "Delta estimators (exact r_m on the state's original, a linear model of the change; fitted on half "
             "the states, tested on the other half):", "",
             "| estimator | r_m Pearson | Δr_m Pearson | r_m pair concordance | reverse Pearson | Δreverse Pearson | "
             "reverse pair concordance |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        dp = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {r['estimator']} | {r['r_m_pearson']:.3f} | {dp(r['r_m_delta_pearson'])} | "
                     f"{r['r_m_concordance']:.3f} | {r['reverse_pearson']:.3f} | {dp(r['reverse_delta_pearson'])} | "
                     f"{r['reverse_concordance']:.3f} |")
    lines += ["", "Bayes' rule for the reverse term (the forward term exact; the reverse term the original's exact value "
              "plus (Δ sum log p→(R̂|S) − Δ sum log p(R̂)) / |S|, same held-out half):", "",
              "| marginal log p(R̂) | coefficients | r_m Pearson | r_m pair concordance | Δreverse Pearson | "
              "reverse pair concordance |", "|---|---|---|---|---|---|"]
    for r in bayes:
        lines.append(f"| {r['estimator']} | {r['coef']} | {r['r_m_pearson']:.3f} | {r['r_m_concordance']:.3f} | "
                     f"{r['reverse_delta_pearson']:.3f} | {r['reverse_concordance']:.3f} |")
    write_report(out, result, lines, f"{load[0]:.1f} before, {load[1]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
