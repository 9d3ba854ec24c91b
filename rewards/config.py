"""Weights and switches of the PARTNER reward (paper §5.5; partner-method.md §2)."""

from __future__ import annotations

from dataclasses import dataclass

from core.configuration import option as _h


@dataclass
class RewardConfig:
    w_empathy: float = _h("weight of the change in empathy r_e (paper 1.0); 0 switches it off", 1.0)
    w_fluency: float = _h("weight of fluency r_f (paper 10.0); 0 switches it off", 10.0)
    w_coherence: float = _h("weight of coherence r_c (paper 0.1); 0 switches it off", 0.1)
    w_mi: float = _h("weight of mutual information r_m (paper 0.1); 0 switches it off", 0.1)
    w_novelty: float = _h("weight of the novelty penalty r_n (not in the paper; rewards/novelty.py): minus the share of "
                          "the last novelty_window RL episodes that wrote the same new sentence; 0 switches it off", 0.0)
    novelty_window: int = _h("episodes r_n remembers (this batch included)", 256)
    w_preference: float = _h("weight of the preference reward r_pref (not in the paper; rewards/preference.py): the "
                             "preference model's score of the rewrite minus the original's (Bradley-Terry logits "
                             "learned from partner-ab ratings); pair it with rl.kl_coef > 0; 0 switches it off", 0.0)
    preference_model: str = _h("preference model folder; empty = run_dir/preference if complete, else the shipped "
                               "models/preference", "")
    lambda_mi: float = _h("λ_MI: forward vs reverse log-likelihood in r_m (paper 0.5)", 0.5)
    empathy_mode: str = _h("argmax (paper) | expected: levels behind r_e", "argmax")
    reference_lm: str = _h("frozen LM for fluency (paper: GPT-2); empty = the policy backbone", "")
    batch_size: int = _h("batch size inside each scorer", 16)
    empathy_model: str = _h("EPITOME classifier folder; empty = run_dir/classifier if complete, else the shipped "
                            "models/epitome", "")
    coherence_model: str = _h("coherence classifier folder; empty = run_dir/coherence if complete, else the shipped "
                              "models/coherence", "")
    reverse_model: str = _h("reverse-model folder (reverse.json + adapter/); empty = run_dir/reverse if complete, "
                            "else the shipped models/reverse", "")
    coherence_empty: float = _h("r_c when there is nothing to judge (stop, deletion, no other window sentence); "
                                "1.0 as the paper scores single-sentence outputs", 1.0)
    max_seeker_tokens: int = _h("tokens kept of the seeker post in r_m (paper truncates posts to 64)", 64)
    max_response_tokens: int = _h("tokens kept of the rewritten response in r_f and r_m", 128)
