"""Small helpers about the Hugging Face hub that never touch the network."""

from __future__ import annotations

import os
import re

_TRUE = {"1", "on", "yes", "true"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def hub_offline() -> bool:
    """True when the environment forbids hub access (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``).

    Read at call time (not cached at import), so tests and callers can toggle it.
    """
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_hub_id(ref: str) -> bool:
    """True for ``name`` or ``org/name`` made of word characters, dots and dashes (no ``..``, no leading dot)."""
    return bool(_HUB_ID.match(ref)) and ".." not in ref and not ref.endswith(".")


def hub_revision(repo_id: str) -> str | None:
    """Commit hash of the cached snapshot of ``repo_id`` (cache only, no network), or None."""
    try:
        from transformers.utils.hub import cached_file, extract_commit_hash

        resolved = cached_file(
            repo_id,
            "config.json",
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        return extract_commit_hash(resolved, None)
    except Exception:  # best effort: the revision only refines the fingerprint
        return None
