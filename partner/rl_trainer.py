"""Policy-gradient training of the PARTNER agent (paper §5.6; partner-method.md §3.3, §7).

One training step:

1. Draw ``batch_size`` states (seeker post, response) from the prompt set; with ``method=rloo``
   each is repeated ``samples_per_state`` times.
2. Run the rewriting episode (``partner.episode.run_episodes``) with sampling: at every window
   the policy samples a position (insert / replace / stop) and a sentence (top-p).
3. Score the final rewrite once with the reward stack (a terminal reward; the discount does not
   matter). Optionally subtract ``kl_coef * (log π(a) - log π_ref(a))``, the sampled-action KL
   estimate to the frozen warm-start policy, from the reward (the "KL in the reward" form).
4. Advantage: ``reinforce`` uses the paper's baseline, the running mean of the last
   ``baseline_window`` rewards (taken before this batch is added); ``rloo`` uses the mean reward
   of the other samples of the same state (leave-one-out, as TRL's RLOO).
5. Loss ``-(A · Σ_steps [log p(position) + Σ_t log p(sentence token)]).mean()``: the log-probs are
   recomputed with gradients by a teacher-forced pass over exactly the sampled tokens, so the
   gradient is the REINFORCE gradient of the sampled episode (the original code took the logits
   of the wrong sequence, the softmax over the time axis, and the wrong sign; tests pin all three).

Per-sample rewards throughout (the original code shared one scalar across the batch).

Distributed: every process runs its own rollouts on its own shard of states; gradients of the
trainable parameters (LoRA + position head) are averaged across processes after backward, so
``accelerate launch partner-train rl`` (or ``torchrun``) is data-parallel with no code change.
Checkpoints (adapter + head + optimizer state + baseline + RNG + step + the reward's own state, such
as the novelty penalty's memory; safetensors/JSON, written atomically) let a killed run resume from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections import Counter, deque
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch

from partner.episode import run_episodes
from rewards.stack import RewardOutput

log = logging.getLogger(__name__)


class RewardFn(Protocol):
    def __call__(self, seekers: list[str], originals: list[str], rewrites: list[str],
                 edits: list) -> RewardOutput: ...


class RunningBaseline:
    """b = mean of the last ``window`` rewards (paper §5.6); 0 before any reward is seen."""

    def __init__(self, window: int = 100, values: list[float] | None = None):
        self.values: deque[float] = deque(values or [], maxlen=window)

    def value(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0

    def update(self, rewards: list[float]) -> None:
        self.values.extend(float(r) for r in rewards)


def advantages(rewards: torch.Tensor, method: str, samples_per_state: int = 1,
               baseline: RunningBaseline | None = None) -> torch.Tensor:
    """Per-sample advantages. ``rewards`` is [B*K], grouped state-major (K samples per state)."""
    if method == "reinforce":
        b = baseline.value() if baseline is not None else 0.0
        return rewards - b
    if method == "rloo":
        k = samples_per_state
        if k < 2:
            raise ValueError("rloo needs samples_per_state >= 2")
        r = rewards.view(-1, k)
        loo = (r.sum(dim=1, keepdim=True) - r) / (k - 1)
        return (r - loo).reshape(-1)
    raise ValueError(f"unknown method {method!r} (reinforce | rloo)")


def pg_loss(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """REINFORCE loss: minimising it raises log p of actions with positive advantage."""
    return -(adv.detach() * logp).mean()


# ----------------------------------------------------------------------------------------------
# checkpoints


def _atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    tmp = final.parent / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    (tmp / ".complete").write_text("ok\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """Optimizer state as safetensors + JSON (no pickle)."""
    from safetensors.torch import save_file

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    save_file(tensors, str(path / "optimizer.safetensors"))
    (path / "optimizer.json").write_text(json.dumps({"param_groups": sd["param_groups"], "scalars": scalars}))


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path / "optimizer.safetensors"))
    meta = json.loads((path / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = [p for p in (out_dir / "checkpoints").glob("step-*") if (p / ".complete").exists()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1])) if ckpts else None


# ----------------------------------------------------------------------------------------------
# training


@dataclass
class StepLog:
    step: int
    reward: float
    baseline: float
    kl: float
    position_entropy: float
    loss: float
    components: dict[str, float]
    positions: dict[str, int]
    seconds: float
    details: dict[str, float] = field(default_factory=dict)  # the reward's parts (per-mechanism Δ, MI terms)


def _position_entropy(policy, seekers, windows) -> float:
    with torch.no_grad():
        out = policy.score(seekers, windows, [0] * len(seekers), [torch.zeros(0, dtype=torch.long)] * len(seekers))
        logits = out["position_logits"].float()
        p = torch.softmax(logits, -1)
        logp = torch.log_softmax(logits, -1).masked_fill(~torch.isfinite(logits), 0.0)
        return float(-(p * logp).sum(-1).mean())


class SharedLowerLayers:
    """The KL reference's teacher-forced pass reuses the policy's lower layers.

    The policy and its warm-start reference load the same backbone, and their LoRA adapters change only
    the top transformer layers (``policy.lora_layers``, 8 of SmolLM2's 30 by default). So on the same
    sequences, the layers below the first adapted one compute the same hidden states in both. ``capture``
    keeps the hidden state entering that layer during the policy's pass; ``reuse`` then runs the
    reference's pass from there: its embedding returns the kept state and only its upper layers run.
    The result equals the reference's full pass up to float rounding (its frozen weights are packed
    for oneDNN, the policy's are not).

    It switches itself off (both contexts do nothing) for a backbone that is not Llama-style, different
    backbones, adapters on every layer, or a policy that trains its embedding or lower layers.
    """

    def __init__(self, policy, ref):
        self.split, self.hidden = 0, None
        if ref is None or policy.backbone != ref.backbone:
            return
        self.mine, self.theirs = policy.decoder(), ref.decoder()
        if self.mine is None or self.theirs is None or len(self.mine.layers) != len(self.theirs.layers):
            return
        split = min(policy.first_adapted_layer, ref.first_adapted_layer)
        below = [self.mine.embed_tokens, *list(self.mine.layers)[:split]]
        if any(p.requires_grad for module in below for p in module.parameters()):  # training moves them
            return
        self.split = split if 0 < split < len(self.mine.layers) else 0

    @contextmanager
    def capture(self):
        if not self.split:
            yield
            return

        def keep(module, args, kwargs):
            self.hidden = (args[0] if args else kwargs["hidden_states"]).detach()

        handle = self.mine.layers[self.split].register_forward_pre_hook(keep, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    @contextmanager
    def reuse(self):
        hidden, self.hidden = self.hidden, None
        if not self.split or hidden is None:
            yield
            return

        def kept(module, args, output):
            if output.shape != hidden.shape:
                raise RuntimeError(f"the reference's pass ({tuple(output.shape)}) is not the policy's "
                                   f"({tuple(hidden.shape)}): it cannot reuse its lower layers")
            return hidden

        layers = self.theirs.layers
        handle = self.theirs.embed_tokens.register_forward_hook(kept)
        self.theirs.layers = torch.nn.ModuleList(list(layers)[self.split:])
        try:
            yield
        finally:
            handle.remove()
            self.theirs.layers = layers


def _episode_logp(policy, episodes) -> torch.Tensor:
    """Σ over an episode's steps of log p(position) + log p(sentence), with grad, per episode."""
    steps = [(e, s) for e, ep in enumerate(episodes) for s in ep.steps]
    lp_pos, lp_sent = policy.log_prob([s.seeker for _, s in steps], [s.window for _, s in steps],
                                      [s.position for _, s in steps], [s.sentence_ids for _, s in steps])
    per_step = lp_pos + lp_sent
    index = torch.tensor([e for e, _ in steps], device=per_step.device)
    return torch.zeros(len(episodes), device=per_step.device, dtype=per_step.dtype).index_add(0, index, per_step)


class RLTrainer:
    """Compact accelerate-based REINFORCE / RLOO loop over the two-part action."""

    def __init__(self, policy, reward_fn: RewardFn, prompts: list[tuple[str, str]], rl_cfg, out_dir: str | Path,
                 ref_policy=None, accelerator=None, sample_writer: Callable[[int, list], None] | None = None):
        from accelerate import Accelerator

        self.policy, self.ref, self.reward_fn = policy, ref_policy, reward_fn
        self.shared = SharedLowerLayers(policy, ref_policy)
        self.cfg = rl_cfg
        self.out = Path(out_dir)
        self.acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
        self.prompts = prompts
        self.params = [p for p in policy.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the policy has no trainable parameters (load it with trainable=True)")
        self.opt = torch.optim.AdamW(self.params, lr=rl_cfg.lr, weight_decay=0.0)
        self.baseline = RunningBaseline(rl_cfg.baseline_window)
        self.step = 0
        self.rng = random.Random(rl_cfg.seed + 1000 * self.acc.process_index)
        self.gen = torch.Generator(device=policy.device).manual_seed(rl_cfg.seed + 1000 * self.acc.process_index)
        self.history: list[dict] = []
        self.writer = None
        self.sample_writer = sample_writer

    # -- state ---------------------------------------------------------------------------------

    def save(self) -> Path:
        final = self.out / "checkpoints" / f"step-{self.step}"

        def write(tmp: Path) -> None:
            self.policy.save_pretrained(tmp)
            save_optimizer(self.opt, tmp)
            state = {"step": self.step, "baseline": list(self.baseline.values), "rng": self.rng.getstate()[1],
                     "rng_version": self.rng.getstate()[0], "history": self.history}
            if hasattr(self.reward_fn, "state_dict"):
                state["reward_state"] = self.reward_fn.state_dict()
            (tmp / "trainer_state.json").write_text(json.dumps(state))
            from safetensors.torch import save_file

            save_file({"generator": self.gen.get_state()}, str(tmp / "rng.safetensors"))

        if self.acc.is_main_process:
            _atomic_dir(final, write)
            for old in sorted((self.out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-2]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def resume(self) -> bool:
        ckpt = latest_checkpoint(self.out)
        if ckpt is None:
            return False
        from safetensors.torch import load_file

        self.policy.load_weights(ckpt)
        load_optimizer(self.opt, ckpt)
        state = json.loads((ckpt / "trainer_state.json").read_text())
        self.step = int(state["step"])
        self.baseline = RunningBaseline(self.cfg.baseline_window, state["baseline"])
        self.history = state.get("history", [])
        if state.get("reward_state") and hasattr(self.reward_fn, "load_state_dict"):
            self.reward_fn.load_state_dict(state["reward_state"])
        # Each process re-derives its stream from the step, so resumed runs stay reproducible.
        self.rng = random.Random(self.cfg.seed + 1000 * self.acc.process_index + 7919 * self.step)
        gen_state = load_file(str(ckpt / "rng.safetensors"))["generator"]
        if self.acc.num_processes == 1:
            self.gen.set_state(gen_state)
        else:
            self.gen.manual_seed(self.cfg.seed + 1000 * self.acc.process_index + 7919 * self.step)
        log.info("resumed from %s (step %d)", ckpt, self.step)
        return True

    # -- one step ------------------------------------------------------------------------------

    def _sync_grads(self) -> None:
        if self.acc.num_processes > 1:
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.copy_(self.acc.reduce(p.grad, reduction="mean"))

    def train_step(self) -> StepLog:
        t0 = time.time()
        cfg = self.cfg
        k = cfg.samples_per_state if cfg.method == "rloo" else 1
        states = [self.prompts[self.rng.randrange(len(self.prompts))] for _ in range(cfg.batch_size)]
        seekers = [s for s, _ in states for _ in range(k)]
        originals = [r for _, r in states for _ in range(k)]

        self.policy.eval()
        with torch.no_grad():
            episodes = run_episodes(self.policy, seekers, originals, sample=True, generator=self.gen)
        rewrites = [ep.text for ep in episodes]
        result = self.reward_fn(seekers, originals, rewrites, [ep.reward_edit() for ep in episodes])
        rewards = torch.tensor(result.total, dtype=torch.float32, device=self.policy.device)

        # Dropout stays off: the gradient must be of the distribution the actions were sampled from.
        self.policy.eval()
        use_ref = self.ref is not None and cfg.kl_coef > 0
        with self.shared.capture() if use_ref else nullcontext():
            logp = _episode_logp(self.policy, episodes)
        kl = torch.zeros_like(rewards)
        if use_ref:
            with torch.no_grad(), self.shared.reuse():
                kl = logp.detach() - _episode_logp(self.ref, episodes)
        shaped = rewards - cfg.kl_coef * kl
        baseline_before = self.baseline.value()
        adv = advantages(shaped, cfg.method, k, self.baseline)
        loss = pg_loss(logp, adv)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self._sync_grads()
        torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        all_shaped = self.acc.gather(shaped.detach()).tolist()
        self.baseline.update(all_shaped)
        self.step += 1

        # the k samples of a state share its first window, so one row per state gives the same mean
        entropy = _position_entropy(self.policy, seekers[::k], [ep.steps[0].window for ep in episodes[::k]])
        positions = Counter(s.edit.action for ep in episodes for s in ep.steps)
        mean = lambda xs: float(sum(xs) / len(xs)) if xs else 0.0  # noqa: E731
        entry = StepLog(self.step, mean(self.acc.gather(rewards).tolist()), baseline_before,
                        mean(self.acc.gather(kl).tolist()), entropy, float(loss.detach()),
                        {k_: mean(v) for k_, v in result.components.items()}, dict(positions), time.time() - t0,
                        {k_: mean(v) for k_, v in result.details.items()})
        self.history.append(asdict(entry))
        self._log(entry, episodes[:3])
        return entry

    def _log(self, entry: StepLog, samples) -> None:
        if not self.acc.is_main_process:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        w, s = self.writer, entry.step
        w.add_scalar("reward/total", entry.reward, s)
        w.add_scalar("reward/baseline", entry.baseline, s)
        for name, value in entry.components.items():
            w.add_scalar(f"reward/{name}", value, s)
        for name, value in entry.details.items():
            w.add_scalar(f"reward_parts/{name}", value, s)
        w.add_scalar("policy/kl", entry.kl, s)
        w.add_scalar("policy/position_entropy", entry.position_entropy, s)
        w.add_scalar("policy/loss", entry.loss, s)
        total = sum(entry.positions.values()) or 1
        for action, n in entry.positions.items():
            w.add_scalar(f"positions/{action}", n / total, s)
        if s % max(1, self.cfg.log_every) == 0:
            comps = " ".join(f"{k}={v:+.3f}" for k, v in entry.components.items())
            mech = [k for k in ("empathy_ER", "empathy_IP", "empathy_EX") if k in entry.details]
            if mech:
                comps += " (" + " ".join(f"{k[8:]} {entry.details[k]:+.2f}" for k in mech) + ")"
            log.info("step %d reward %+.3f (baseline %+.3f) %s kl %.3f H(pos) %.2f actions %s %.1fs",
                     s, entry.reward, entry.baseline, comps, entry.kl, entry.position_entropy,
                     entry.positions, entry.seconds)
            ep = samples[0]
            text = f"SEEKER: {ep.seeker[:200]}\n\nORIGINAL: {ep.original}\n\nREWRITE: {ep.text}"
            w.add_text("samples", text.replace("\n", "  \n"), s)
            log.info("sample: %s -> %s", ep.original[:120], ep.text[:200])

    def _out_of_time(self, start: float) -> bool:
        """rl.max_minutes passed? Decided by the main process and shared, so all processes stop at one step."""
        if self.cfg.max_minutes <= 0:
            return False
        late = (time.monotonic() - start) / 60 >= self.cfg.max_minutes
        if self.acc.num_processes > 1:
            flag = torch.tensor([1.0 if late and self.acc.is_main_process else 0.0], device=self.acc.device)
            late = bool(self.acc.reduce(flag, reduction="sum").item() > 0)
        return late

    def train(self, steps: int) -> list[dict]:
        self.resume()
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=self.step, desc="rl", unit=" step", disable=not self.acc.is_main_process)
        start = time.monotonic()
        while self.step < steps:
            entry = self.train_step()
            bar.update(1)
            bar.set_postfix(reward=f"{entry.reward:+.3f}")
            out_of_time = self._out_of_time(start)
            if self.step % self.cfg.save_every == 0 or self.step == steps or out_of_time:
                self.save()
            if out_of_time:
                log.info("rl: stopping at step %d of %d: rl.max_minutes=%g reached (a re-run continues)",
                         self.step, steps, self.cfg.max_minutes)
                break
        bar.close()
        if self.writer is not None:
            self.writer.flush()
        return self.history


def plot_history(history: list[dict], path: Path) -> None:
    """Training curves (total reward and each component, smoothed) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    names = ["total"] + sorted({k for h in history for k in h["components"]})
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        ys = [h["reward"] if name == "total" else h["components"].get(name, math.nan) for h in history]
        ax.plot(steps, ys, alpha=0.35)
        win = max(1, len(ys) // 10)
        smooth = [sum(ys[max(0, i - win + 1):i + 1]) / len(ys[max(0, i - win + 1):i + 1]) for i in range(len(ys))]
        ax.plot(steps, smooth)
        ax.set_title(name)
        ax.set_xlabel("step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
