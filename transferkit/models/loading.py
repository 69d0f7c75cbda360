"""Find, check and load source models (a base encoder plus its tokenizer).

Model references are resolved in this order: catalog name, existing local directory,
path-like string (which must exist), hub id.  Local directories are checked before
loading: transformers would happily unpickle ``pytorch_model.bin``; transferkit only
loads ``*.safetensors`` weights and never unpickles.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, PretrainedConfig, PreTrainedModel

from transferkit.core.errors import UserError, unknown_name
from transferkit.models._hub import hub_offline, hub_revision, looks_like_hub_id
from transferkit.models.catalog import catalog_entries, catalog_names, get_entry
from transferkit.models.vectors import model_kind

PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
SAFETENSORS_PATTERN = "*.safetensors"
_T = TypeVar("_T")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference points: a local directory (``is_local``) or a hub id."""

    ref: str
    path_or_id: str
    is_local: bool


@dataclass
class LoadedModel:
    """A loaded source model: base encoder (no task head) plus tokenizer.

    ``fingerprint`` identifies the weights' origin: for a local directory the sha256 of
    its config.json bytes and weight file names/sizes/mtimes, for a hub id ``id@revision``
    (or just the id when the revision is unknown); ``+random-init`` is appended for the
    randomly initialised baseline (its weights then depend on the caller's seed).
    """

    tokenizer: Any
    backbone: PreTrainedModel
    ref: str
    path: str
    fingerprint: str
    is_local: bool = True
    random_init: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    """Facts worth recording with the run (e.g. word-vector vocabulary coverage)."""
    encoder: Any = None
    """A frozen text encoder (``core.contracts.TextEncoder``) that maps texts to vectors itself, for
    a ``text_encoder`` source; then ``tokenizer`` is None and ``backbone`` holds no weights."""

    @property
    def config(self) -> PretrainedConfig:
        """The backbone's configuration."""
        return self.backbone.config


def _is_path_like(ref: str) -> bool:
    if ref.startswith((".", "~", os.sep)) or (os.altsep and os.altsep in ref):
        return True
    return os.sep in ref and not looks_like_hub_id(ref)


def resolve(ref: str) -> ResolvedModel:
    """Resolve a model reference without any network call.

    Raises:
        UserError: a static word-vector model (catalog entry or vectors file: those are for
            strategy ``word_vectors``), a frozen text encoder (strategy ``feature_extraction``), a path-like reference that does not exist, a file instead of a directory,
            or an unknown plain name while the hub is offline (``HF_HUB_OFFLINE=1``).
    """
    text = str(ref).strip()
    if not text:
        raise UserError("empty model reference: give a catalog name, a local directory or a hub id")
    entry = get_entry(text)
    if entry is not None and entry.kind == "vectors":
        raise UserError(f"'{text}' is a static word-vector model: use it with strategy word_vectors")
    if entry is not None and entry.kind == "text_encoder":
        raise UserError(f"'{text}' is a frozen text encoder, not a transformer: use it with strategy feature_extraction")
    if entry is not None:
        target = entry.resolve()
        if os.path.isabs(target) and not os.path.isdir(target):
            raise UserError(f"catalog model '{text}' points to a missing directory: {target}")
        return ResolvedModel(text, target, os.path.isdir(target))
    expanded = os.path.expanduser(text)
    if os.path.isdir(expanded):
        return ResolvedModel(text, os.path.abspath(expanded), True)
    if os.path.exists(expanded):
        if model_kind(text) == "vectors":
            raise UserError(f"'{text}' is a static word-vector file: use it with strategy word_vectors")
        raise UserError(f"model reference is a file, not a directory: {expanded}")
    if _is_path_like(text):
        raise UserError(f"model directory not found: {expanded}")
    if not looks_like_hub_id(text):
        raise UserError(f"'{text}' is not a catalog name, a local directory or a hub id")
    if "/" not in text and hub_offline():
        raise UserError(f"{unknown_name('model', text, catalog_names())} (the hub is offline: HF_HUB_OFFLINE is set)")
    return ResolvedModel(text, text, False)


def _matching(directory: Path, patterns: tuple[str, ...]) -> list[str]:
    return sorted({p.name for pattern in patterns for p in directory.glob(pattern) if p.is_file()})


def _require_config(path: str | os.PathLike[str]) -> Path:
    directory = Path(path)
    if not directory.is_dir():
        raise UserError(f"model directory not found: {directory}")
    if not (directory / "config.json").is_file():
        raise UserError(f"{directory} has no config.json (not a Hugging Face model directory)")
    return directory


def check_weights(path: str | os.PathLike[str]) -> list[str]:
    """Check that a local model directory has config.json and safetensors weights.

    Returns:
        The names of the ``*.safetensors`` files.

    Raises:
        UserError: no config.json, only pickle weights (never unpickled), or no weights at all.
    """
    directory = _require_config(path)
    safe = _matching(directory, (SAFETENSORS_PATTERN,))
    if safe:
        return safe
    pickles = _matching(directory, PICKLE_PATTERNS)
    if pickles:
        raise UserError(
            f"{directory} has only pickle weights ({', '.join(pickles)}); transferkit never unpickles: "
            "convert to safetensors (load it once in a trusted environment and call "
            "model.save_pretrained(dir), which writes model.safetensors)"
        )
    raise UserError(f"{directory} has no model weights (model.safetensors)")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def _guarded(resolved: ResolvedModel, what: str, call: Callable[[], _T]) -> _T:
    """Run a transformers load, turning file/hub failures into a one-line UserError."""
    try:
        return call()
    except UserError:
        raise
    except (OSError, ValueError, KeyError, ImportError) as exc:
        if resolved.is_local:
            raise UserError(f"could not load the {what} from {resolved.path_or_id}: {_one_line(exc)}") from exc
        hint = ""
        if "/" in resolved.ref:
            hint = f" (no local directory '{resolved.ref}' either)"
        elif get_entry(resolved.ref) is None:
            transformers = (entry.name for entry in catalog_entries() if entry.kind == "transformer")
            hint = f"; catalog models: {', '.join(sorted(transformers))}"
        raise UserError(
            f"could not load '{resolved.ref}' from the Hugging Face hub (offline?): {what}: {_one_line(exc)}{hint}"
        ) from exc


def _load_kwargs(resolved: ResolvedModel, trust_remote_code: bool) -> dict[str, Any]:
    """Common ``from_pretrained`` options; an offline environment (read now) forbids hub requests."""
    offline = not resolved.is_local and hub_offline()
    return {"trust_remote_code": trust_remote_code, "local_files_only": offline}


def _config(resolved: ResolvedModel, trust_remote_code: bool) -> PretrainedConfig:
    kwargs = _load_kwargs(resolved, trust_remote_code)
    return _guarded(resolved, "config", lambda: AutoConfig.from_pretrained(resolved.path_or_id, **kwargs))


def load_config(ref: str, *, trust_remote_code: bool = False) -> PretrainedConfig:
    """Load the configuration of a model reference (catalog name, local directory or hub id)."""
    resolved = resolve(ref)
    if resolved.is_local:
        _require_config(resolved.path_or_id)
    return _config(resolved, trust_remote_code)


def fingerprint_dir(path: str | os.PathLike[str]) -> str:
    """sha256 of config.json bytes plus the names, sizes and mtimes of the weight files."""
    directory = Path(path)
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for name in _matching(directory, (SAFETENSORS_PATTERN, "*.safetensors.index.json")):
        stat = (directory / name).stat()
        digest.update(f"\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def files_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's or a directory tree's relative names, sizes and mtimes (no bytes read)."""
    root = Path(path).resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256(str(root).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"\0{file.relative_to(root) if file != root else ''}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def reference_fingerprint(ref: str) -> str:
    """The identity of a transformer reference's weights, as a run records it: :func:`fingerprint_dir` of the
    directory it resolves to, or the hub id at its cached revision."""
    return _fingerprint(resolve(ref), random_init=False)


def _fingerprint(resolved: ResolvedModel, random_init: bool) -> str:
    if resolved.is_local:
        base = fingerprint_dir(resolved.path_or_id)
    else:
        revision = hub_revision(resolved.path_or_id)
        base = f"{resolved.path_or_id}@{revision}" if revision else resolved.path_or_id
    return f"{base}+random-init" if random_init else base


def _backbone(resolved: ResolvedModel, config: PretrainedConfig, random_init: bool, trust: bool,
              seq2seq: bool = False) -> PreTrainedModel:
    # attn_implementation left unset: transformers then picks "sdpa" when the model supports it, else "eager".
    auto: Any = AutoModelForSeq2SeqLM if seq2seq and getattr(config, "is_encoder_decoder", False) else AutoModel
    if random_init:
        model = _guarded(resolved, "model", lambda: auto.from_config(config, trust_remote_code=trust))
    else:
        kwargs = _load_kwargs(resolved, trust)
        model = _guarded(
            resolved,
            "model weights",
            lambda: auto.from_pretrained(resolved.path_or_id, config=config, use_safetensors=True, **kwargs),
        )
    model.eval()
    return model


def load_backbone(ref: str, *, random_init: bool = False, trust_remote_code: bool = False, seq2seq: bool = False
                  ) -> LoadedModel:
    """Load a base encoder (``AutoModel``, no head) and its fast tokenizer.

    Args:
        ref: catalog name, local directory or hub id (see :func:`resolve`).
        random_init: build the same architecture with random weights (the no-transfer
            baseline); seed it beforehand with ``torch.manual_seed``.
        trust_remote_code: allow custom modelling code from the model repository.
        seq2seq: an encoder-decoder checkpoint (T5, BART ...) is loaded whole, LM head included
            (``AutoModelForSeq2SeqLM``); encoder-only checkpoints still load as ``AutoModel``.

    Raises:
        UserError: unresolvable reference, unsafe or missing weights, or a load failure
            (e.g. the hub is unreachable).
    """
    resolved = resolve(ref)
    if resolved.is_local:
        if random_init:
            _require_config(resolved.path_or_id)
        else:
            check_weights(resolved.path_or_id)
    config = _config(resolved, trust_remote_code)
    kwargs = _load_kwargs(resolved, trust_remote_code)
    tokenizer = _guarded(resolved, "tokenizer", lambda: AutoTokenizer.from_pretrained(resolved.path_or_id, **kwargs))
    backbone = _backbone(resolved, config, random_init, trust_remote_code, seq2seq)
    return LoadedModel(
        tokenizer=tokenizer,
        backbone=backbone,
        ref=resolved.ref,
        path=resolved.path_or_id,
        fingerprint=_fingerprint(resolved, random_init),
        is_local=resolved.is_local,
        random_init=random_init,
    )


def save_backbone(
    model: LoadedModel | PreTrainedModel, tokenizer: Any | None, directory: str | os.PathLike[str]
) -> str:
    """Save a backbone (safetensors weights + config) and its tokenizer files to ``directory``.

    ``tokenizer`` may be None when ``model`` is a :class:`LoadedModel` (its tokenizer is used).
    Returns the directory as a string; it can be passed back to :func:`load_backbone`.
    """
    backbone = model.backbone if isinstance(model, LoadedModel) else model
    if tokenizer is None and isinstance(model, LoadedModel):
        tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("save_backbone needs a tokenizer when given a bare backbone")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    backbone.save_pretrained(str(target))  # transformers 5 always writes safetensors
    tokenizer.save_pretrained(str(target))
    check_weights(target)
    return str(target)


def base_reference(model_ref: str, fingerprint: str) -> dict[str, str]:
    """How a delta model names its base: the catalog name when there is one, else the resolved path or hub id."""
    ref = model_ref if get_entry(model_ref) is not None else resolve(model_ref).path_or_id
    return {"ref": ref, "fingerprint": fingerprint}
