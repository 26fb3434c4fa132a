"""SearchQA-v0's ``search`` tool: BM25 (bm25s) over a corpus of ``{"title", "text"}`` articles.

``make_search_tools(corpus_path)`` is the sandbox's toolset factory: the index
is built in the confined worker and ``search(query, top_k=3)`` returns the
best-matching articles as ``[rank] title: text`` lines. ``SEARCH_TOOL`` is its
chat-template schema; the task generator uses ``SearchIndex`` to check that
every reference query finds its article.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envs.tooluse.schema import normalize_tool_schema
from envs.tooluse.tasks import load_corpus

__all__ = ["MAX_TOP_K", "SEARCH_TOOL", "SearchIndex", "make_search_tools"]

MAX_TOP_K = 5

SEARCH_TOOL: dict[str, Any] = normalize_tool_schema(
    {
        "name": "search",
        "description": "Search the encyclopedia; returns the best-matching articles (BM25).",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "keywords, e.g. a name"},
                "top_k": {
                    "type": "integer",
                    "description": f"number of results, 1 to {MAX_TOP_K}, default 3",
                },
            },
            "required": ["query"],
        },
    }
)


class SearchIndex:
    """A BM25 index (bm25s) over ``{"title", "text"}`` documents."""

    def __init__(self, documents: list[dict[str, str]]) -> None:
        import bm25s

        self.documents = documents
        texts = [f"{d['title']}. {d['text']}" for d in documents]
        self._bm25s = bm25s
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False
        )

    def search(self, query: str, top_k: int) -> list[tuple[int, float]]:
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        k = min(top_k, len(self.documents))
        found, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(found[0], scores[0]) if s > 0]


def _search_function(index: SearchIndex) -> Callable[..., str]:
    def search(query: str, top_k: int = 3) -> str:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be an integer from 1 to {MAX_TOP_K}")
        hits = index.search(query, top_k)
        if not hits:
            return "No results."
        lines = []
        for rank, (position, _) in enumerate(hits, 1):
            document = index.documents[position]
            lines.append(f"[{rank}] {document['title']}: {document['text']}")
        return "\n".join(lines)

    return search


def make_search_tools(corpus_path: str) -> dict[str, Callable[..., Any]]:
    """``{"search": ...}`` over the corpus file at ``corpus_path`` (the sandbox's toolset factory)."""
    return {"search": _search_function(SearchIndex(load_corpus(corpus_path)))}
