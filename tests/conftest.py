"""Shared fixtures and fakes of the test suite (test modules import fakes from here, never from each other)."""

import json
import os
from pathlib import Path

import pytest

# Tests never touch the network: everything they load is embedded or built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from core.corpora import default_data_dir  # noqa: E402
from partner import edits as E  # noqa: E402
from partner.config import PolicyConfig  # noqa: E402

DATA = default_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "epitome-reddit").is_dir():
        pytest.skip(f"shared data not found at {DATA} (set PARTNER_DATA to the folder with epitome-reddit/)")
    return DATA


# ---- partner-rewrite inputs and a lexicon scorer (test_rewrite, test_rewrite_eval) --------------------

LONG = " ".join(["I have been feeling really low for weeks and nothing seems to help at all."] * 400)
ODD = [
    {"id": "empty", "seeker_post": "I feel awful.", "response_post": ""},
    {"id": "blank-seeker", "seeker_post": "", "response_post": "Hang in there."},
    {"id": "long", "seeker_post": LONG, "response_post": LONG},
    {"id": "emoji", "seeker_post": "lost my job today 😭😭💔", "response_post": "oof 😬 that sucks 🙏"},
    {"id": "zh", "seeker_post": "我最近压力很大，睡不着。", "response_post": "多运动就好了。"},
    {"id": "ar", "seeker_post": "أشعر بالوحدة طوال الوقت", "response_post": "تحدث مع أحد"},
    {"id": "fr", "seeker_post": "Je me sens tellement seul.", "response_post": "Sors plus souvent !"},
]


class FakeResult:
    def __init__(self, text):
        low = text.lower()
        self.levels = {"ER": int("sorry" in low or "hard" in low), "IP": int("understand" in low), "EX": int("?" in text)}
        self.total = sum(self.levels.values())

    def to_json(self):
        return {**self.levels, "total": self.total}


class FakeScorer:
    """A lexicon 'classifier' with EmpathyScorer.score's signature; records its calls."""

    path = "fake"

    def __init__(self):
        self.calls = []

    def score(self, seekers, responses, batch_size=32, rationales=True, progress=False):
        assert len(seekers) == len(responses)
        self.calls.append(len(responses))
        return [FakeResult(r) for r in responses]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """A saved (untrained) LoRA policy on the random 2-layer GPT-2: the real load/episode path."""
    from partner.config import PolicyConfig
    from partner.policy import PartnerPolicy

    cfg = PolicyConfig(backbone="tiny-gpt2", max_sentence_tokens=6, max_context_tokens=32)
    path = tmp_path_factory.mktemp("policy") / "pol"
    PartnerPolicy.from_backbone("tiny-gpt2", cfg, finetune="lora", seed=0).save_pretrained(path)
    return path


# ---- a policy that plays a script (test_episode, test_guards) ---------------------------------------


class ScriptedPolicy:
    """Plays a fixed list of (position class, sentence) per response; records the windows it saw."""

    def __init__(self, scripts, k=2):
        self.k = k
        self.cfg = PolicyConfig(window=k, max_edits=2)
        self.scripts = {i: list(s) for i, s in enumerate(scripts)}
        self.seen = {i: [] for i in range(len(scripts))}
        self.calls = 0

    def act(self, seekers, windows, **kwargs):
        import torch  # only the tests that act need it

        from partner.policy import ActionBatch

        self.calls += 1
        pos, sents = [], []
        for s, w in zip(seekers, windows):
            i = int(s)
            self.seen[i].append(list(w))
            p, text = self.scripts[i].pop(0)
            pos.append(p)
            sents.append(text)
        n = len(pos)
        return ActionBatch(torch.tensor(pos), sents, [torch.tensor([1, 2])] * n, torch.full((n,), -0.5),
                           torch.full((n,), -3.0))


STOP = E.stop_class(2)
