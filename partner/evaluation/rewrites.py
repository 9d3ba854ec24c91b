"""partner-eval rewrites: automatic metrics of partner-rewrite outputs, several files side by side.

For each output file (one row per file / method): change in empathy overall and by the original's
total 0..6 (paper Fig. 4a), perplexity of the rewrites under a frozen reference LM
(``rewards.reference_lm``, empty = ``policy.backbone``), specificity of the original and of the
rewritten response, distinct-1/2, coherence of the edited sentences, word-level edit rate and
BLEU against references where the input lines carry them (``"reference"`` or ``"references"``).
The definitions are in ``partner/metrics.py``. Each ΔEmpathy has a bootstrap 95 % CI, and with two
or more files every file is compared, input by input, with one of them (``--against``, default the
last file): mean difference, bootstrap CI, sign-flip permutation p-value. That is the test an
ablation needs: two rewriters' means can differ by less than either's CI and still differ reliably.

Empathy comes from the files' own ``empathy`` before/after scores; files written with
``--scorer none`` are scored here with the shipped classifier if it exists. ``--scorer FOLDER``
re-scores every file with that classifier instead: a held-out judge for rewriters that trained or
reranked against the shipped one (the gain they show under their own classifier can be partly
selection against it). ``--scorer micromodels`` (the shipped ``models/micromodels``, or any folder
``partner-train micromodels`` wrote) is a judge that cannot see the seeker post at all (seed 001). Metrics whose model is
missing (classifier, coherence model) are reported as n/a with the reason, never guessed.

Writes ``rewrites.json``, ``rewrites.md``, ``empathy_by_level.png`` and ``edits_by_level.png`` into
``--out`` (default: ``<first file's folder>/eval-rewrites``) and prints the markdown table.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from classifiers.coherence import CoherenceScorer
from classifiers.scorer import MECHANISMS
from core import corpora
from core.configuration import ConfigError
from core.jsonio import atomic_write_json, atomic_write_text, DataError, iter_json_objects
from core.provenance import git_commit, machine_info
from core.registry import load_causal_lm, load_sentence_embedder
from partner import metrics, rewrite_jsonl
from partner.config import DEFAULT_CONFIG, load_config
from partner.edits import written_sentences
from partner.guards import SentenceGuard, words
from partner.rewrite_jsonl import ScorerUnavailable

from .probe import derangement

log = logging.getLogger(__name__)




def read_rewrites(path: Path) -> tuple[list[dict], int]:
    """(rewritten records, number of error records) of a partner-rewrite output."""
    records, errors = [], 0
    for n, obj in iter_json_objects(path):
        if "rewritten_response" not in obj:
            if "error" in obj:
                errors += 1
                continue
            raise DataError(path, n, "rewritten_response", "is missing: not a partner-rewrite output")
        for field in ("seeker_post", "response_post"):
            if not isinstance(obj.get(field), str):
                raise DataError(path, n, field, "is missing or not a string")
        records.append(obj)
    return records, errors


def references_of(rec: dict) -> list[str] | None:
    refs = rec.get("references", rec.get("reference"))
    if refs is None:
        return None
    refs = [refs] if isinstance(refs, str) else [r for r in refs if isinstance(r, str)]
    return refs or None


class Models:
    """The evaluation models, loaded once on first use and shared by every file."""

    def __init__(self, cfg, device: str | None = None):
        self.cfg, self.device = cfg, device
        self._cache: dict = {}
        self.notes: dict[str, str] = {}

    def _get(self, key, load):
        if key not in self._cache:
            try:
                self._cache[key] = load()
            except (ImportError, FileNotFoundError, OSError) as exc:
                log.warning("%s unavailable: %s", key, exc)
                self.notes[key] = f"n/a: {exc}"
                self._cache[key] = None
        return self._cache[key]

    def embedder(self):
        return self._get("specificity embedder", lambda: load_sentence_embedder(
            self.cfg.rewrite.retrieval_embedder, device=self.device))

    def reference_lm(self):
        name = self.cfg.rewards.reference_lm or self.cfg.policy.backbone
        return self._get("reference LM", lambda: load_causal_lm(name, device=self.device))

    def coherence(self):
        def load():
            return CoherenceScorer.load(device=self.device)
        return self._get("coherence model", load)

    def preference(self):
        def load():
            from classifiers.preference import PreferenceModel

            return PreferenceModel.from_pretrained(self.cfg.rewards.preference_model or None, device=self.device)
        return self._get("preference model", load)

    def empathy(self):
        def load():
            try:
                return rewrite_jsonl.load_scorer(self.cfg.rewrite.scorer if self.cfg.rewrite.scorer != "none" else "")
            except ScorerUnavailable as exc:
                raise FileNotFoundError(str(exc)) from exc
        return self._get("empathy classifier", load)


def _item_key(index: int, rec: dict) -> str:
    """What identifies an input across rewrite files: its id (else its position) and its response."""
    return f"{rec.get('id', index)}\x00{rec['response_post']}"


def scored_with_different_classifiers(files: list[Path]) -> int:
    """How many input ids have different 'before' empathy scores in different files (0 = consistent).

    The original response is the same in every file, so a disagreement means the files were scored
    by different classifier versions and their empathy columns are not comparable.
    """
    seen: dict[str, int] = {}
    clash: set[str] = set()
    for f in files:
        for r in read_rewrites(f)[0]:
            emp = r.get("empathy")
            if r.get("id") is None or not isinstance(emp, dict):
                continue
            key, total = _item_key(0, r), int(emp["before"]["total"])  # r has an id: the index is unused
            if seen.setdefault(key, total) != total:
                clash.add(key)
    return len(clash)


def degenerate_edits(seekers: list[str], originals: list[str], edits: list[list[dict]]) -> dict:
    """Shares of the written sentences that partner.guards would reject (at its default thresholds), and
    the share that are questions (the form RL against the classifier collapses onto)."""
    g = SentenceGuard()
    written = [(s, t, others) for s, o, es in zip(seekers, originals, edits) for t, others in written_sentences(o, es)]
    if not written:
        return {"written_sentences": 0, "seeker_copy_rate": None, "response_copy_rate": None,
                "repetition_rate": None, "risk_rate": None, "unsafe_rate": None, "question_rate": None}
    n = len(written)
    return {"written_sentences": n,
            "seeker_copy_rate": sum(g.copies(s, t) for s, t, _ in written) / n,
            "response_copy_rate": sum(g.duplicates(o, t) for _, t, o in written) / n,
            "repetition_rate": sum(g.repeats(t) for _, t, _ in written) / n,
            "risk_rate": sum(g.risky(t) for _, t, _ in written) / n,
            "unsafe_rate": sum(g.unsafe(t) for _, t, _ in written) / n,
            "question_rate": sum(t.rstrip().endswith("?") for _, t, _ in written) / n}


def sentence_diversity(edits: list[list[dict]]) -> dict:
    """How varied the written sentences are, over the whole file: distinct / written (words lower-cased,
    punctuation dropped), and the most common one with its share. A policy that collapses onto one
    stock sentence ("I'm sorry to hear that.") shows here, where corpus distinct-n over whole
    responses, dominated by the original text, barely moves."""
    written = [" ".join(words(e["sentence"])) for es in edits for e in es if e.get("sentence")]
    if not written:
        return {"distinct_sentence_rate": None, "top_sentence": None, "top_sentence_share": None}
    top, n = Counter(written).most_common(1)[0]
    return {"distinct_sentence_rate": len(set(written)) / len(written), "top_sentence": top,
            "top_sentence_share": n / len(written)}


def _method(records: list[dict]) -> str:
    return Counter(r.get("method", "?") for r in records).most_common(1)[0][0] if records else "?"


def paired_rows(rows: list[dict], against: int, key: str = "_items") -> list[dict]:
    """ΔEmpathy (``key`` = "_items") or the predicted win rate against the original (``"_pref_items"``)
    of every other file minus that of ``rows[against]``, on the inputs both rewrote."""
    ref = rows[against].get(key)
    if not ref:
        return []
    labels = _labels(rows)
    out = []
    for i, (lab, r) in enumerate(zip(labels, rows)):
        items = r.get(key)
        if i == against or not items:
            continue
        common = [k for k in items if k in ref]
        comp = metrics.paired_comparison([items[k] for k in common], [ref[k] for k in common])
        out.append({"method": lab, "against": labels[against], **comp})
    return out


def context_check(seekers: list[str], originals: list[str], rewrites: list[str], scorer,
                  own_totals: tuple[list[int], list[int]] | None = None) -> dict:
    """Does a rewrite's empathy gain depend on the seeker post it was written for?

    Each original and its rewrite are scored under their own seeker post and under an unrelated one
    (the fixed derangement of ``partner-eval probe``; inputs whose derangement finds no other post are
    left out). ``gain_own`` and ``gain_unrelated`` are the mean changes in empathy total under each;
    ``post_specific`` pairs them input by input (own minus unrelated). A gain the classifier pays just
    as much under someone else's post is credited for the form of the sentences, not for fitting the post.
    ``own_totals`` = (before, after) totals that ``scorer`` already gave under the own posts, for every
    input; they are reused instead of scored again.
    """
    from types import SimpleNamespace

    other = derangement([SimpleNamespace(sp_id=s) for s in seekers])
    keep = [i for i, j in enumerate(other) if seekers[j] != seekers[i]]
    if not keep:
        return {"n": 0, "gain_own": None, "gain_unrelated": None, "ci95_unrelated": None, "post_specific": None}
    own = [seekers[i] for i in keep]
    unrelated = [seekers[other[i]] for i in keep]
    orig = [originals[i] for i in keep]
    new = [rewrites[i] for i in keep]
    n = len(keep)
    if own_totals is None:
        totals = [r.total for r in scorer.score(own + own, orig + new, rationales=False, progress=True)]
        own_before, own_after = totals[:n], totals[n:]
    else:
        own_before, own_after = ([t[i] for i in keep] for t in own_totals)
    totals = [r.total for r in scorer.score(unrelated + unrelated, orig + new, rationales=False, progress=True)]
    gain_own = [a - b for b, a in zip(own_before, own_after)]
    gain_unrelated = [a - b for b, a in zip(totals[:n], totals[n:])]
    return {"n": n, "gain_own": metrics.mean(gain_own), "gain_unrelated": metrics.mean(gain_unrelated),
            "ci95_unrelated": metrics.bootstrap_ci(gain_unrelated),
            "post_specific": metrics.paired_comparison(gain_own, gain_unrelated)}


def evaluate_file(path: Path, models: Models, rescore: bool = False, check_context: bool = False) -> dict:
    records, errors = read_rewrites(path)
    if not records:
        raise ValueError(f"{path}: no rewritten records")
    method = _method(records)
    seekers = [r["seeker_post"] for r in records]
    originals = [r["response_post"] for r in records]
    rewrites = [r["rewritten_response"] for r in records]
    edits = [r.get("edits") or [] for r in records]
    log.info("%s: %d records (%s), %d error records", path, len(records), method, errors)
    row: dict = {"file": str(path), "method": method, "n": len(records), "errors": errors}

    # empathy: the file's own scores, else the classifier here
    before = after = None
    mech_before: dict[str, list[int]] = {}
    mech_after: dict[str, list[int]] = {}
    if not rescore and all(isinstance(r.get("empathy"), dict) for r in records):
        before = [int(r["empathy"]["before"]["total"]) for r in records]
        after = [int(r["empathy"]["after"]["total"]) for r in records]
        if all(m in r["empathy"]["before"] and m in r["empathy"]["after"] for r in records for m in MECHANISMS):
            mech_before = {m: [int(r["empathy"]["before"][m]) for r in records] for m in MECHANISMS}
            mech_after = {m: [int(r["empathy"]["after"][m]) for r in records] for m in MECHANISMS}
        row["empathy_source"] = "file"
    elif models.empathy() is not None:
        scored = models.empathy().score(seekers + seekers, originals + rewrites, progress=True)
        before = [s.total for s in scored[:len(records)]]
        after = [s.total for s in scored[len(records):]]
        mech_before = {m: [s.levels[m] for s in scored[:len(records)]] for m in MECHANISMS}
        mech_after = {m: [s.levels[m] for s in scored[len(records):]] for m in MECHANISMS}
        row["empathy_source"] = "scored by partner-eval"
    else:
        row["empathy_source"] = models.notes.get("empathy classifier", "n/a")
    if before is not None:
        row["empathy"] = metrics.empathy_change_by_level(before, after)
        deltas = [a - b for b, a in zip(before, after)]
        row["empathy"]["ci95"] = metrics.bootstrap_ci(deltas)
        row["empathy_before"] = metrics.mean(before)
        row["empathy_after"] = metrics.mean(after)
        if mech_before:  # which mechanisms the gain comes from
            row["empathy_by_mechanism"] = {}
            for m in MECHANISMS:
                d = [a - b for b, a in zip(mech_before[m], mech_after[m])]
                row["empathy_by_mechanism"][m] = {"mean": metrics.mean(d), "ci95": metrics.bootstrap_ci(d),
                                                  "before": metrics.mean(mech_before[m]),
                                                  "after": metrics.mean(mech_after[m])}
        if check_context and models.empathy() is not None:
            scored_here = row["empathy_source"] == "scored by partner-eval"  # same classifier: reuse its totals
            row["context_check"] = context_check(seekers, originals, rewrites, models.empathy(),
                                                 (before, after) if scored_here else None)
        # per-input changes, for the paired comparison in main(); not written to the report
        row["_items"] = {_item_key(i, r): d for i, (r, d) in enumerate(zip(records, deltas))}

    pref = models.preference()
    if pref is not None:  # the learned reader: its score, and P(raters prefer the rewrite to the original)
        import math

        s = pref.score(seekers + seekers, originals + rewrites)
        n = len(records)
        win = [1.0 / (1.0 + math.exp(-(s[n + i] - s[i]))) for i in range(n)]
        row["preference_original"] = metrics.mean(s[:n])
        row["preference"] = metrics.mean(s[n:])
        row["preference_win"] = metrics.mean(win)
        row["preference_win_ci95"] = metrics.bootstrap_ci(win)
        row["_pref_items"] = {_item_key(i, r): w for i, (r, w) in enumerate(zip(records, win))}
    lm = models.reference_lm()
    if lm is not None:
        ppl = metrics.perplexity(rewrites, *lm, progress=True)
        row["perplexity"] = ppl["corpus"]
        row["perplexity_mean_per_text"] = metrics.mean(ppl["per_text"])
    emb = models.embedder()
    if emb is not None:
        row["specificity_original"] = metrics.mean(metrics.specificity(seekers, originals, emb))
        row["specificity"] = metrics.mean(metrics.specificity(seekers, rewrites, emb))
    row["distinct_1"] = metrics.distinct_n(rewrites, 1)
    row["distinct_2"] = metrics.distinct_n(rewrites, 2)
    coh = models.coherence()
    if coh is not None:
        per = metrics.coherence(originals, edits, coh.prob)
        row["coherence"] = metrics.mean(per)
        row["coherence_n"] = sum(c is not None for c in per)
    dist = [metrics.edit_distance_words(o, r) for o, r in zip(originals, rewrites)]
    rates = [metrics.edit_rate(o, r) for o, r in zip(originals, rewrites)]
    row["edit_rate"] = metrics.mean(rates)
    row.update(degenerate_edits(seekers, originals, edits))
    row.update(sentence_diversity(edits))
    row["edits_per_response"] = metrics.mean(len(e) for e in edits)
    row["changed"] = metrics.mean(float(o != r) for o, r in zip(originals, rewrites))
    row["words_original"] = metrics.mean(len(metrics.word_tokenize(o)) for o in originals)
    row["words_rewritten"] = metrics.mean(len(metrics.word_tokenize(r)) for r in rewrites)
    refs = [references_of(r) for r in records]
    if any(refs):
        have = [(h, rf) for h, rf in zip(rewrites, refs) if rf]
        row["bleu"] = metrics.corpus_bleu([h for h, _ in have], [rf for _, rf in have])
        row["bleu_n"] = len(have)
    if before is not None:
        row["edit_distance_by_level"] = metrics.group_by_level(before, dist)
        row["edits_by_level"] = metrics.group_by_level(before, [len(e) for e in edits])
    return row


def _fmt(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ci(ci) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "n/a"


def markdown(rows: list[dict], notes: dict[str, str], paired: list[dict] | None = None,
             paired_pref: list[dict] | None = None) -> str:
    labels = _labels(rows)
    out = ["| method | n | ΔEmpathy ↑ (95 % CI) | empathy before → after | PPL ↓ | specificity ↑ (original → rewrite) | "
           "distinct-1 ↑ | distinct-2 ↑ | coherence ↑ (n) | edit rate ↓ | edits / response | BLEU ↑ |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for lab, r in zip(labels, rows):
        emp = r.get("empathy", {})
        out.append("| " + " | ".join([
            lab, str(r["n"]) + (f" (+{r['errors']} errors)" if r["errors"] else ""),
            f"{_fmt(emp.get('overall'))} {_ci(emp.get('ci95'))}" if emp else "n/a",
            f"{_fmt(r.get('empathy_before'), 2)} → {_fmt(r.get('empathy_after'), 2)}",
            _fmt(r.get("perplexity"), 2),
            f"{_fmt(r.get('specificity_original'))} → {_fmt(r.get('specificity'))}",
            _fmt(r["distinct_1"]), _fmt(r["distinct_2"]),
            f"{_fmt(r.get('coherence'))} ({r.get('coherence_n', 0)})",
            _fmt(r["edit_rate"]), _fmt(r["edits_per_response"], 2),
            _fmt(r.get("bleu"), 4) + (f" ({r['bleu_n']})" if "bleu_n" in r else ""),
        ]) + " |")
    if any("preference_win" in r for r in rows):
        out += ["", "Preference model (rewards.preference_model, default models/preference: a reward model learned "
                    "from blinded partner-ab ratings by language-model raters, not clinicians): mean score of the "
                    "original and of the rewrite (Bradley-Terry logits), and the predicted win rate against the "
                    "original, mean over inputs of sigmoid(score rewrite − score original) (an unchanged response "
                    "counts 0.5), bootstrap 95 % CI. A rewriter reranked or trained against this model must also be "
                    "judged by the columns above.", "",
                "| method | preference, original → rewrite | predicted win rate vs original (95 % CI) | changed |",
                "|---|---|---|---|"]
        for lab, r in zip(labels, rows):
            if "preference_win" in r:
                ci = r["preference_win_ci95"]
                out.append(f"| {lab} | {_fmt(r['preference_original'])} → {_fmt(r['preference'])} | "
                           f"{_fmt(r['preference_win'])} [{ci[0]:.3f}, {ci[1]:.3f}] | {_fmt(r['changed'])} |")
    out += ["", "ΔEmpathy by the original response's empathy total (paper Fig. 4a; n per level in brackets):", "",
            "| method | " + " | ".join(str(lv) for lv in range(7)) + " |", "|---|" + "---|" * 7]
    for lab, r in zip(labels, rows):
        by = r.get("empathy", {}).get("by_level")
        if by:
            out.append(f"| {lab} | " + " | ".join(f"{_fmt(by[lv]['mean'], 2)} ({by[lv]['n']})" for lv in range(7)) + " |")
    if any(r.get("empathy_by_mechanism") for r in rows):
        out += ["", "ΔEmpathy per mechanism (level 0..2 each; mean change, 95 % CI, mean level before → after):", "",
                "| method | " + " | ".join(MECHANISMS) + " |", "|---|" + "---|" * len(MECHANISMS)]
        for lab, r in zip(labels, rows):
            by = r.get("empathy_by_mechanism")
            if by:
                out.append(f"| {lab} | " + " | ".join(
                    f"{by[m]['mean']:+.3f} {_ci(by[m]['ci95'])}, {by[m]['before']:.2f} → {by[m]['after']:.2f}"
                    for m in MECHANISMS) + " |")
    out += ["", "Degenerate written sentences (partner/guards.py): share of inserted or replacing sentences that "
                "name death, suicide or self-harm (risk words) or an unsafe topic (sex, alcohol or drugs, eating-"
                "disorder behaviours, weapons or pills, revenge), copy >= 50 % of their word trigrams from the seeker "
                "post, or from the response's other sentences, or repeat >= 30 % of their own; and the share that "
                "are questions:", "",
            "| method | sentences written | risk words | unsafe topics | seeker copy | response copy | self-repetition | "
            "questions | distinct sentences | most common sentence (share) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for lab, r in zip(labels, rows):
        top = f"{r['top_sentence']} ({_fmt(r['top_sentence_share'])})" if r.get("top_sentence") else "n/a"
        out.append(f"| {lab} | {r.get('written_sentences', 0)} | {_fmt(r.get('risk_rate'))} | "
                   f"{_fmt(r.get('unsafe_rate'))} | {_fmt(r.get('seeker_copy_rate'))} | "
                   f"{_fmt(r.get('response_copy_rate'))} | {_fmt(r.get('repetition_rate'))} | "
                   f"{_fmt(r.get('question_rate'))} | {_fmt(r.get('distinct_sentence_rate'))} | {top} |")
    if paired:
        out += ["", (f"Paired on the same inputs: ΔEmpathy of each method minus that of {paired[0]['against']} "
                     "(bootstrap 95 % CI; p: two-sided sign-flip permutation test; inputs where the method "
                     "gains more / the same / less):"), "",
                "| method | n | difference | 95 % CI | p | more / same / less |", "|---|---|---|---|---|---|"]
        for c in paired:
            out.append(f"| {c['method']} | {c['n']} | {_fmt(c['mean_diff'])} | {_ci(c['ci95'])} | "
                       f"{_fmt(c['p_value'], 4)} | {c['better']} / {c['same']} / {c['worse']} |")
    if paired_pref:
        out += ["", (f"Paired on the same inputs: predicted win rate against the original of each method minus that "
                     f"of {paired_pref[0]['against']} (bootstrap 95 % CI; p: sign-flip permutation test):"), "",
                "| method | n | difference | 95 % CI | p | more / same / less |", "|---|---|---|---|---|---|"]
        for c in paired_pref:
            out.append(f"| {c['method']} | {c['n']} | {_fmt(c['mean_diff'])} | "
                       + (f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]" if c["ci95"] else "n/a") + " | "
                       f"{_fmt(c['p_value'], 4)} | {c['better']} / {c['same']} / {c['worse']} |")
    checked = [(lab, r["context_check"]) for lab, r in zip(labels, rows) if r.get("context_check", {}).get("n")]
    if checked:
        out += ["", ("Does the gain depend on the seeker post? (--context-check) Originals and rewrites re-scored "
                     "under their own post and under an unrelated one (partner-eval probe's derangement); "
                     "own − unrelated is paired input by input. A gain as large under someone else's post is paid "
                     "for the sentences' form, not their fit:"), "",
                "| method | n | ΔEmpathy, own post | ΔEmpathy, unrelated post [95 % CI] | own − unrelated [95 % CI], p |",
                "|---|---|---|---|---|"]
        for lab, c in checked:
            t = c["post_specific"]
            out.append(f"| {lab} | {c['n']} | {_fmt(c['gain_own'])} | {_fmt(c['gain_unrelated'])} "
                       f"{_ci(c['ci95_unrelated'])} | {_fmt(t['mean_diff'])} {_ci(t['ci95'])}, "
                       f"p {_fmt(t['p_value'], 4)} |")
    out += ["", "Definitions: ΔEmpathy = EPITOME total (ER+IP+EX, 0..6) of the rewrite minus the original's; "
            "PPL = exp(token-weighted mean NLL) of the rewrites under the frozen reference LM, padding masked; "
            "specificity = cosine of normalised mean-pooled MiniLM embeddings of seeker post and response; "
            "distinct-n = distinct / total n-grams of word_tokenize tokens over the corpus; coherence = mean "
            "p(coherent) of each inserted/replaced sentence with its neighbours, over edited responses only "
            "(single-sentence outputs = 1.0); edit rate = word-level Levenshtein distance / original words; "
            "BLEU = tokenised corpus BLEU-4 (NLTK, smoothing 1) against the references, where given."]
    for k, v in notes.items():
        out.append(f"- {k}: {v}")
    return "\n".join(out) + "\n"


def _labels(rows: list[dict]) -> list[str]:
    counts = Counter(r["method"] for r in rows)
    return [r["method"] if counts[r["method"]] == 1 else f"{r['method']} ({Path(r['file']).name})" for r in rows]


def plots(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _labels(rows)
    written = []
    for key, fname, ylabel, title in (
            ("empathy", "empathy_by_level.png", "mean change in empathy (0..6 scale)",
             "Change in empathy by original empathy (cf. paper Fig. 4a)"),
            ("edit_distance_by_level", "edits_by_level.png", "mean word-level edit distance",
             "Edits by original empathy (cf. paper Fig. 4b; unit: words)")):
        have = [(lab, r) for lab, r in zip(labels, rows) if r.get(key)]
        if not have:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for lab, r in have:
            by = r[key]["by_level"] if key == "empathy" else r[key]
            xs = [lv for lv in range(7) if by[lv]["mean"] is not None]
            ax.plot(xs, [by[lv]["mean"] for lv in xs], marker="o", label=lab)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("empathy of the original response (ER+IP+EX)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(7))
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        written.append(out / fname)
    return written


def _against_index(rows: list[dict], against: str | None) -> int:
    """The row the paired comparison is against: a file path or method label, default the last file."""
    if against is None:
        return len(rows) - 1
    labels = _labels(rows)
    if against in labels:
        return labels.index(against)
    target = Path(against).resolve()
    for i, r in enumerate(rows):
        if Path(r["file"]).resolve() == target:
            return i
    raise ConfigError(f"--against {against!r} is neither one of the files nor a method label "
                      f"({', '.join(labels)})")


def main(args) -> int:

    cfg = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    files = [Path(f) for f in args.files]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"no rewrite output at {f}")
    against = getattr(args, "against", None)
    if against is not None:  # a bad --against fails now, not after minutes of scoring
        _against_index([{"file": str(f), "method": _method(read_rewrites(f)[0])} for f in files], against)
    out = Path(args.out) if args.out else files[0].parent / "eval-rewrites"
    out.mkdir(parents=True, exist_ok=True)
    judge = getattr(args, "scorer", None)
    models = Models(cfg)
    clash = 0
    if judge:
        if judge != "micromodels" and not Path(judge).is_dir():
            raise FileNotFoundError(f"--scorer {judge}: no classifier folder there")
        cfg.rewrite.scorer = judge
        if models.empathy() is None:
            raise FileNotFoundError(f"--scorer {judge}: {models.notes.get('empathy classifier', 'cannot load it')}")
        models.notes["empathy"] = f"every file re-scored with the classifier at {judge} (--scorer)"
    elif len(files) > 1:
        clash = scored_with_different_classifiers(files)
        if clash:
            models.notes["empathy"] = (f"the files disagree on the original's empathy for {clash} inputs (scored "
                                       "by different classifier versions): every file was re-scored with the "
                                       "current one")
            log.warning(models.notes["empathy"])
    check = bool(getattr(args, "context_check", False))
    if check and models.empathy() is None:
        raise FileNotFoundError(f"--context-check needs an empathy classifier: "
                                f"{models.notes.get('empathy classifier', 'none loaded')}")
    rows = [evaluate_file(f, models, rescore=bool(clash or judge), check_context=check) for f in files]
    paired = paired_rows(rows, _against_index(rows, against)) if len(rows) > 1 else []
    paired_pref = paired_rows(rows, _against_index(rows, against), "_pref_items") if len(rows) > 1 else []
    for r in rows:
        r.pop("_items", None)
        r.pop("_pref_items", None)
    report = {
        "rows": rows,
        "paired": paired,
        "paired_preference_win": paired_pref,
        "notes": models.notes,
        "empathy_classifier": judge or cfg.rewrite.scorer or "shipped models/epitome (or the files' own scores)",
        "reference_lm": cfg.rewards.reference_lm or cfg.policy.backbone,
        "embedder": cfg.rewrite.retrieval_embedder,
        "machine": machine_info(),
        "commit": git_commit(),
    }
    atomic_write_json(out / "rewrites.json", report)
    table = markdown(rows, models.notes, paired, paired_pref)
    atomic_write_text(out / "rewrites.md", f"# Rewrite evaluation\n\nReference LM: {report['reference_lm']}; "
                                           f"commit {report['commit']}.\n\n{table}")
    pngs = plots(rows, out)
    print(table)
    log.info("wrote %s, %s and %s", out / "rewrites.json", out / "rewrites.md", ", ".join(p.name for p in pngs))
    return 0


# ------------------------------------------------------------------------------------------------
# evaluation inputs: python -m partner.evaluation.rewrites export {epitome-test,esconv} OUT [--n N]


def export_inputs(corpus: str, out: Path, n: int = 0, seed: int = 0) -> int:
    """Write a corpus's (seeker, response) pairs as partner-rewrite input; returns the count.

    ``epitome-test`` / ``epitome-dev``: the grouped EPITOME test / dev split (``epitome_splits()``),
    with the gold levels. ``esconv``: the ESConv dev pairs; with ``n`` a fixed random subset (``seed``) kept in
    file order.
    """
    import random

    if corpus in ("epitome-test", "epitome-dev"):
        rows = [{"id": f"{p.sp_id}/{p.rp_id}", "seeker_post": p.seeker_post, "response_post": p.response_post,
                 "gold_levels": p.levels} for p in corpora.epitome_splits()[corpus.split("-")[1]]]
    elif corpus == "esconv":
        rows = [{"id": p.id, "seeker_post": p.seeker_post, "response_post": p.response_post, **p.meta}
                for p in corpora.load_esconv()]
    else:
        raise ValueError(f"unknown corpus {corpus!r} (epitome-test | epitome-dev | esconv)")
    if n and n < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), n))
        rows = [rows[i] for i in keep]
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="write partner-rewrite inputs from the shared corpora")
    ap.add_argument("cmd", choices=["export"])
    ap.add_argument("corpus", choices=["epitome-test", "epitome-dev", "esconv"])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=0, help="fixed random subset of this size (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(export_inputs(a.corpus, Path(a.out), a.n, a.seed), "pairs written to", a.out)
    sys.exit(0)
