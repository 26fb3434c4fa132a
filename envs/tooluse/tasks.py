"""Tool tasks: the JSONL task schema, the shipped task files, and loaders for BFCL and HotpotQA data.

One task is one JSON object (one line of a ``.jsonl`` file)::

    {"id": "mine/0001",                       # required, unique
     "question": "What is 12 * 34 + 5?",      # required
     "answer": "413",                         # gold final answer, or a list of aliases
     "tools": ["multiply", "add"],            # optional: built-in tool names or full schemas
     "gold_calls": [{"multiply": {"a": [12], "b": [34]}}],   # optional, BFCL possible-answer form
     "reference": [[{"name": "multiply", "arguments": {"a": 12, "b": 34}}],
                   [{"name": "add", "arguments": {"a": 408, "b": 5}}]],  # optional: turns of calls
     "final_answer": "413",                   # optional: what the expert answers (default: answer[0])
     "split": "test",                         # optional: only played in that split
     "meta": {"steps": 2}}                    # optional, free-form

``docs/tool-tasks.md`` states which fields each environment needs. The shipped
tasks live in ``envs/tooluse/data/<family>_<split>.json`` as
``{"format": "mentorgym-tool-tasks", "version": 1, "tasks": [...]}``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write_text
from envs.tooluse.bfcl import AST_CATEGORIES, RELEVANCE_CATEGORIES, bfcl_category
from envs.tooluse.schema import normalize_tool_name, normalize_tool_schema, schema_name

__all__ = [
    "DATA_DIR",
    "TASK_FILE_FORMAT",
    "ToolTask",
    "TaskFileError",
    "load_bfcl",
    "load_corpus",
    "load_hotpot",
    "load_shipped_tasks",
    "load_task_file",
    "read_records",
    "task_from_dict",
    "write_jsonl_atomic",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
TASK_FILE_FORMAT = "mentorgym-tool-tasks"


class TaskFileError(ValueError):
    """A task file (or one of its records) does not follow the schema; the message says where."""


@dataclass(frozen=True)
class ToolTask:
    """One tool task (see the module docstring for the JSON form).

    ``tools`` are normalised chat-template schemas; ``reference`` holds turns of
    ``{"name", "arguments"}`` calls the expert makes, one turn per tool turn.
    """

    id: str
    question: str
    tools: tuple[dict[str, Any], ...]
    answer: tuple[str, ...] = ()
    gold_calls: tuple[dict[str, Any], ...] = ()
    reference: tuple[tuple[dict[str, Any], ...], ...] = ()
    final_answer: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(schema_name(schema) for schema in self.tools)

    @property
    def expert_answer(self) -> str:
        """What the expert gives as its final answer."""
        if self.final_answer is not None:
            return self.final_answer
        return self.answer[0] if self.answer else ""

    def to_dict(
        self,
        builtin_tools: dict[str, dict[str, Any]] | None = None,
        default_tools: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The JSON form; a tool equal to one of ``builtin_tools`` is written by name, and
        ``tools`` is left out when it is exactly ``default_tools``."""
        builtin_tools = builtin_tools or {}
        data: dict[str, Any] = {"id": self.id, "question": self.question}
        if self.answer:
            data["answer"] = self.answer[0] if len(self.answer) == 1 else list(self.answer)
        tools = [
            schema_name(schema) if builtin_tools.get(schema_name(schema)) == schema else schema
            for schema in self.tools
        ]
        if tools != list(default_tools):
            data["tools"] = tools
        if self.gold_calls:
            data["gold_calls"] = list(self.gold_calls)
        if self.reference:
            data["reference"] = [list(turn) for turn in self.reference]
        if self.final_answer is not None:
            data["final_answer"] = self.final_answer
        if self.split is not None:
            data["split"] = self.split
        if self.meta:
            data["meta"] = dict(self.meta)
        return data


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, bool):
        raise TaskFileError(f"{where}: {key!r} must be a string or a list of strings")
    if isinstance(value, str | int | float):
        return (str(value),)
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(str(v) for v in value)
    raise TaskFileError(f"{where}: {key!r} must be a string or a list of strings")


def _call(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise TaskFileError(
            f"{where}: a reference call must be {{'name': str, 'arguments': {{...}}}}"
        )
    arguments = value.get("arguments", {})
    if not isinstance(arguments, dict):
        raise TaskFileError(f"{where}: the arguments of a reference call must be an object")
    return {"name": normalize_tool_name(value["name"]), "arguments": arguments}


def task_from_dict(
    data: Any,
    *,
    builtin_tools: dict[str, dict[str, Any]],
    default_tools: Sequence[str] = (),
    where: str = "task",
) -> ToolTask:
    """Build a :class:`ToolTask` from its JSON form; raises :class:`TaskFileError` saying what is wrong.

    ``builtin_tools`` maps names to schemas the environment can run; a task
    naming a tool refers to one of them, a task giving a schema brings its own.
    """
    if not isinstance(data, dict):
        raise TaskFileError(f"{where}: a task must be a JSON object")
    task_id, question = data.get("id", data.get("_id")), data.get("question")
    if not isinstance(task_id, str | int) or isinstance(task_id, bool) or str(task_id) == "":
        raise TaskFileError(f"{where}: 'id' must be a non-empty string")
    where = f"{where} (id {task_id!r})"
    if not isinstance(question, str) or not question.strip():
        raise TaskFileError(f"{where}: 'question' must be a non-empty string")
    tools = []
    for index, item in enumerate(data.get("tools", list(default_tools))):
        if isinstance(item, str):
            if item not in builtin_tools:
                known = ", ".join(sorted(builtin_tools)) or "none"
                raise TaskFileError(f"{where}: unknown tool {item!r} (built-in tools: {known})")
            tools.append(builtin_tools[item])
        else:
            try:
                tools.append(normalize_tool_schema(item, where=f"{where} tools[{index}]"))
            except ValueError as error:
                raise TaskFileError(str(error)) from None
    names = [schema_name(schema) for schema in tools]
    if len(set(names)) != len(names):
        raise TaskFileError(f"{where}: tool names repeat: {names}")
    answer = _strings(
        data.get("answer", data.get("answers", data.get("golden_answers"))), where, "answer"
    )
    gold_calls = data.get("gold_calls", [])
    if not isinstance(gold_calls, list) or not all(
        isinstance(g, dict) and len(g) == 1 for g in gold_calls
    ):
        raise TaskFileError(
            f"{where}: 'gold_calls' must be a list of {{name: {{param: [values]}}}}"
        )
    gold_calls = [{normalize_tool_name(k): v for k, v in g.items()} for g in gold_calls]
    for gold in gold_calls:
        ((name, params),) = gold.items()
        if not isinstance(params, dict):
            raise TaskFileError(f"{where}: the parameters of gold call {name!r} must be an object")
    reference = data.get("reference", [])
    if not isinstance(reference, list):
        raise TaskFileError(f"{where}: 'reference' must be a list of turns (lists of calls)")
    turns = []
    for turn_index, turn in enumerate(reference):
        turn = turn if isinstance(turn, list) else [turn]
        turns.append(tuple(_call(c, f"{where} reference[{turn_index}]") for c in turn))
    final_answer = data.get("final_answer")
    if final_answer is not None and not isinstance(final_answer, str):
        raise TaskFileError(f"{where}: 'final_answer' must be a string")
    split = data.get("split")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise TaskFileError(f"{where}: 'meta' must be an object")
    return ToolTask(
        id=str(task_id),
        question=question.strip(),
        tools=tuple(tools),
        answer=answer,
        gold_calls=tuple(gold_calls),
        reference=tuple(turns),
        final_answer=final_answer,
        split=str(split) if split is not None else None,
        meta=dict(meta),
    )


def read_records(path: str | os.PathLike[str]) -> list[Any]:
    """JSON records of a ``.jsonl`` file (one per line) or a ``.json`` file (an array, or one object).

    A ``.json`` object with a ``"tasks"`` or ``"documents"`` list (the shipped formats) yields that list.
    """
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"no such file: {path}")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if path.suffix != ".jsonl" and stripped[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None  # BFCL ships JSON lines under a .json name: read it line by line below
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            for key in ("tasks", "documents"):
                if isinstance(data.get(key), list):
                    return list(data[key])
            return [data]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as error:
            raise TaskFileError(f"{path} line {number}: not valid JSON ({error})") from None
    return records


def load_task_file(
    path: str | os.PathLike[str],
    *,
    builtin_tools: dict[str, dict[str, Any]],
    default_tools: Sequence[str] = (),
) -> list[ToolTask]:
    """Every task of a file in the mentorgym JSONL schema (ids must be unique)."""
    tasks = []
    for index, record in enumerate(read_records(path)):
        where = f"{path} record {index + 1}"
        tasks.append(
            task_from_dict(
                record, builtin_tools=builtin_tools, default_tools=default_tools, where=where
            )
        )
    _check_unique(tasks, str(path))
    return tasks


def load_shipped_tasks(
    family: str,
    split: str,
    *,
    builtin_tools: dict[str, dict[str, Any]],
    default_tools: Sequence[str] = (),
) -> list[ToolTask]:
    """The shipped tasks of ``family`` (``toolmath``, ``functioncall``, ``searchqa``) for ``split``."""
    path = DATA_DIR / f"{family}_{split}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != TASK_FILE_FORMAT:
        raise TaskFileError(f"{path} is not a {TASK_FILE_FORMAT} file")
    return [
        task_from_dict(
            record, builtin_tools=builtin_tools, default_tools=default_tools, where=str(path)
        )
        for record in data["tasks"]
    ]


def _check_unique(tasks: Iterable[ToolTask], source: str) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise TaskFileError(f"{source}: the task id {task.id!r} appears twice")
        seen.add(task.id)


# -- BFCL -----------------------------------------------------------------------------


def _bfcl_question(question: Any, where: str) -> str:
    if isinstance(question, str):
        return question
    # v3 and later: a list of turns, each a list of {"role", "content"} messages; the first turn asks.
    if isinstance(question, list) and question:
        turn = question[0] if isinstance(question[0], list) else question
        parts = [
            m.get("content", "")
            for m in turn
            if isinstance(m, dict) and m.get("role") in ("user", "system")
        ]
        text = "\n".join(p for p in parts if isinstance(p, str) and p.strip())
        if text:
            return text
    raise TaskFileError(f"{where}: cannot read the question")


def _bfcl_shape_category(truth: list[Any], functions: list[Any]) -> str:
    """The category of an entry whose id names none, from its shape."""
    if not truth:
        return "irrelevance"
    if len(truth) > 1:
        return "parallel_multiple" if len(functions) > 1 else "parallel"
    return "multiple" if len(functions) > 1 else "simple"


def load_bfcl(
    questions: str | os.PathLike[str], answers: str | os.PathLike[str] | None = None
) -> list[ToolTask]:
    """Tasks from a BFCL question file and its ``possible_answer`` file (AST categories).

    Supported: the Python-syntax AST categories (simple, multiple, parallel,
    parallel_multiple and their live_ versions), irrelevance (no call is the
    right answer) and live_relevance (any call is). Multi-turn, agentic, Java
    and JavaScript categories need BFCL's own backends or type converters and
    are refused with a message. Each task keeps the entry as BFCL ships it in
    ``meta`` (``bfcl_category``, ``bfcl_functions``, ``bfcl_ground_truth``):
    FunctionCall-v0 judges such tasks exactly as BFCL's AST checker does.
    """
    answer_by_id: dict[str, Any] = {}
    if answers is not None:
        for index, record in enumerate(read_records(answers)):
            if not isinstance(record, dict) or "id" not in record or "ground_truth" not in record:
                raise TaskFileError(
                    f"{answers} record {index + 1}: expected {{'id', 'ground_truth'}}"
                )
            answer_by_id[str(record["id"])] = record["ground_truth"]
    tasks = []
    for index, record in enumerate(read_records(questions)):
        where = f"{questions} record {index + 1}"
        if not isinstance(record, dict) or "id" not in record or "function" not in record:
            raise TaskFileError(
                f"{where}: expected a BFCL entry with 'id', 'question' and 'function'"
            )
        task_id = str(record["id"])
        if "involved_classes" in record or task_id.startswith("multi_turn"):
            raise TaskFileError(
                f"{where}: BFCL multi-turn and agentic entries need BFCL's executable backends"
            )
        category = bfcl_category(task_id)
        if category is not None and ("java" in category or category == "format_sensitivity"):
            raise TaskFileError(
                f"{where}: the BFCL category {category!r} is not supported (Python AST "
                f"categories: {', '.join(AST_CATEGORIES + RELEVANCE_CATEGORIES)})"
            )
        functions = (
            record["function"] if isinstance(record["function"], list) else [record["function"]]
        )
        try:
            tools = [normalize_tool_schema(f, where=where) for f in functions]
        except ValueError as error:
            raise TaskFileError(str(error)) from None
        truth = answer_by_id.get(task_id, record.get("ground_truth"))
        if truth is None:
            if "relevance" not in task_id:
                raise TaskFileError(
                    f"{where}: no ground truth for {task_id!r} (pass its possible_answer file)"
                )
            truth = []
        if isinstance(truth, dict):
            truth = [truth]
        if not isinstance(truth, list) or not all(
            isinstance(t, dict) and len(t) == 1 for t in truth
        ):
            raise TaskFileError(
                f"{where}: ground truth must be a list of {{name: {{param: [values]}}}}"
            )
        gold = [{normalize_tool_name(k): v for k, v in t.items()} for t in truth]
        names = {schema_name(s) for s in tools}
        for entry in gold:
            ((name, _),) = entry.items()
            if name not in names:
                raise TaskFileError(
                    f"{where}: the ground truth calls {name!r}, which is not among its functions"
                )
        if category not in AST_CATEGORIES + RELEVANCE_CATEGORIES:
            category = _bfcl_shape_category(truth, functions)
        tasks.append(
            ToolTask(
                id=task_id,
                question=_bfcl_question(record.get("question"), where),
                tools=tuple(tools),
                gold_calls=tuple(gold),
                final_answer="Done.",
                meta={
                    "source": "bfcl",
                    "executable": False,
                    "bfcl_category": category,
                    "bfcl_functions": copy.deepcopy(functions),
                    "bfcl_ground_truth": copy.deepcopy(truth),
                },
            )
        )
    _check_unique(tasks, str(questions))
    return tasks


# -- HotpotQA / 2WikiMultihopQA / FlashRAG-style QA ---------------------------------------


def _document(record: Any, where: str) -> dict[str, str]:
    if not isinstance(record, dict):
        raise TaskFileError(f"{where}: a document must be a JSON object")
    title, text = record.get("title"), record.get("text")
    if text is None and isinstance(record.get("contents"), str):
        # FlashRAG's wiki corpus: '"Title"\nbody'
        head, _, body = record["contents"].partition("\n")
        title, text = (title or head.strip().strip('"')), body
    if not isinstance(text, str) or not text.strip():
        raise TaskFileError(f"{where}: a document needs a non-empty 'text' (or 'contents')")
    doc_id = record.get("id", record.get("_id", title))
    return {"id": str(doc_id), "title": str(title or ""), "text": text.strip()}


def load_corpus(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Documents ``{"id", "title", "text"}`` from a JSONL/JSON corpus (FlashRAG ``contents`` works too)."""
    documents = [_document(r, f"{path} record {i + 1}") for i, r in enumerate(read_records(path))]
    if not documents:
        raise TaskFileError(f"{path}: the corpus is empty")
    return documents


def load_hotpot(
    path: str | os.PathLike[str], *, search_tools: Sequence[dict[str, Any]]
) -> tuple[list[ToolTask], list[dict[str, str]]]:
    """Questions (and the documents of their contexts) from HotpotQA/2Wiki/FlashRAG-style records.

    A record has ``question``, an answer (``answer``, ``answers`` or
    ``golden_answers``) and an id (``id`` or ``_id``); optionally ``context``
    (``[[title, [sentences]]]``) and ``supporting_facts`` (``[[title, index]]``).
    Context documents are returned for the corpus; the expert searches each
    supporting title in turn. Records in the mentorgym schema load as they are.
    """
    tasks, documents, seen_titles = [], [], set()
    builtin = {schema_name(schema): schema for schema in search_tools}
    for index, record in enumerate(read_records(path)):
        where = f"{path} record {index + 1}"
        if not isinstance(record, dict):
            raise TaskFileError(f"{where}: a question must be a JSON object")
        context = record.get("context") or []
        if not isinstance(context, list):
            raise TaskFileError(f"{where}: 'context' must be a list of [title, sentences]")
        for item in context:
            if not (
                isinstance(item, list | tuple)
                and len(item) == 2
                and isinstance(item[1], list | str)
            ):
                raise TaskFileError(f"{where}: each context item must be [title, [sentences]]")
            title, sentences = str(item[0]), item[1]
            if title not in seen_titles:
                seen_titles.add(title)
                text = (
                    sentences
                    if isinstance(sentences, str)
                    else " ".join(str(s).strip() for s in sentences)
                )
                documents.append({"id": title, "title": title, "text": text.strip()})
        supporting = []
        for fact in record.get("supporting_facts") or []:
            title = fact[0] if isinstance(fact, list | tuple) and fact else fact
            if isinstance(title, str) and title not in supporting:
                supporting.append(title)
        reference = record.get("reference")
        if reference is None:
            reference = [
                [{"name": "search", "arguments": {"query": title}}] for title in supporting
            ]
        data = {
            "id": record.get("id", record.get("_id")),
            "question": record.get("question"),
            "answer": record.get("answer", record.get("answers", record.get("golden_answers"))),
            "reference": reference,
            "final_answer": record.get("final_answer"),
            "split": record.get("split"),
            "meta": {k: record[k] for k in ("type", "level") if k in record},
        }
        task = task_from_dict(data, builtin_tools=builtin, default_tools=list(builtin), where=where)
        if not task.answer:
            raise TaskFileError(f"{where}: the question has no answer")
        tasks.append(task)
    _check_unique(tasks, str(path))
    return tasks, documents


# -- writing ------------------------------------------------------------------------------


def write_jsonl_atomic(path: str | os.PathLike[str], records: Iterable[Any]) -> Path:
    """Write one JSON record per line to ``path`` atomically (see ``envs.fileio``)."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return atomic_write_text(path, text)
