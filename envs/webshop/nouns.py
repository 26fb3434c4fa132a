"""Title nouns with spaCy's tagger, as upstream's reward finds them.

Upstream's type reward parses both titles (the purchased product's and the
goal's) with ``en_core_web_sm`` and keeps the lower-cased text of every token
tagged ``NOUN`` or ``PROPN``. :class:`SpacyNouns` does the same with an
installed spaCy English pipeline; ``WebShop-v0`` uses it with
``nouns="spacy"`` (``en_core_web_sm``, upstream's) or ``nouns="spacy:<name or
path>"`` (another installed pipeline, or a pipeline's folder). The default,
``nouns="lexicon"``, needs no model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["NOUN_MODES", "SPACY_MODEL", "NounsUnavailable", "SpacyNouns", "nouns_function"]

#: ``nouns=`` values of ``WebShop-v0``.
NOUN_MODES: tuple[str, ...] = ("lexicon", "spacy")
#: The pipeline upstream loads.
SPACY_MODEL = "en_core_web_sm"
# Upstream's tag test also names "PNOUN", a tag spaCy never assigns.
_NOUN_TAGS = frozenset({"NOUN", "PROPN", "PNOUN"})


class NounsUnavailable(RuntimeError):
    """spaCy or its English model is not installed."""


class SpacyNouns:
    """``nouns(title)``: the title's NOUN/PROPN tokens, lower-cased, in order, repeats kept.

    ``pipeline`` is a loaded spaCy ``Language`` (any pipeline that sets
    ``pos_``); by default :data:`SPACY_MODEL` is loaded. Results are cached.
    """

    def __init__(self, pipeline: Any = None, *, model: str = SPACY_MODEL) -> None:
        self.pipeline = pipeline if pipeline is not None else _load(model)
        self._lock = threading.Lock()  # spaCy pipelines are not thread-safe
        self._cached = lru_cache(maxsize=1 << 16)(self._tag)

    def __call__(self, title: str) -> tuple[str, ...]:
        return self._cached(title)

    def _tag(self, title: str) -> tuple[str, ...]:
        with self._lock:
            doc = self.pipeline(title)
        return tuple(token.text.lower() for token in doc if token.pos_ in _NOUN_TAGS)


def _load(name: str) -> Any:
    try:
        import spacy
    except ImportError:
        raise NounsUnavailable(
            f"nouns='spacy' needs spaCy and its English model {name} (pip install spacy, then "
            f"python -m spacy download {name}); spaCy is not installed"
        ) from None
    try:
        return spacy.load(name)
    except OSError:
        raise NounsUnavailable(
            f"nouns='spacy' needs spaCy's English model {name}, which is not installed "
            f"(python -m spacy download {name}, or nouns='spacy:<name or path>' for another "
            "pipeline); nouns='lexicon' needs no model"
        ) from None


_SHARED: dict[str, SpacyNouns] = {}
_SHARED_LOCK = threading.Lock()


def nouns_function(mode: str) -> Callable[[str], tuple[str, ...]] | None:
    """The title-noun function of a ``nouns=`` mode (``None``: the products' own nouns)."""
    if mode == "lexicon":
        return None
    if mode == "spacy" or (isinstance(mode, str) and mode.startswith("spacy:") and mode[6:]):
        model = mode[6:] if mode.startswith("spacy:") else SPACY_MODEL
        with _SHARED_LOCK:  # one loaded model per process, as one catalogue
            if mode not in _SHARED:
                _SHARED[mode] = SpacyNouns(model=model)
            return _SHARED[mode]
    raise ValueError(
        f"WebShop: unknown nouns mode {mode!r}; choose one of {list(NOUN_MODES)} "
        "or 'spacy:<model name or path>'."
    )
