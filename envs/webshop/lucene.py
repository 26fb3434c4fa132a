"""Upstream's exact search: a real Lucene index, built and queried with pyserini.

``search_backend="lucene"`` builds the index the way upstream's
``search_engine/run_indexing.sh`` does (``python -m pyserini.index.lucene
--collection JsonCollection --generator DefaultLuceneDocumentGenerator
--storePositions --storeDocvectors --storeRaw`` over ``{"id": asin,
"contents": document}`` lines) and queries it with ``LuceneSearcher.search(
query, k)``, as upstream's engine does. It needs the optional ``lucene`` extra
(``pyserini==0.17.0``, upstream's pin, whose Anserini 0.14.3 jar runs on Java
11 or newer) and a Java runtime.

Indexes are kept on disk, keyed by the documents' content:
``$MENTORGYM_WEBSHOP_LUCENE`` names the folder, by default
``$XDG_CACHE_HOME/mentorgym/webshop-lucene`` (``~/.cache/...``). An index is
built into a temporary folder and renamed into place, so a crash never leaves a
half-built one and concurrent processes at worst build it twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from envs.core import BackendError
from envs.webshop.search import CachedSearch

__all__ = ["ENV_VAR", "LuceneSearch", "LuceneUnavailable", "index_dir", "lucene_problem"]

ENV_VAR = "MENTORGYM_WEBSHOP_LUCENE"
_INSTALL_HINT = "pip install 'mentorgym[lucene]' (pyserini==0.17.0) and a Java 11+ runtime"


class LuceneUnavailable(RuntimeError):
    """The exact backend cannot run here (no pyserini, no Java, or indexing failed)."""


def lucene_problem() -> str | None:
    """Why the Lucene backend cannot run here, in words; ``None`` when it can."""
    if find_spec("pyserini") is None:
        return f"search_backend='lucene' needs pyserini, which is not installed ({_INSTALL_HINT})"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return f"search_backend='lucene' needs Java, and no java was found ({_INSTALL_HINT})"
    return None


def index_dir(documents: Sequence[str], ids: Sequence[str]) -> Path:
    """Where the index of these documents lives (keyed by their content)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        base = Path(value).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        base = base / "mentorgym" / "webshop-lucene"
    sha = hashlib.sha256()
    for doc_id, document in zip(ids, documents):
        sha.update(doc_id.encode("utf-8") + b"\x00" + document.encode("utf-8") + b"\x00")
    return base / sha.hexdigest()[:32]


def _build_index(documents: Sequence[str], ids: Sequence[str], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        collection = work / "collection"
        collection.mkdir()
        with (collection / "documents.jsonl").open("w", encoding="utf-8") as handle:
            for doc_id, document in zip(ids, documents):
                handle.write(json.dumps({"id": doc_id, "contents": document}) + "\n")
        built = work / "index"
        command = [
            sys.executable, "-m", "pyserini.index.lucene",
            "--collection", "JsonCollection", "--input", str(collection), "--index", str(built),
            "--generator", "DefaultLuceneDocumentGenerator", "--threads", "1",
            "--storePositions", "--storeDocvectors", "--storeRaw",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not built.is_dir():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise LuceneUnavailable(f"building the Lucene index failed: {last}")
        try:
            os.replace(built, target)
        except OSError:
            if not target.is_dir():  # another process won the race: use its index
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


class LuceneSearch(CachedSearch):
    """Products ranked by a real Lucene index (upstream's searcher), best first."""

    def __init__(self, documents: Sequence[str], ids: Sequence[str]) -> None:
        problem = lucene_problem()
        if problem is not None:
            raise LuceneUnavailable(problem)
        super().__init__(len(documents))
        self._position = {doc_id: i for i, doc_id in enumerate(ids)}
        self.index_path = index_dir(documents, ids)
        if not self.index_path.is_dir():
            _build_index(documents, ids, self.index_path)
        # pyserini's package imports its dense-retrieval modules (faiss, torch) on the way.
        from pyserini.search.lucene import LuceneSearcher

        self._searcher = LuceneSearcher(str(self.index_path))
        self._java_lock = threading.Lock()

    def _search(self, query: str, top_k: int) -> tuple[int, ...]:
        try:
            with self._java_lock:
                hits = self._searcher.search(query, k=top_k)
                docids = [hit.docid for hit in hits]
        except Exception as error:  # a JVM-side failure: end the episode, not the process
            raise BackendError(f"Lucene search failed: {error}") from error
        # As upstream: hits whose id is not a product of the catalogue are dropped.
        return tuple(self._position[d] for d in docids if d in self._position)
