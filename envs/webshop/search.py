"""BM25 product search over WebShop's document text, with ``bm25s``.

Each product is indexed as upstream's search documents are: the lower-cased
title, description, first bullet point and option text. Scoring follows
pyserini's defaults (Lucene BM25, k1=0.9, b=0.4, Lucene's English stop words,
Porter stemming). A query returns the matching products, best first, at most
``top_k``; ties keep catalogue order, as Lucene keeps index order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer

__all__ = ["ProductSearch", "SEARCH_RETURN_N"]

#: How many hits a search returns (upstream shows them 10 per page).
SEARCH_RETURN_N = 50

# Single-character tokens count (Lucene keeps them); bm25s' default drops them.
_SPLITTER = r"(?u)\b\w+\b"


class ProductSearch:
    """A BM25 index over ``documents`` (one string per product, in catalogue order).

    ``search(query)`` returns product indices, best first. Results are cached
    (bounded LRU), so one index serves every env in a process cheaply.
    """

    def __init__(self, documents: Sequence[str], *, cache_size: int = 4096) -> None:
        stemmer = Stemmer.Stemmer("porter")
        self._tokenizer = Tokenizer(splitter=_SPLITTER, stopwords="en", stemmer=stemmer.stemWord)
        corpus = self._tokenizer.tokenize(
            list(documents), update_vocab=True, show_progress=False, return_as="tuple"
        )
        self._index = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        # Indexing (ids, vocab) keeps the index's vocabulary the tokenizer's own.
        self._index.index(corpus, show_progress=False)
        self._n_docs = len(documents)
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n_docs

    def search(self, query: str, top_k: int = SEARCH_RETURN_N) -> tuple[int, ...]:
        """Indices of the products matching ``query`` (any query term), best first."""
        key = f"{top_k}\x00{query}"
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = self._search(query, top_k)
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def _search(self, query: str, top_k: int) -> tuple[int, ...]:
        if self._n_docs == 0:
            return ()
        tokens = self._tokenizer.tokenize(
            [query.lower()], update_vocab=False, show_progress=False, return_as="string"
        )[0]
        # Unknown words and bm25s' empty-document placeholder never score.
        tokens = [t for t in tokens if t and t in self._index.vocab_dict]
        if not tokens:
            return ()
        scores = np.asarray(self._index.get_scores(tokens), dtype=np.float64)
        matching = np.flatnonzero(scores > 0)
        if matching.size == 0:
            return ()
        if matching.size > top_k:
            # Keep every document tied with the k-th score, then order exactly.
            kth = np.partition(scores[matching], matching.size - top_k)[matching.size - top_k]
            matching = matching[scores[matching] >= kth]
        order = np.lexsort((matching, -scores[matching]))
        return tuple(int(i) for i in matching[order][:top_k])
