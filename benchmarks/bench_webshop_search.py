#!/usr/bin/env python
"""How closely WebShop-v0's default search ranks like upstream's real Lucene index.

Upstream WebShop searches a Lucene index (pyserini 0.17.0, Anserini 0.14.3).
``search_backend="python"`` (the default) reproduces that ranking in pure
Python; ``search_backend="lucene"`` builds and queries the real index. This
script runs both over the shipped catalogue (or ``--catalogue``) and reports,
per query set, on what share of queries the default agrees with Lucene:

* ``top-1``: the same first hit (or both no hits);
* ``page-1 set`` / ``page-1 order``: the same 10 products on the first
  results page, as a set / in the same order;
* ``top-50``: the same 50 results in the same order (everything the env shows).

Query sets: every distinct goal text of the catalogue (the instruction without
its price clause: what the expert and most agents search), and ``--short``
seeded 1-3-word queries cut from goal texts and product titles. The baseline
row, measured in the same run, is the search this project used before issue 25
(bm25s with its own tokenizer; skipped when bm25s or PyStemmer is missing).
The last line is the headline: page-1 order agreement on goal-text queries,
against the goal of at least 95%.

The real index needs the ``lucene`` extra (pyserini==0.17.0) and Java; run
with an interpreter that has both and the project's requirements::

    python benchmarks/bench_webshop_search.py [--short 3000] [--seed 0]

Without them the script says what is missing and exits with status 2.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 0.95
PAGE = 10  # products per results page
TOP_K = 50  # upstream's SEARCH_RETURN_N


def short_queries(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` seeded queries of 1-3 consecutive words of ``texts``."""
    rng = random.Random(seed)
    queries = []
    for _ in range(n):
        words = rng.choice(texts).split()
        length = rng.randint(1, 3)
        start = rng.randrange(max(1, len(words) - length + 1))
        queries.append(" ".join(words[start : start + length]))
    return queries


def agreement(
    reference: Sequence[Sequence[str]], candidate: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Shares of queries on which ``candidate``'s ranking agrees with ``reference``'s."""
    counts = {"top-1": 0, "page-1 set": 0, "page-1 order": 0, "top-50": 0}
    for ref, got in zip(reference, candidate):
        counts["top-1"] += ref[:1] == got[:1]
        counts["page-1 set"] += set(ref[:PAGE]) == set(got[:PAGE])
        counts["page-1 order"] += ref[:PAGE] == got[:PAGE]
        counts["top-50"] += ref[:TOP_K] == got[:TOP_K]
    return {key: value / max(1, len(reference)) for key, value in counts.items()}


def old_search(documents: Sequence[str]) -> Callable[[str], list[int]] | None:
    """The search used before issue 25 (bm25s, its own tokenizer, ties in catalogue order)."""
    try:
        import bm25s
        import numpy as np
        import Stemmer
        from bm25s.tokenization import Tokenizer
    except ImportError:
        return None
    stemmer = Stemmer.Stemmer("porter")
    tokenizer = Tokenizer(splitter=r"(?u)\b\w+\b", stopwords="en", stemmer=stemmer.stemWord)
    corpus = tokenizer.tokenize(
        list(documents), update_vocab=True, show_progress=False, return_as="tuple"
    )
    index = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    index.index(corpus, show_progress=False)

    def search(query: str) -> list[int]:
        tokens = tokenizer.tokenize(
            [query.lower()], update_vocab=False, show_progress=False, return_as="string"
        )[0]
        tokens = [t for t in tokens if t and t in index.vocab_dict]
        if not tokens:
            return []
        scores = np.asarray(index.get_scores(tokens), dtype=np.float64)
        matching = np.flatnonzero(scores > 0)
        order = np.lexsort((matching, -scores[matching]))
        return [int(i) for i in matching[order][:TOP_K]]

    return search


def timed(search: Callable[[str], Sequence[int]], queries: Sequence[str]) -> tuple[list, float]:
    start = time.perf_counter()
    results = [list(search(q)) for q in queries]
    return results, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=3000, help="number of 1-3-word queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the short queries")
    parser.add_argument("--catalogue", type=Path, default=None, help="a catalogue file")
    args = parser.parse_args()

    from envs.webshop.catalogue import get_catalogue, goal_search_text
    from envs.webshop.lucene import lucene_problem
    from envs.webshop.search import ProductSearch, make_search

    catalogue = get_catalogue(catalogue_path=args.catalogue)
    documents = [p.search_document() for p in catalogue.products]
    asins = [p.asin for p in catalogue.products]
    goal_texts = list(dict.fromkeys(goal_search_text(g) for g in catalogue.goals))
    sources = goal_texts + [p.title.lower() for p in catalogue.products]
    query_sets = {
        "goal text": goal_texts,
        "1-3 words": short_queries(sources, args.short, args.seed),
    }
    print(f"catalogue: {catalogue!r}")
    print(f"queries: {len(goal_texts)} distinct goal texts, {args.short} short (seed {args.seed})")

    problem = lucene_problem()
    if problem is not None:
        print(f"stopped before any comparison: {problem}")
        print("headline: no agreement measured (the Lucene backend is unavailable here)")
        return 2
    start = time.perf_counter()
    lucene = make_search("lucene", documents, asins)
    print(f"Lucene index ready in {time.perf_counter() - start:.1f} s ({lucene.index_path})")

    candidates: dict[str, Callable[[str], Sequence[int]]] = {
        "default (python)": ProductSearch(documents, asins, cache_size=0).search
    }
    old = old_search(documents)
    if old is not None:
        candidates["baseline: before issue 25"] = old
    else:
        print("baseline row skipped: bm25s or PyStemmer is not installed")

    rows = []
    speed = {}
    for set_name, queries in query_sets.items():
        reference, lucene_s = timed(lambda q: lucene.search(q, TOP_K), queries)
        speed.setdefault("lucene", []).append((len(queries), lucene_s))
        ref_ids = [[asins[i] for i in hits] for hits in reference]
        for name, search in candidates.items():
            results, seconds = timed(search, queries)
            speed.setdefault(name, []).append((len(queries), seconds))
            got_ids = [[asins[i] for i in hits] for hits in results]
            rows.append((set_name, name, agreement(ref_ids, got_ids)))

    print()
    header = f"{'queries':<10} {'search':<27} {'top-1':>7} {'page-1 set':>11} "
    print(header + f"{'page-1 order':>13} {'top-50':>7}")
    for set_name, name, share in rows:
        print(
            f"{set_name:<10} {name:<27} {share['top-1']:>7.1%} {share['page-1 set']:>11.1%} "
            f"{share['page-1 order']:>13.1%} {share['top-50']:>7.1%}"
        )
    print()
    for name, runs in speed.items():
        n = sum(count for count, _ in runs)
        seconds = sum(s for _, s in runs)
        print(f"speed: {name:<27} {n / seconds:>9.0f} searches/s (cold cache)")
    headline = next(s for q, n, s in rows if q == "goal text" and n == "default (python)")
    order = headline["page-1 order"]
    verdict = "goal met" if order >= GOAL else "below the goal"
    print(
        f"headline: page 1 in Lucene's order on {order:.1%} of goal-text queries "
        f"(goal >= {GOAL:.0%}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
