"""WebShop's product search, ranking as upstream's Lucene index does.

Upstream searches a Lucene index built by ``pyserini.index.lucene`` (Anserini
0.14.3, Lucene 8) with ``LuceneSearcher.search(keywords, k=50)``. This module
reproduces that ranking in pure Python:

* each product's document is upstream's (lower-cased title, description,
  first bullet point and option text), analysed as Lucene does
  (:mod:`envs.webshop.analysis`);
* a query is analysed the same way; each distinct term is one clause,
  boosted by how often it occurs in the query (Anserini's bag of words);
* a document's length is stored as Lucene stores it, in one byte
  (:func:`length_to_byte`: exact up to 40 terms, then 4 significant bits);
* scores are Lucene 8's ``BM25Similarity`` (k1 = 0.9, b = 0.4, Anserini's
  defaults, which upstream's searcher keeps) computed in 32-bit floats with
  Lucene's order of operations, and clause scores summed in double precision;
* equal scores are ordered by ascending id (asin), as Anserini breaks ties.

``ProductSearch.search`` returns product indices, best first, at most ``top_k``.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

from envs.webshop.analysis import analyze

__all__ = [
    "SEARCH_BACKENDS",
    "SEARCH_RETURN_N",
    "CachedSearch",
    "ProductSearch",
    "byte_to_length",
    "length_to_byte",
    "make_search",
]

#: How many hits a search returns (upstream shows them 10 per page).
SEARCH_RETURN_N = 50

#: ``search_backend=`` values: this module's ranking, or upstream's Lucene index itself.
SEARCH_BACKENDS: tuple[str, ...] = ("python", "lucene")

#: Anserini's BM25 parameters (``SimpleSearcher``'s defaults; upstream sets none).
BM25_K1 = 0.9
BM25_B = 0.4

# Lucene's SmallFloat "byte4" code: bytes below this are the lengths themselves; the
# rest hold length - 24 as a tiny float (4 significant bits, one of them implicit).
_EXACT_LENGTHS = 24


def _int_to_int4(value: int) -> int:
    """A non-negative int as 4 significant bits (3 stored, 1 implicit) and a shift."""
    bits = value.bit_length()
    if bits < 4:
        return value
    shift = bits - 4
    return ((value >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_int(code: int) -> int:
    shift = (code >> 3) - 1
    return code & 0x07 if shift == -1 else ((code & 0x07) | 0x08) << shift


def length_to_byte(length: int) -> int:
    """A document length as Lucene's norm byte (exact up to 40, then rounded down)."""
    if length < _EXACT_LENGTHS:
        return length
    return _EXACT_LENGTHS + _int_to_int4(length - _EXACT_LENGTHS)


def byte_to_length(code: int) -> int:
    """The length a norm byte stands for (the inverse of :func:`length_to_byte` on its image)."""
    if code < _EXACT_LENGTHS:
        return code
    return min(_EXACT_LENGTHS + _int4_to_int(code - _EXACT_LENGTHS), 2**31 - 1)


_LENGTH_TABLE = np.array([byte_to_length(code) for code in range(256)], dtype=np.float32)


class CachedSearch:
    """A product search with a bounded LRU cache of results (one index serves many envs)."""

    def __init__(self, n_docs: int, cache_size: int = 4096) -> None:
        self._n_docs = n_docs
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
        result = self._search(query, top_k) if self._n_docs and top_k > 0 else ()
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def _search(self, query: str, top_k: int) -> tuple[int, ...]:
        raise NotImplementedError


class ProductSearch(CachedSearch):
    """A BM25 index over ``documents`` (one string per product, in catalogue order).

    ``ids`` (one per document, the asins) order documents of equal score.
    ``search(query)`` returns product indices, best first.
    """

    def __init__(
        self,
        documents: Sequence[str],
        ids: Sequence[str] | None = None,
        *,
        k1: float = BM25_K1,
        b: float = BM25_B,
        cache_size: int = 4096,
    ) -> None:
        # Without ids, equal scores keep document order.
        ids = [f"{i:012d}" for i in range(len(documents))] if ids is None else [str(i) for i in ids]
        if len(ids) != len(documents):
            raise ValueError(
                f"ProductSearch: {len(documents)} documents but {len(ids)} ids; give one id each."
            )
        super().__init__(len(documents), cache_size)
        # Rank of each document's id in byte order (what Lucene's tie-break compares).
        order = sorted(range(self._n_docs), key=lambda i: ids[i].encode("utf-8"))
        self._id_rank = np.empty(self._n_docs, dtype=np.int64)
        self._id_rank[order] = np.arange(self._n_docs)

        vocabulary: dict[str, int] = {}
        postings_docs: list[list[int]] = []
        postings_freqs: list[list[int]] = []
        norms = np.zeros(self._n_docs, dtype=np.uint8)
        total_terms = 0
        docs_with_terms = 0
        for doc, text in enumerate(documents):
            terms = analyze(text)
            if not terms:
                continue  # Lucene indexes no field, hence no norm, for an empty document
            docs_with_terms += 1
            total_terms += len(terms)
            norms[doc] = length_to_byte(len(terms))
            for term, freq in Counter(terms).items():
                term_id = vocabulary.setdefault(term, len(vocabulary))
                if term_id == len(postings_docs):
                    postings_docs.append([])
                    postings_freqs.append([])
                postings_docs[term_id].append(doc)
                postings_freqs[term_id].append(freq)
        self._vocabulary = vocabulary
        self._postings = [
            (np.asarray(d, dtype=np.int64), np.asarray(f, dtype=np.float32))
            for d, f in zip(postings_docs, postings_freqs)
        ]
        self._norms = norms
        self._doc_count = docs_with_terms

        k1_f, b_f = np.float32(k1), np.float32(b)
        # avgdl: double division, rounded to float (BM25Similarity.avgFieldLength).
        avgdl = np.float32(total_terms / docs_with_terms) if docs_with_terms else np.float32(1)
        # Lucene's per-norm cache: 1 / (k1 * ((1 - b) + b * length / avgdl)), in floats.
        with np.errstate(divide="ignore"):
            self._norm_inverse = np.float32(1) / (
                k1_f * ((np.float32(1) - b_f) + b_f * _LENGTH_TABLE / avgdl)
            )

    def scores(self, query: str) -> dict[int, float]:
        """Every matching product's score (a 32-bit float, as Lucene reports it)."""
        matching, scores = self._score(query)
        return {int(d): float(s) for d, s in zip(matching, scores)}

    def _idf(self, doc_freq: int) -> np.float32:
        # BM25Similarity.idf: computed in double, rounded to float.
        n = self._doc_count
        return np.float32(math.log(1 + (n - doc_freq + 0.5) / (doc_freq + 0.5)))

    def _score(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        clauses = Counter(t for t in analyze(query) if t in self._vocabulary)
        if not clauses:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        total = np.zeros(self._n_docs, dtype=np.float64)
        hit = np.zeros(self._n_docs, dtype=bool)
        for term, boost in clauses.items():
            docs, freqs = self._postings[self._vocabulary[term]]
            weight = np.float32(boost) * self._idf(len(docs))
            norm_inverse = self._norm_inverse[self._norms[docs]]
            # BM25Scorer.score: weight - weight / (1 + freq * normInverse), all in floats.
            term_scores = weight - weight / (np.float32(1) + freqs * norm_inverse)
            total[docs] += term_scores  # Lucene sums clause scores in a double
            hit[docs] = True
        matching = np.flatnonzero(hit)
        return matching, total[matching].astype(np.float32)

    def _search(self, query: str, top_k: int) -> tuple[int, ...]:
        matching, scores = self._score(query)
        if matching.size == 0:
            return ()
        order = np.lexsort((self._id_rank[matching], -scores))
        return tuple(int(i) for i in matching[order[:top_k]])


def make_search(backend: str, documents: Sequence[str], ids: Sequence[str]) -> CachedSearch:
    """A search over ``documents`` (ids: the asins) with ``backend`` (see :data:`SEARCH_BACKENDS`)."""
    if backend == "python":
        return ProductSearch(documents, ids)
    if backend == "lucene":
        from envs.webshop.lucene import LuceneSearch

        return LuceneSearch(documents, ids)
    raise ValueError(
        f"WebShop: unknown search_backend {backend!r}; choose one of {list(SEARCH_BACKENDS)}."
    )
