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
import logging
import re
from collections import Counter
from pathlib import Path

from core.text import split_sentences

log = logging.getLogger(__name__)

METHODS = ("partner", "warmstart", "identity", "template", "retrieval", "zeroshot")


class MethodUnavailable(RuntimeError):
    """A method whose code or trained weights do not exist yet."""


def insert_sentence(response: str, sentence: str, at: str = "start") -> tuple[str, list[dict]]:
    """Insert ``sentence`` at the start or end of ``response``, keeping the original text as it is
    (``partner.edits.render``)."""
    from partner.edits import render

    sentence = " ".join(sentence.split())
    if not sentence:
        return response, []
    if at not in ("start", "end"):
        raise ValueError(f"insert_at must be 'start' or 'end', got {at!r}")
    edits = [{"action": "insert", "position": 0 if at == "start" else len(split_sentences(response)),
              "sentence": sentence}]
    return render(response, edits), edits


def apply_edit(sents: list[str], edit: dict) -> None:
    """Apply one edit (positions as documented above) to a response's sentences, in place."""
    pos = int(edit["position"])
    if edit["action"] == "insert":
        sents.insert(max(0, min(pos, len(sents))), edit["sentence"])
    elif edit["action"] == "replace" and 0 <= pos < len(sents):
        sents[pos] = edit["sentence"]


def apply_edits(response: str, edits: list[dict]) -> str:
    """The response after ``edits`` (positions as documented above), made in place: the text outside
    the edited sentences is kept byte for byte (``partner.edits.render``)."""
    from partner.edits import render

    return render(response, edits)


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

        from core.registry import load_causal_lm

        self.backbone, self.decoding, self.top_p, self.temperature = backbone, decoding, top_p, temperature
        self.max_new_tokens, self.max_input_tokens, self.at = max_new_tokens, max_input_tokens, at
        self.guard = guard
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tok = load_causal_lm(backbone, device=self.device)
        self.model.eval()
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
    from partner.config import SHIPPED_MODELS

    if model:
        return Path(model)
    if method == "partner" and (SHIPPED_MODELS / "policy_rl").exists():
        return SHIPPED_MODELS / "policy_rl"
    return SHIPPED_MODELS / "policy"


def _trained_context(path: Path, policy_cfg):
    """Use the context length the policy was trained with (policy_config.json), if it says."""
    import dataclasses
    import json

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
                 guard_retries: int = 0):
        """``candidates`` > 1: reward-ranked decoding (partner.rerank) with ``reward_fn`` (a RewardStack)."""
        try:
            from partner.episode import rewrite_one_batch
            from partner.policy import PartnerPolicy
        except ImportError as exc:
            raise MethodUnavailable(
                f"--method {method} is not available yet: the policy code (partner/policy.py, partner/episode.py) "
                f"is missing ({exc}). Use a baseline: --method identity|template|retrieval|zeroshot") from exc
        if not path.exists():
            raise MethodUnavailable(
                f"--method {method} is not available yet: no trained policy at {path}. Train one "
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
        if candidates > 1 and reward_fn is None:
            raise ValueError("rewrite.candidates > 1 needs a reward function to rank the candidates")
        self.name, self.path, self.cfg, self.decoding, self.guard = method, path, policy_cfg, decoding, guard
        self.candidates, self.reward_fn, self.keep_original = int(candidates), reward_fn, keep_original
        self.min_gain = float(min_gain)
        self.guard_retries = int(guard_retries) if guard is not None else 0
        self.chosen: Counter = Counter()  # reward-ranked decoding: which kind of candidate won, this run
        self._episode = rewrite_one_batch
        self.policy = PartnerPolicy.load(str(path), cfg=policy_cfg, device=device)

    def describe(self) -> str:
        if self.candidates > 1:
            keep = (f", the unchanged response kept unless an edit gains >= {self.min_gain:g}" if self.keep_original
                    else "")
            decoding = (f"best of {self.candidates} episodes by the training reward (greedy + "
                        f"{self.candidates - 1} sampled{keep})")
        else:
            decoding = f"{self.decoding} decoding"
        retries = (f", up to {self.guard_retries} sampled retries of a rejected sentence"
                   if self.guard_retries and self.guard.active else "")
        return f"{self.name}: policy {self.path}, {decoding}{_guard_note(self.guard)}{retries}"

    @staticmethod
    def _edits_json(edits) -> list[dict]:
        return [{"action": e.action, "position": int(e.position), "sentence": e.sentence}
                for e in edits if e.action == "replace" or (e.action == "insert" and e.sentence)]

    def rewrite(self, seekers, responses, seed=None):
        import torch

        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if self.candidates > 1:
            return self._rewrite_ranked(list(seekers), list(responses), gen)
        results = self._episode(self.policy, list(seekers), list(responses), self.cfg,
                                sample=self.decoding == "sample", generator=gen, guard=self.guard,
                                guard_retries=self.guard_retries)
        return [(text, self._edits_json(edits)) for text, edits in results]

    def _rewrite_ranked(self, seekers, responses, gen):
        from partner import rerank
        from partner.episode import run_episodes
        from partner.rl_trainer import reward_edit

        cands: list[list] = [[] for _ in responses]
        if self.keep_original:
            for i, r in enumerate(responses):
                cands[i].append(rerank.Candidate(r, [], rerank.stop_info(), rerank.ORIGINAL))
        for k in range(self.candidates):
            sampled = k > 0 or self.decoding == "sample"
            eps = run_episodes(self.policy, seekers, responses, self.cfg, sample=sampled, generator=gen,
                               guard=self.guard, guard_retries=self.guard_retries)
            for i, ep in enumerate(eps):
                cands[i].append(rerank.Candidate(ep.text, self._edits_json(ep.edits), reward_edit(ep),
                                                 rerank.SAMPLED if sampled else rerank.GREEDY))
        sel = rerank.select(self.reward_fn, seekers, responses, cands, min_gain=self.min_gain)
        self.chosen.update(sel.counts)
        return [(c.text, c.edits) for c in sel.chosen]


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
        from partner.retrieval import RetrievalIndex

        index = RetrievalIndex.build_or_load(cfg.data_path(), embedder=rc.retrieval_embedder,
                                             min_words=rc.retrieval_min_words, max_words=rc.retrieval_max_words,
                                             device=device)
        return RetrievalRewriter(index, rc.insert_at)
    from partner.guards import SentenceGuard

    guard = SentenceGuard.from_config(rc)
    if method == "zeroshot":
        return ZeroShotRewriter(model or rc.zeroshot_backbone or cfg.policy.backbone, decoding=rc.decoding,
                                top_p=cfg.policy.top_p, temperature=cfg.policy.temperature,
                                max_new_tokens=rc.zeroshot_max_new_tokens, max_input_tokens=rc.max_input_tokens,
                                at=rc.insert_at, device=device, guard=guard)
    reward_fn = None
    if rc.candidates > 1:
        from rewards.stack import RewardStack

        # r_n scores an episode against the episodes before it: in decoding that would make a rewrite depend on
        # the inputs before it, so reranking leaves it out.
        ranking_cfg = dataclasses.replace(cfg, rewards=dataclasses.replace(cfg.rewards, w_novelty=0.0))
        reward_fn = RewardStack.from_config(ranking_cfg, device=device)
    return PolicyRewriter(method, policy_path(method, model), cfg.policy, decoding=rc.decoding, device=device,
                          guard=guard, candidates=rc.candidates, reward_fn=reward_fn, keep_original=rc.keep_original,
                          min_gain=rc.min_gain, guard_retries=rc.guard_retries)
