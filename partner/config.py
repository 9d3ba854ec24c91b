"""The whole toolkit's config: one YAML file per experiment (configs/*.yaml), one dataclass here.

``partner-train --config configs/default.yaml --set rl.steps=500`` reads defaults, then the file,
then the overrides. ``configs/paper.yaml`` holds the paper's setup (partner-method.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from classifiers.config import CoherenceConfig, EpitomeConfig, PreferenceConfig, ReverseConfig
from core import configuration
from core.configuration import option as _h
from core.corpora import default_data_dir
from rewards.config import RewardConfig


@dataclass
class PolicyConfig:
    backbone: str = _h("causal LM: smollm2-135m (offline default), microsoft/DialoGPT-medium (paper), a folder",
                       "smollm2-135m")
    window: int = _h("k: sentences in the edit window (paper 2); the position head has 2k+2 classes", 2, at_least=1)
    top_p: float = _h("nucleus sampling for candidate sentences (paper 0.92)", 0.92, above=0, at_most=1)
    temperature: float = _h("sampling temperature", 1.0, above=0)
    max_sentence_tokens: int = _h("length cap of a candidate sentence", 40, at_least=1)
    max_context_tokens: int = _h("tokens kept of the seeker post and of the window, each (paper 64; 40 keeps CPU "
                                 "episodes short)", 40, at_least=1)
    max_edits: int = _h("edits per episode before it stops (the paper leaves this open)", 2, at_least=1)
    lora_r: int = _h("LoRA rank of the policy adapter", 16, at_least=1)
    lora_alpha: int = _h("LoRA alpha", 32)
    lora_layers: int = _h("LoRA on the top N transformer layers only (0 = all); the backward pass then stops "
                          "there, which makes CPU training several times cheaper", 8, at_least=0)


@dataclass
class WarmStartConfig:
    finetune: str = _h("lora | full", "lora", choices=("lora", "full"))
    epochs: int = _h("epochs", 2, at_least=1)
    batch_size: int = _h("batch size", 8, at_least=1)
    lr: float = _h("learning rate", 3e-4, above=0)
    position_loss_weight: float = _h("weight of the position cross-entropy beside the LM loss (code hint: 0.1; the "
                                     "fresh position head needs more)", 1.0,
                                     at_least=0)
    stop_fraction: float = _h("share of STOP examples (responses with nothing to add)", 0.2, at_least=0, at_most=1)
    max_examples: int = _h("cap on warm-start examples (0 = all)", 0, at_least=0)
    seed: int = _h("seed", 42)
    max_sources: int = _h("responses labelled, a seeded sample over all corpora (0 = all); labelling every "
                          "sentence costs classifier time", 3000, at_least=0)
    corpora: str = _h("comma-separated sources: epitome (train split only), esconv, counselchat",
                      "epitome,esconv,counselchat")
    sentence_threshold: float = _h("a sentence is high-empathy if the classifier's ER+IP+EX on (seeker, sentence) "
                                   "is at least this (paper: >= 2)", 2.0)
    max_sentences: int = _h("sentences scored per response (long CounselChat answers are cut)", 12, at_least=1)
    classifier: str = _h("EPITOME scorer folder labelling the data ('' = run_dir/classifier if trained, "
                         "else the shipped models/epitome)", "")
    heldout_fraction: float = _h("share of examples held out (by source response) for accuracy / perplexity", 0.1,
                                 at_least=0, at_most=0.9)
    max_heldout: int = _h("cap on held-out examples evaluated", 60, at_least=0)
    max_steps: int = _h("optimiser steps (0 = run the epochs)", 0, at_least=0)
    grad_accum: int = _h("gradient accumulation steps", 1, at_least=1)
    warmup_steps: int = _h("linear warmup steps", 10, at_least=0)
    save_steps: int = _h("checkpoint every N steps (resumable)", 25, at_least=1)
    logging_steps: int = _h("log the losses every N steps", 5, at_least=1)


@dataclass
class RLConfig:
    method: str = _h("reinforce (paper: running-mean baseline) | rloo (leave-one-out over samples per state)",
                     "rloo", choices=("reinforce", "rloo"))
    steps: int = _h("optimiser steps (paper 20000; 50 is the CPU budget, about 70 s a step on 2 cores)", 50,
                    at_least=1)
    batch_size: int = _h("states per step (paper 16)", 4, at_least=1)
    samples_per_state: int = _h("rollouts per state for rloo", 4, at_least=1)
    lr: float = _h("learning rate (paper 1e-5 full fine-tuning; LoRA wants more)", 1e-4, above=0)
    baseline_window: int = _h("reinforce: running mean over the last N rewards (paper 100)", 100, at_least=1)
    kl_coef: float = _h("KL penalty to the warm-start policy (0 = off, as the paper)", 0.05, at_least=0)
    grad_clip: float = _h("gradient norm clip", 1.0, above=0)
    save_every: int = _h("checkpoint every N steps", 5, at_least=1)
    max_minutes: float = _h("stop at the first step that ends this many minutes into the run (this invocation), with "
                            "a checkpoint; the stage then writes the policy at the step reached, and a re-run "
                            "continues towards rl.steps (for a leased GPU; 0 = no limit)", 0.0, at_least=0)
    log_every: int = _h("log every N steps", 1, at_least=1)
    seed: int = _h("seed", 42)


@dataclass
class RewriteConfig:
    method: str = _h("partner | warmstart | identity | template | retrieval | zeroshot", "partner",
                     choices=("partner", "warmstart", "identity", "template", "retrieval", "zeroshot"))
    batch_size: int = _h("examples per generation batch (larger is faster for the agent; memory grows with it)", 128,
                         at_least=1)
    decoding: str = _h("greedy | sample: how candidate sentences are decoded at inference", "greedy",
                       choices=("greedy", "sample"))
    seed: int = _h("seed (makes sampling deterministic)", 0)
    template: str = _h("the template baseline's sentence", "That must be really hard for you.")
    insert_at: str = _h("start | end: where template, retrieval and zeroshot insert their sentence", "start",
                        choices=("start", "end"))
    scorer: str = _h("empathy classifier folder for the before/after scores (empty = the shipped models/epitome; "
                     "'none' = skip scoring)", "")
    retrieval_embedder: str = _h("sentence embedder of the retrieval index and of specificity", "minilm")
    retrieval_min_words: int = _h("shortest sentence kept in the retrieval index (words)", 4, at_least=1)
    retrieval_max_words: int = _h("longest sentence kept in the retrieval index (words)", 30, at_least=1)
    zeroshot_backbone: str = _h("instruction-tuned LM of the zeroshot baseline (empty = policy.backbone)", "")
    zeroshot_max_new_tokens: int = _h("length cap of the zeroshot sentence", 40, at_least=1)
    max_input_tokens: int = _h("tokens kept of the seeker post and of the response, each, in zeroshot prompts", 192,
                               at_least=1)
    max_seeker_copy: float = _h("reject a generated sentence when at least this share of its word trigrams occurs "
                                "in the seeker post (it speaks the seeker's words as the supporter's); 0 = off "
                                "(partner/guards.py)", 0.5, at_least=0, at_most=1)
    candidates: int = _h("partner/warmstart: the policy's episodes per input in the pool (1 = its greedy episode; "
                         "N > 1 = greedy + N-1 sampled), ranked with the pool's other sources: partner/rerank.py", 1,
                         at_least=1)
    keep_original: bool = _h("with a ranked pool, the unchanged response is a candidate too (a rewrite never "
                             "scores below its input under the reward)", True)
    min_gain: float | None = _h("with keep_original, an edit is kept only if the ranker scores it above the unchanged "
                                "response by this much; null (the default) = the ranker's own default: 0 under "
                                "rank_by preference (any predicted gain, in the model's logits), 0.5 under rank_by "
                                "reward (with the paper's weights, in effect only edits that gain empathy)", None)
    max_response_copy: float = _h("reject a generated sentence when at least this share of its word trigrams occurs "
                                  "in the response's other sentences (it duplicates what is already there); 0 = off",
                                  0.5, at_least=0, at_most=1)
    max_repetition: float = _h("reject a generated sentence when at least this share of its word trigrams repeats "
                               "an earlier one (greedy loops); 0 = off", 0.3, at_least=0, at_most=1)
    block_risk_terms: bool = _h("reject a generated sentence that names death, suicide or self-harm (rewards/sentence_guard.py "
                                "RISK_TERMS): the rewriter never brings these into a response; false = off", True)
    block_unsafe_topics: bool = _h("reject a generated sentence that names sex, alcohol or drugs, an eating-disorder "
                                   "behaviour, a weapon or pills, or revenge (rewards/sentence_guard.py UNSAFE_TERMS); "
                                   "false = off", True)
    guard_retries: int = _h("partner/warmstart: when the guard rejects a sentence, sample up to this many new ones "
                            "for the same position (top-p, seeded) before the window becomes a stop; 0 = stop at once",
                            0, at_least=0)
    rank_by: str = _h("with a ranked pool (candidates > 1 or a source besides policy), what picks the candidate: "
                      "preference (the preference model rewards.preference_model, learned from blinded partner-ab "
                      "ratings: score gain over the original) | reward (the training reward rewards.*)", "preference",
                      choices=("preference", "reward"))
    pool: list[str] = _h("the candidate sources, ranked by rank_by: policy (the policy's greedy episode, + "
                         "candidates-1 samples), retrieval (pool_retrieved nearest human-written EPITOME-train "
                         "sentences, inserted at insert_at; left out with a warning when the shared data is "
                         "missing), zeroshot (SmolLM2-Instruct's sentence), template (rewrite.template); each edit "
                         "says its source. [policy] with candidates 1 is the policy's own greedy episode, unranked",
                         factory=lambda: ["policy", "retrieval", "zeroshot"])
    pool_retrieved: int = _h("retrieval candidates per input in the pool", 3)
    record_candidates: bool = _h("with ranking, write every candidate (source, text, edits) into the output line's "
                                 "'candidates', so the pool can be ranked again (candidates_from)", False)
    candidates_from: str = _h("partner/warmstart: rank the candidates recorded in this earlier output (by "
                              "record_candidates; matched by seeker post and response) instead of generating; "
                              "rank_by, pool, keep_original and min_gain apply", "")
    preference_guard: bool = _h("partner/warmstart: an edited response the preference model scores below the "
                                "original is not made (the original is returned)", False)


@dataclass
class PartnerConfig:
    run_dir: str = _h("where every stage writes its outputs (stages whose outputs exist are skipped)", "runs/default")
    data_dir: str = _h("folder with epitome-reddit/, esconv/, counsel-chat/ (empty: $PARTNER_DATA or ../shared/data)",
                       "")
    seed: int = _h("global seed", 42)
    classifier: EpitomeConfig = _h("EPITOME empathy classifier", factory=EpitomeConfig)
    coherence: CoherenceConfig = _h("sentence coherence classifier", factory=CoherenceConfig)
    reverse: ReverseConfig = _h("reverse model for mutual information", factory=ReverseConfig)
    preference: PreferenceConfig = _h("reward model learned from partner-ab ratings", factory=PreferenceConfig)
    rewards: RewardConfig = _h("reward stack", factory=RewardConfig)
    policy: PolicyConfig = _h("rewriting policy", factory=PolicyConfig)
    warmstart: WarmStartConfig = _h("supervised warm start", factory=WarmStartConfig)
    rl: RLConfig = _h("policy-gradient training", factory=RLConfig)
    rewrite: RewriteConfig = _h("rewriting and baselines", factory=RewriteConfig)

    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PartnerConfig:
    return configuration.load(PartnerConfig, path, overrides)


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
SHIPPED_MODELS = REPO_ROOT / "models"
