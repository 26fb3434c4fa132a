"""SearchQA-v0: multi-hop question answering with a BM25 ``search`` tool over a local corpus.

The shipped corpus describes a generated fictional world (people, cities,
regions, universities, companies, novels; :mod:`envs.tooluse.generators.searchqa`),
so no answer can be recalled from pre-training: every question needs two or
three retrievals, each using a name found in the previous result (bridge
questions), or two lookups compared (comparison questions). The ``search`` tool
is :mod:`envs.tooluse.searchtool`. The expert searches the reference queries,
one hop per tool turn (both sides of a comparison in one turn), then answers.

Judging, as HotpotQA does: ``info["em"]`` is the normalised exact match and
``info["f1"]`` the token F1 of the answer, each the best over the gold aliases.
``won`` is the exact match; the score is the F1 (1.0 on an exact match).

**Splits are disjoint in the entity each question starts from** (the person,
company, book or cities it names); the corpus is shared.

Your own data: ``task_file`` takes HotpotQA / 2WikiMultihopQA records
(``question``, ``answer``, ``context``, ``supporting_facts``), FlashRAG-style
records (``golden_answers``) or mentorgym-schema records; ``corpus_file``
takes a JSONL corpus (``{"id", "title", "text"}`` or FlashRAG's ``contents``).
Without ``corpus_file`` the corpus is the union of the questions' contexts.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from envs.tooluse.calls import format_tool_call
from envs.tooluse.checkers import qa_scores
from envs.tooluse.env import ToolEnv, Verdict
from envs.tooluse.generators.searchqa import (
    corpus_file_data,
    generate_tasks,
    generate_world,
    world_corpus,
)
from envs.tooluse.sandbox import Toolset
from envs.tooluse.searchtool import MAX_TOP_K, SEARCH_TOOL, make_search_tools
from envs.tooluse.tasks import (
    DATA_DIR,
    TaskFileError,
    ToolTask,
    load_corpus,
    load_hotpot,
    load_shipped_tasks,
    write_jsonl_atomic,
)

# The search tool and the generator stay importable from here, where they lived before the split.
__all__ = [
    "MAX_TOP_K",
    "SEARCH_TOOL",
    "SHIPPED_CORPUS",
    "SearchQAEnv",
    "corpus_file_data",
    "generate_tasks",
    "generate_world",
    "make_search_tools",
    "world_corpus",
]

SHIPPED_CORPUS = DATA_DIR / "searchqa_corpus.json"


# -- the environment ------------------------------------------------------------------------


class SearchQAEnv(ToolEnv):
    """Multi-hop QA with a search tool (module docstring)."""

    answer_instruction = (
        "Use `search` to look things up; when you know the answer, call `answer` with it "
        "(or write <answer>...</answer>). Answer with a short phrase."
    )

    def __init__(
        self,
        *,
        split: str = "train",
        task_file: str | None = None,
        corpus_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(split=split, **kwargs)
        self._corpus_dir: str | None = None
        if task_file is None:
            if corpus_file is not None:
                raise ValueError(
                    "SearchQA-v0: corpus_file needs task_file (the questions to ask about it)"
                )
            tasks = load_shipped_tasks(
                "searchqa", split, builtin_tools={"search": SEARCH_TOOL}, default_tools=("search",)
            )
            corpus_path = str(SHIPPED_CORPUS)
        else:
            tasks, documents = load_hotpot(task_file, search_tools=[SEARCH_TOOL])
            tasks = [t for t in tasks if t.split in (None, split)]
            if corpus_file is not None:
                corpus_path = str(Path(corpus_file).resolve())
                load_corpus(
                    corpus_path
                )  # fail here, with a clear message, rather than in the worker
            elif documents:
                # The worker may not write files; the corpus of the contexts is written here.
                self._corpus_dir = tempfile.mkdtemp(prefix="mentorgym-searchqa-")
                corpus_path = str(Path(self._corpus_dir) / "corpus.jsonl")
                write_jsonl_atomic(corpus_path, documents)
            else:
                raise TaskFileError(f"{task_file}: no 'context' in the records; pass corpus_file=")
        for task in tasks:
            if not task.answer:
                raise TaskFileError(f"SearchQA-v0: task {task.id!r} has no answer")
        self._search_toolset = Toolset(
            "envs.tooluse.searchtool:make_search_tools", {"corpus_path": corpus_path}
        )
        self._set_tasks(tasks)

    def _toolset(self, task: ToolTask) -> Toolset:
        return self._search_toolset

    def _preload(self) -> tuple[Toolset, ...]:
        return (self._search_toolset,)

    def _judge(self, task: ToolTask, answer: str) -> Verdict:
        em, f1 = qa_scores(answer, task.answer)
        return Verdict(f1, em, {"em": float(em), "f1": f1})

    def _info(self, **kwargs: Any) -> dict[str, Any]:
        info = super()._info(**kwargs)
        info.setdefault("em", 0.0)
        info.setdefault("f1", 0.0)
        return info

    def _full_actions(self, task: ToolTask) -> list[str]:
        rng = self._rng_for_state()
        last = self._results[-1] if self._results else ""
        titles = re.findall(r"^\[\d+\] ([^:\n]+):", last, flags=re.MULTILINE)
        names = [n for n in _capitalised(task.question) if n not in _QUESTION_WORDS]
        queries = list(dict.fromkeys(names + titles))
        actions = [
            format_tool_call("search", {"query": q})
            for q in rng.sample(queries, min(4, len(queries)))
        ]
        candidates = list(dict.fromkeys(titles + re.findall(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b", last)))
        for answer in rng.sample(candidates, min(2, len(candidates))) or [
            names[0] if names else "unknown"
        ]:
            actions.append(self.format_answer(answer))
        return actions

    def close(self) -> None:
        super().close()
        if self._corpus_dir is not None:
            shutil.rmtree(self._corpus_dir, ignore_errors=True)
            self._corpus_dir = None


_QUESTION_WORDS = frozenset(
    {"On", "In", "What", "Which", "Who", "When", "Where", "How", "The", "A", "An"}
)


def _capitalised(text: str) -> list[str]:
    """Runs of capitalised words (candidate names)."""
    return re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b", text)
