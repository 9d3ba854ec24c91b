"""Rewriters: PARTNER, its warm start, and the baselines, behind one interface.

``rewriter.rewrite(seekers, responses, seed=None) -> [(rewritten_text, edits)]`` where ``edits`` is
``[{"action": "insert" | "replace", "position": i, "sentence": "..."}]``: ``position`` is the index
of the sentence (``core.text.split_sentences``) in the response as it stood before that
edit, where the sentence is inserted or which sentence is replaced. A deletion is a replacement by
"" (paper §5.3). Edits are listed in the order they were applied.

Methods (``build_rewriter``):

- ``identity``: returns the response unchanged (no edits).
- ``template``: inserts one fixed empathic sentence (``rewrite.template``).
- ``retrieval``: inserts the high-empathy EPITOME-train sentence most similar to the seeker post
  (``partner.retrieval``).
- ``zeroshot``: asks the instruction-tuned backbone (SmolLM2-Instruct chat template) for one
  empathic sentence to add, and inserts it; the output is parsed into an insertion so the edits are
  exactly what changed.
- ``warmstart`` / ``partner``: the trained policy (``partner.policy.PartnerPolicy`` +
  ``partner.episode.rewrite_one_batch``); ``partner`` is ``models/policy_rl`` if present, else
  ``models/policy``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import Counter
from pathlib import Path

from core.registry import load_causal_lm
from core.text import split_sentences
from partner import rerank
from partner.config import SHIPPED_MODELS
from partner.edits import render
from partner.guards import SentenceGuard
from partner.retrieval import RetrievalIndex
from rewards.stack import RewardStack

log = logging.getLogger(__name__)

METHODS = ("partner", "warmstart", "identity", "template", "retrieval", "zeroshot")


class MethodUnavailable(RuntimeError):
    """A method whose trained weights are not there."""


def insert_sentence(response: str, sentence: str, at: str = "start") -> tuple[str, list[dict]]:
    """Insert ``sentence`` at the start or end of ``response``, keeping the original text as it is
    (``partner.edits.render``)."""
    sentence = " ".join(sentence.split())
    if not sentence:
        return response, []
    if at not in ("start", "end"):
        raise ValueError(f"insert_at must be 'start' or 'end', got {at!r}")
    edits = [{"action": "insert", "position": 0 if at == "start" else len(split_sentences(response)),
              "sentence": sentence}]
    return render(response, edits), edits


class Rewriter:
    name = "rewriter"

    def describe(self) -> str:
        return self.name

    def rewrite(self, seekers: list[str], responses: list[str], seed: int | None = None) -> list[tuple[str, list[dict]]]:
        raise NotImplementedError


class IdentityRewriter(Rewriter):
    name = "identity"

    def rewrite(self, seekers, responses, seed=None):
        return [(r, []) for r in responses]


class TemplateRewriter(Rewriter):
    name = "template"

    def __init__(self, sentence: str = "That must be really hard for you.", at: str = "start"):
        self.sentence, self.at = sentence, at

    def describe(self) -> str:
        return f"template: insert {self.sentence!r} at the {self.at}"

    def rewrite(self, seekers, responses, seed=None):
        return [insert_sentence(r, self.sentence, self.at) for r in responses]


class RetrievalRewriter(Rewriter):
    name = "retrieval"

    def __init__(self, index, at: str = "start"):
        self.index, self.at = index, at

    def describe(self) -> str:
        return f"retrieval: nearest of {len(self.index.sentences)} high-empathy EPITOME-train sentences ({self.index.path})"

    def rewrite(self, seekers, responses, seed=None):
        found = self.index.nearest(list(seekers), exclude=[split_sentences(r) for r in responses])
        return [insert_sentence(r, s, self.at) for r, s in zip(responses, found)]


ZEROSHOT_SYSTEM = "You are a kind, supportive member of an online mental-health peer-support forum."
ZEROSHOT_INSTRUCTION = (
    'A person posted:\n"{seeker}"\n\nSomeone replied:\n"{response}"\n\n'
    "Write ONE short, warm sentence to add at the start of the reply that shows you understand how the "
    "person feels. Keep the reply as it is. Write only the new sentence."
)


def parse_zeroshot(output: str, response: str) -> str:
    """The first sentence of a model's answer, cleaned; "" if nothing usable (then no edit)."""
    text = output.strip()
    for _ in range(3):  # "Sure! Here is the new sentence: ..." -> "..."
        text = re.sub(r"^(?:sure|okay|ok|here(?:'s| is)[^:\n]*|new sentence|sentence)\s*[:!.,-]\s*", "", text,
                      flags=re.I)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.strip(" \"'“”*")
    sents = split_sentences(line)
    first = sents[0].strip(" \"'“”*") if sents else ""
    if not re.search(r"\w", first):
        return ""
    if " ".join(first.lower().split()) in {" ".join(s.lower().split()) for s in split_sentences(response)}:
        return ""  # the model copied a sentence of the reply: nothing new to add
    return first


class ZeroShotRewriter(Rewriter):
    name = "zeroshot"

    def __init__(self, backbone: str, decoding: str = "greedy", top_p: float = 0.92, temperature: float = 1.0,
                 max_new_tokens: int = 40, max_input_tokens: int = 192, at: str = "start", device=None,
                 guard=None):
        import torch

        from core.packed import pack_linears

        self.backbone, self.decoding, self.top_p, self.temperature = backbone, decoding, top_p, temperature
        self.max_new_tokens, self.max_input_tokens, self.at = max_new_tokens, max_input_tokens, at
        self.guard = guard
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tok = load_causal_lm(backbone, device=self.device)
        self.model.eval()
        self.model.requires_grad_(False)
        pack_linears(self.model)  # CPU inference: weights packed once for oneDNN (core.packed)
        self.tok.padding_side = "left"  # batched generation continues every prompt from its end
        cfg = self.model.config
        self.context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 2048

    def describe(self) -> str:
        return f"zeroshot: {self.backbone}, {self.decoding} decoding, one inserted sentence{_guard_note(self.guard)}"

    def _clip(self, text: str) -> str:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= self.max_input_tokens else self.tok.decode(ids[:self.max_input_tokens]) + " ..."

    def prompt(self, seeker: str, response: str) -> str:
        user = ZEROSHOT_INSTRUCTION.format(seeker=self._clip(seeker), response=self._clip(response))
        if self.tok.chat_template:
            msgs = [{"role": "system", "content": ZEROSHOT_SYSTEM}, {"role": "user", "content": user}]
            return self.tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        return f"{ZEROSHOT_SYSTEM}\n\n{user}\n\nNew sentence:"

    def generate(self, prompts: list[str], seed: int | None = None) -> list[str]:
        import torch

        limit = self.context - self.max_new_tokens
        enc = self.tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"][:, -limit:], enc["attention_mask"][:, -limit:]  # left-padded: keep the end
        kwargs = dict(max_new_tokens=self.max_new_tokens, pad_token_id=self.tok.pad_token_id, use_cache=True)
        if self.decoding == "sample":
            kwargs.update(do_sample=True, top_p=self.top_p, temperature=self.temperature, top_k=0)
            if seed is not None:
                torch.manual_seed(seed)
        else:
            kwargs.update(do_sample=False, top_p=None, top_k=None, temperature=None)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        return self.tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    def rewrite(self, seekers, responses, seed=None):
        outputs = self.generate([self.prompt(s, r) for s, r in zip(seekers, responses)], seed=seed)
        out = []
        for o, s, r in zip(outputs, seekers, responses):
            sentence = parse_zeroshot(o, r)
            if sentence and self.guard is not None and self.guard.check(s, sentence, split_sentences(r)):
                sentence = ""  # rejected: the response stays as it was
            out.append(insert_sentence(r, sentence, self.at))
        return out


def _guard_note(guard) -> str:
    if guard is None or not guard.active:
        return ", no sentence guard"
    words = ("death/suicide/self-harm words, " if getattr(guard, "block_risk", False) else "") + \
            ("unsafe topics, " if getattr(guard, "block_unsafe", False) else "")
    return (f", sentence guard ({words}seeker copy >= {guard.max_seeker_copy:g}, response copy >= "
            f"{guard.max_response_copy:g}, repetition >= {guard.max_repetition:g} rejected)")


def policy_path(method: str, model: str | None = None) -> Path:
    """The policy folder of ``warmstart`` / ``partner``: --model, else the shipped one."""
    if model:
        return Path(model)
    if method == "partner" and (SHIPPED_MODELS / "policy_rl").exists():
        return SHIPPED_MODELS / "policy_rl"
    return SHIPPED_MODELS / "policy"


def _trained_context(path: Path, policy_cfg):
    """Use the context length the policy was trained with (policy_config.json), if it says."""
    meta_file = path / "policy_config.json"
    if not meta_file.exists():
        return policy_cfg
    trained = json.loads(meta_file.read_text()).get("max_context_tokens")
    if trained and int(trained) != int(policy_cfg.max_context_tokens):
        log.info("using max_context_tokens=%s, as the policy at %s was trained", trained, path)
        return dataclasses.replace(policy_cfg, max_context_tokens=int(trained))
    return policy_cfg


class PolicyRewriter(Rewriter):
    """The trained PARTNER policy: the documented multi-step episode of partner.episode."""

    def __init__(self, method: str, path: Path, policy_cfg, decoding: str = "greedy", device=None, guard=None,
                 candidates: int = 1, reward_fn=None, keep_original: bool = True, min_gain: float = 0.0,
                 guard_retries: int = 0, pool=(), preference_guard=None, rank_by: str = "reward"):
        """``candidates`` > 1: reward-ranked decoding (partner.rerank) with ``reward_fn`` (a RewardStack, or a
        rewards.preference.PreferenceReward when ``rank_by`` is preference). ``pool``: further candidate sources,
        ``(kind, fn(seekers, responses) -> [[(text, edits), ...] per input])``. ``preference_guard``: a
        PreferenceReward; an edited response it scores below the original is not made."""
        from partner.episode import rewrite_one_batch  # torch: loaded only when a policy is used
        from partner.policy import PartnerPolicy

        if not path.exists():
            raise MethodUnavailable(
                f"--method {method}: no trained policy at {path}. Train one "
                f"(partner-train warmstart / rl) and pass --model, or use a baseline: "
                f"--method identity|template|retrieval|zeroshot")
        if not (path / "policy_config.json").is_file():
            raise MethodUnavailable(
                f"--method {method}: {path} is not a policy folder of this toolkit: it has no policy_config.json "
                "(the metadata partner-train warmstart / rl write beside the trained position head). A plain "
                "language model goes with --method zeroshot --model FOLDER")
        policy_cfg = _trained_context(path, policy_cfg)
        if candidates < 1:
            raise ValueError(f"rewrite.candidates must be at least 1, got {candidates}")
        if guard_retries < 0:
            raise ValueError(f"rewrite.guard_retries must be 0 or more, got {guard_retries}")
        if (candidates > 1 or pool) and reward_fn is None:
            raise ValueError("rewrite.candidates > 1 (or a candidate pool) needs a reward function to rank the "
                             "candidates")
        self.name, self.path, self.cfg, self.decoding, self.guard = method, path, policy_cfg, decoding, guard
        self.candidates, self.reward_fn, self.keep_original = int(candidates), reward_fn, keep_original
        self.min_gain = float(min_gain)
        self.pool, self.preference_guard, self.rank_by = list(pool), preference_guard, rank_by
        self.reverted = 0  # edits the preference guard did not make, this run
        self.last_pool: list[list[dict]] = []  # the last batch's candidates per input (rewrite.record_candidates)
        self.guard_retries = int(guard_retries) if guard is not None else 0
        self.chosen: Counter = Counter()  # reward-ranked decoding: which kind of candidate won, this run
        self._episode = rewrite_one_batch
        self.policy = PartnerPolicy.load(str(path), cfg=policy_cfg, device=device)

    def describe(self) -> str:
        if self.candidates > 1 or self.pool:
            keep = (f", the unchanged response kept unless an edit gains >= {self.min_gain:g}" if self.keep_original
                    else "")
            ranker = ranker_name(self.rank_by)
            sources = ["its greedy episode" if self.candidates == 1 else
                       f"{self.candidates} episodes (greedy + {self.candidates - 1} sampled)"]
            sources += [f"{kind} candidates" for kind, _ in self.pool]
            decoding = f"best of {', '.join(sources)} by {ranker}{keep}"
        else:
            decoding = f"{self.decoding} decoding"
        retries = (f", up to {self.guard_retries} sampled retries of a rejected sentence"
                   if self.guard_retries and self.guard.active else "")
        pg = ", edits the preference model scores below the original not made" if self.preference_guard else ""
        return f"{self.name}: policy {self.path}, {decoding}{_guard_note(self.guard)}{retries}{pg}"

    @staticmethod
    def _edits_json(edits) -> list[dict]:
        return [{"action": e.action, "position": int(e.position), "sentence": e.sentence}
                for e in edits if e.action == "replace" or (e.action == "insert" and e.sentence)]

    def rewrite(self, seekers, responses, seed=None):
        import torch

        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if self.candidates > 1 or self.pool:
            out = self._rewrite_ranked(list(seekers), list(responses), gen)
        else:
            results = self._episode(self.policy, list(seekers), list(responses), self.cfg,
                                    sample=self.decoding == "sample", generator=gen, guard=self.guard,
                                    guard_retries=self.guard_retries)
            out = [(text, self._edits_json(edits)) for text, edits in results]
        return self._guard_by_preference(list(seekers), list(responses), out)

    def _guard_by_preference(self, seekers, responses, out):
        """Keep the original wherever the preference model scores the edited response below it."""
        if self.preference_guard is None:
            return out
        edited = [i for i, (text, _) in enumerate(out) if text != responses[i]]
        if not edited:
            return out
        gains = self.preference_guard([seekers[i] for i in edited], [responses[i] for i in edited],
                                      [out[i][0] for i in edited])
        out = list(out)
        for i, g in zip(edited, gains):
            if g < 0:
                out[i] = (responses[i], [])
                self.reverted += 1
        return out

    def _rewrite_ranked(self, seekers, responses, gen):
        from partner.episode import run_episodes

        cands: list[list] = [[] for _ in responses]
        if self.keep_original:
            for i, r in enumerate(responses):
                cands[i].append(rerank.Candidate(r, [], rerank.stop_info(), rerank.ORIGINAL))
        for k in range(self.candidates):
            sampled = k > 0 or self.decoding == "sample"
            eps = run_episodes(self.policy, seekers, responses, self.cfg, sample=sampled, generator=gen,
                               guard=self.guard, guard_retries=self.guard_retries)
            for i, ep in enumerate(eps):
                cands[i].append(rerank.Candidate(ep.text, self._edits_json(ep.edits), ep.reward_edit(),
                                                 rerank.SAMPLED if sampled else rerank.GREEDY))
        for kind, source in self.pool:
            for i, found in enumerate(source(seekers, responses)):
                for text, edits in found:
                    if edits:
                        cands[i].append(rerank.Candidate(text, edits, rerank.insertion_info(responses[i], edits), kind))
        self.last_pool = [[{"source": c.kind, "text": c.text, "edits": c.edits} for c in cs if c.kind != rerank.ORIGINAL]
                          for cs in cands]
        sel = rerank.select(self.reward_fn, seekers, responses, cands, min_gain=self.min_gain)
        self.chosen.update(sel.counts)
        return [(c.text, rerank.tagged(c)) for c in sel.chosen]


class RecordedPoolRewriter(Rewriter):
    """Ranks the candidates an earlier ranked run recorded (rewrite.record_candidates), generating nothing:
    a new reward model or pool setting applied to the same candidates in seconds."""

    def __init__(self, method: str, path: str, reward_fn, pool_kinds: set[str], keep_original: bool = True,
                 min_gain: float = 0.0, rank_by: str = "reward"):
        from core.jsonio import DataError, iter_json_objects

        self.name, self.path, self.reward_fn, self.kinds = method, path, reward_fn, pool_kinds
        self.keep_original, self.min_gain, self.rank_by = keep_original, float(min_gain), rank_by
        self.chosen: Counter = Counter()
        self.recorded: dict[tuple[str, str], list[dict]] = {}
        for n, obj in iter_json_objects(path):
            if "rewritten_response" not in obj:
                continue  # an error record: that input has no pool
            if not isinstance(obj.get("candidates"), list):
                raise DataError(path, n, "candidates", "is missing: write the pool with --set "
                                "rewrite.record_candidates=true")
            self.recorded[(obj["seeker_post"], obj["response_post"])] = obj["candidates"]

    def describe(self) -> str:
        ranker = ranker_name(self.rank_by)
        return (f"{self.name}: the {'/'.join(sorted(self.kinds))} candidates recorded in {self.path}, ranked by "
                f"{ranker}" + (f", the unchanged response kept unless an edit gains >= {self.min_gain:g}"
                               if self.keep_original else ""))

    def rewrite(self, seekers, responses, seed=None):
        from partner import rerank

        cands = []
        for s, r in zip(seekers, responses):
            if (s, r) not in self.recorded:
                raise KeyError(f"no recorded candidates for this input in {self.path} (seeker post {s[:40]!r}...)")
            mine = [rerank.Candidate(r, [], rerank.stop_info(), rerank.ORIGINAL)] if self.keep_original else []
            for c in self.recorded[(s, r)]:
                if c["source"] in self.kinds:
                    info = rerank.insertion_info(r, c["edits"]) if c["edits"] else rerank.stop_info()
                    mine.append(rerank.Candidate(c["text"], c["edits"], info, c["source"]))
            cands.append(mine or [rerank.Candidate(r, [], rerank.stop_info(), rerank.ORIGINAL)])
        sel = rerank.select(self.reward_fn, list(seekers), list(responses), cands, min_gain=self.min_gain)
        self.chosen.update(sel.counts)
        return [(c.text, rerank.tagged(c)) for c in sel.chosen]


def build_rewriter(method: str, cfg, model: str | None = None, device=None) -> Rewriter:
    """A rewriter for ``method`` from a PartnerConfig (``cfg.rewrite``, ``cfg.policy``)."""
    rc = cfg.rewrite
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if model and method in ("identity", "template", "retrieval"):
        log.warning("--model is ignored by --method %s", method)
    if method == "identity":
        return IdentityRewriter()
    if method == "template":
        return TemplateRewriter(rc.template, rc.insert_at)
    if method == "retrieval":
        index = RetrievalIndex.build_or_load(cfg.data_path(), embedder=rc.retrieval_embedder,
                                             min_words=rc.retrieval_min_words, max_words=rc.retrieval_max_words,
                                             device=device)
        return RetrievalRewriter(index, rc.insert_at)
    guard = SentenceGuard.from_config(rc)
    if method == "zeroshot":
        return ZeroShotRewriter(model or rc.zeroshot_backbone or cfg.policy.backbone, decoding=rc.decoding,
                                top_p=cfg.policy.top_p, temperature=cfg.policy.temperature,
                                max_new_tokens=rc.zeroshot_max_new_tokens, max_input_tokens=rc.max_input_tokens,
                                at=rc.insert_at, device=device, guard=guard)
    reward_fn = preference = None
    if rc.rank_by not in ("reward", "preference"):
        raise ValueError(f"rewrite.rank_by is {rc.rank_by!r}; expected reward or preference")
    ranked = rc.candidates > 1 or any(s != "policy" for s in rc.pool) or bool(rc.candidates_from)
    min_gain = min_gain_of(rc)
    if rc.preference_guard or (ranked and rc.rank_by == "preference"):
        from rewards.preference import PreferenceReward
        from rewards.stack import _pick  # the same folder rule as the reward stack's models

        preference = PreferenceReward(path=_pick(cfg.rewards.preference_model, cfg.run_dir, "preference", ""),
                                      device=device)
    if ranked and rc.rank_by == "preference":
        reward_fn = preference
    elif ranked:
        # r_n scores an episode against the episodes before it: in decoding that would make a rewrite depend on
        # the inputs before it, so reranking leaves it out.
        ranking_cfg = dataclasses.replace(cfg, rewards=dataclasses.replace(cfg.rewards, w_novelty=0.0))
        reward_fn = RewardStack.from_config(ranking_cfg, device=device)
    if rc.candidates_from:
        kinds = set()
        for source in rc.pool:  # the policy's candidates are recorded as greedy / sampled
            kinds |= {"greedy", "sampled"} if source == "policy" else {source}
        return RecordedPoolRewriter(method, rc.candidates_from, reward_fn, kinds, rc.keep_original, min_gain,
                                    rc.rank_by)
    pool = _pool_sources(rc, cfg, guard, device) if ranked else []
    rewriter = PolicyRewriter(method, policy_path(method, model), cfg.policy, decoding=rc.decoding, device=device,
                              guard=guard, candidates=rc.candidates, reward_fn=reward_fn,
                              keep_original=rc.keep_original, min_gain=min_gain, guard_retries=rc.guard_retries,
                              pool=pool, preference_guard=preference if rc.preference_guard else None,
                              rank_by=rc.rank_by)
    rewriter.record_candidates = rc.record_candidates
    return rewriter


def ranker_name(rank_by: str) -> str:
    """What ranks the candidates under ``rewrite.rank_by``, for logs and describe()."""
    return "the preference model" if rank_by == "preference" else "the training reward"


def min_gain_of(rc) -> float:
    """rewrite.min_gain, or the ranker's default when it is null: 0 logits for the preference model (any
    predicted gain), 0.5 for the training reward (in effect an empathy gain)."""
    if rc.min_gain is not None:
        return float(rc.min_gain)
    return 0.0 if rc.rank_by == "preference" else 0.5


def _pool_sources(rc, cfg, guard, device) -> list:
    """(kind, fn(seekers, responses) -> per input [(text, edits), ...]) for the non-policy pool sources."""
    from partner import rerank

    unknown = [s for s in rc.pool if s not in ("policy", "retrieval", "zeroshot", "template")]
    if unknown:
        raise ValueError(f"rewrite.pool has {unknown}; choose from policy, retrieval, zeroshot, template")
    out = []
    if "template" in rc.pool:
        out.append((rerank.TEMPLATE, lambda seekers, responses: [[insert_sentence(r, rc.template, rc.insert_at)]
                                                                 for r in responses]))
    index = None
    if "retrieval" in rc.pool:
        from core.corpora import DataError
        from partner.retrieval import RetrievalIndex

        try:
            index = RetrievalIndex.build_or_load(cfg.data_path(), embedder=rc.retrieval_embedder,
                                                 min_words=rc.retrieval_min_words, max_words=rc.retrieval_max_words,
                                                 device=device)
        except DataError as exc:
            # the index is built from the EPITOME train split: without the shared data the pool goes on without it
            log.warning("rewrite.pool: retrieval left out, its index needs the EPITOME data (%s); set PARTNER_DATA, "
                        "or --set 'rewrite.pool=[policy,zeroshot]' to silence this", exc)
    if index is not None:

        def retrieved(seekers, responses):
            found = index.nearest_k(seekers, rc.pool_retrieved, exclude=[split_sentences(r) for r in responses])
            # a retrieved sentence the guard rejects (a risk word, a copy of the response) is no candidate
            return [[insert_sentence(r, s, rc.insert_at) for s in sents
                     if guard is None or not guard.check(p, s, split_sentences(r))]
                    for p, r, sents in zip(seekers, responses, found)]
        out.append((rerank.RETRIEVAL, retrieved))
    if "zeroshot" in rc.pool:
        zs = ZeroShotRewriter(rc.zeroshot_backbone or cfg.policy.backbone, decoding="greedy",
                              max_new_tokens=rc.zeroshot_max_new_tokens, max_input_tokens=rc.max_input_tokens,
                              at=rc.insert_at, device=device, guard=guard)
        out.append((rerank.ZEROSHOT, lambda seekers, responses: [[x] for x in zs.rewrite(seekers, responses)]))
    return out
