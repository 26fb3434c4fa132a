"""SearchQA-v0: multi-hop question answering with a BM25 ``search`` tool over a local corpus.

The shipped corpus describes a generated fictional world (people, cities,
regions, universities, companies, novels), so no answer can be recalled from
pre-training: every question needs two or three retrievals, each using a name
found in the previous result (bridge questions), or two lookups compared
(comparison questions). The expert searches the reference queries, one hop per
tool turn (both sides of a comparison in one turn), then answers.

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

import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.tooluse.calls import format_tool_call
from envs.tooluse.checkers import qa_scores
from envs.tooluse.env import ToolEnv, Verdict
from envs.tooluse.sandbox import Toolset
from envs.tooluse.schema import normalize_tool_schema
from envs.tooluse.tasks import (
    DATA_DIR,
    TaskFileError,
    ToolTask,
    load_corpus,
    load_hotpot,
    load_shipped_tasks,
    write_jsonl_atomic,
)

__all__ = ["SEARCH_TOOL", "SearchQAEnv", "generate_world", "make_search_tools"]

SHIPPED_CORPUS = DATA_DIR / "searchqa_corpus.json"
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


# -- the search tool (runs in the sandbox) --------------------------------------------------


class _Index:
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


def _search_function(index: _Index) -> Callable[..., str]:
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
    return {"search": _search_function(_Index(load_corpus(corpus_path)))}


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
            "envs.tooluse.searchqa:make_search_tools", {"corpus_path": corpus_path}
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


# -- generation of the world, the corpus and the questions ------------------------------------

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kl", "l", "m", "n", "p", "r", "s", "st",
           "t", "tr", "v", "z", "sh", "th", "w", "c", "j")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ia", "ou", "ei")
_CODAS = ("", "", "n", "r", "l", "s", "th", "nd", "rk", "m", "v", "x")
_CITY_ENDINGS = (
    "burg",
    "holm",
    "ford",
    "wick",
    "stad",
    "mouth",
    "vale",
    "port",
    "field",
    "haven",
    "by",
    "minster",
)
_REGION_ENDINGS = ("land", "mark", "ia", "shire", "ova", "ara")
_INDUSTRIES = ("textile", "shipping", "software", "brewing", "mining", "publishing", "glassware",
               "railway", "pharmaceutical", "furniture")  # fmt: skip
_COMPANY_WORDS = {"textile": "Textiles", "shipping": "Shipping", "software": "Systems", "brewing": "Breweries",
                  "mining": "Mining", "publishing": "Press", "glassware": "Glassworks", "railway": "Rail",
                  "pharmaceutical": "Pharma", "furniture": "Furniture"}  # fmt: skip
_PROFESSIONS = ("painter", "chemist", "architect", "violinist", "engineer", "historian", "poet", "surgeon",
                "economist", "photographer", "astronomer", "sculptor")  # fmt: skip
_FIELDS = (
    "medicine",
    "law",
    "engineering",
    "music",
    "agriculture",
    "astronomy",
    "economics",
    "design",
)
_GENRES = ("historical", "detective", "science fiction", "romance", "adventure", "satirical")
_BOOK_NOUNS = ("Lantern", "Harbor", "Orchard", "Winter", "Compass", "Archive", "Bridge", "Garden",
               "Mirror", "Voyage", "Tower", "Harvest", "Letter", "Island", "Clock", "Meadow")  # fmt: skip


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def word(self, syllables: int) -> str:
        while True:
            text = "".join(
                self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + (self.rng.choice(_CODAS) if i == syllables - 1 else "")
                for i in range(syllables)
            )  # fmt: skip
            word = text.capitalize()
            if 4 <= len(word) <= 11 and word not in self.used:
                self.used.add(word)
                return word


def generate_world(seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The fictional world: countries, regions, cities, people, universities, companies, books."""
    rng = random.Random(f"searchqa|world|{seed}")
    names = _Names(rng)
    countries = [names.word(2) for _ in range(4)]
    regions = [{"name": names.word(2) + rng.choice(_REGION_ENDINGS), "country": rng.choice(countries),
                "industry": rng.choice(_INDUSTRIES), "towns": rng.randint(12, 140)} for _ in range(15)]  # fmt: skip
    rivers = [names.word(2) for _ in range(30)]
    cities = [{"name": names.word(2) + rng.choice(_CITY_ENDINGS), "region": rng.choice(regions)["name"],
               "founded": rng.randint(1100, 1890), "river": rng.choice(rivers),
               "population": rng.randint(8, 900) * 1000 + rng.randint(0, 999)} for _ in range(90)]  # fmt: skip
    universities = [{"name": f"{names.word(2)} {rng.choice(['University', 'Institute', 'College'])}",
                     "city": rng.choice(cities)["name"], "established": rng.randint(1450, 1990),
                     "field": rng.choice(_FIELDS)} for _ in range(30)]  # fmt: skip
    people = []
    for _ in range(300):
        people.append({
            "name": f"{names.word(2)} {names.word(rng.choice([2, 3]))}", "born": rng.randint(1850, 1995),
            "city": rng.choice(cities)["name"], "profession": rng.choice(_PROFESSIONS),
            "university": rng.choice(universities)["name"], "pronoun": rng.choice(["He", "She"]),
        })  # fmt: skip
    companies = []
    for _ in range(90):
        founder = rng.choice(people)
        industry = rng.choice(_INDUSTRIES)
        companies.append({
            "name": f"{names.word(2)} {_COMPANY_WORDS[industry]}", "industry": industry,
            "founder": founder["name"], "founded": min(2023, founder["born"] + rng.randint(22, 60)),
            "city": rng.choice(cities)["name"],
        })  # fmt: skip
    books = []
    for _ in range(150):
        author = rng.choice(people)
        books.append({
            "title": f"The {names.word(2)} {rng.choice(_BOOK_NOUNS)}", "author": author["name"],
            "published": min(2024, author["born"] + rng.randint(20, 70)), "genre": rng.choice(_GENRES),
        })  # fmt: skip
    return {"countries": [{"name": c} for c in countries], "regions": regions, "cities": cities,
            "universities": universities, "people": people, "companies": companies, "books": books}  # fmt: skip


def world_corpus(world: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    """One encyclopedia article per entity."""
    region_of = {r["name"]: r for r in world["regions"]}
    documents = []
    for r in world["regions"]:
        documents.append((r["name"], f"{r['name']} is a region of {r['country']}. Its largest industry is "
                                     f"{r['industry']}, and it counts {r['towns']} towns."))  # fmt: skip
    for c in world["cities"]:
        country = region_of[c["region"]]["country"]
        documents.append((c["name"], f"{c['name']} is a city in the {c['region']} region of {country}. It was "
                                     f"founded in {c['founded']} on the banks of the {c['river']} River and has "
                                     f"about {c['population']:,} inhabitants."))  # fmt: skip
    for u in world["universities"]:
        documents.append((u["name"], f"{u['name']} is a university in {u['city']}, established in "
                                     f"{u['established']}. It is best known for its {u['field']} faculty."))  # fmt: skip
    for p in world["people"]:
        documents.append((p["name"], f"{p['name']} is a {p['profession']} born in {p['born']} in {p['city']}. "
                                     f"{p['pronoun']} studied at {p['university']}."))  # fmt: skip
    for co in world["companies"]:
        documents.append((co["name"], f"{co['name']} is a {co['industry']} company founded in {co['founded']} by "
                                      f"{co['founder']}. Its headquarters are in {co['city']}."))  # fmt: skip
    for b in world["books"]:
        documents.append((b["title"], f"{b['title']} is a {b['genre']} novel by {b['author']}, first published "
                                      f"in {b['published']}."))  # fmt: skip
    return [
        {"id": f"doc{i:04d}", "title": title, "text": text}
        for i, (title, text) in enumerate(documents)
    ]


def _split_of(index: int) -> str:
    slot = index % 20
    return "train" if slot < 14 else "dev" if slot < 17 else "test"


def _questions(
    world: dict[str, list[dict[str, Any]]], rng: random.Random, split: str
) -> list[dict[str, Any]]:
    """Every candidate question of ``split``: {question, answer, reference (turns of queries), type}."""
    city = {c["name"]: c for c in world["cities"]}
    person = {p["name"]: p for p in world["people"]}
    university = {u["name"]: u for u in world["universities"]}
    mine = {kind: [e for i, e in enumerate(world[kind]) if _split_of(i) == split]
            for kind in ("people", "companies", "books", "cities")}  # fmt: skip
    found = []

    def add(kind: str, question: str, answer: list[str], queries: list[list[str]]) -> None:
        found.append({"type": kind, "question": question, "answer": answer, "queries": queries})

    for p in mine["people"]:
        c = city[p["city"]]
        add(
            "bridge",
            f"In what year was the city where {p['name']} was born founded?",
            [str(c["founded"])],
            [[p["name"]], [c["name"]]],
        )
        add(
            "bridge",
            f"On which river lies the birthplace of {p['name']}?",
            [c["river"], f"{c['river']} River"],
            [[p["name"]], [c["name"]]],
        )
        u = university[p["university"]]
        add(
            "bridge",
            f"When was the university that {p['name']} attended established?",
            [str(u["established"])],
            [[p["name"]], [u["name"]]],
        )
    for co in mine["companies"]:
        c, founder = city[co["city"]], person[co["founder"]]
        add(
            "bridge",
            f"In which region is the headquarters city of {co['name']}?",
            [c["region"], f"{c['region']} region"],
            [[co["name"]], [c["name"]]],
        )
        add(
            "bridge",
            f"In what year was the founder of {co['name']} born?",
            [str(founder["born"])],
            [[co["name"]], [founder["name"]]],
        )
        birthplace = city[founder["city"]]
        add(
            "bridge3",
            f"Which river flows through the birthplace of the founder of {co['name']}?",
            [birthplace["river"], f"{birthplace['river']} River"],
            [[co["name"]], [founder["name"]], [birthplace["name"]]],
        )
    for b in mine["books"]:
        author = person[b["author"]]
        birthplace = city[author["city"]]
        add(
            "bridge",
            f"In which city was the author of {b['title']} born?",
            [birthplace["name"]],
            [[b["title"]], [author["name"]]],
        )
        add(
            "bridge3",
            f"In which region was the author of {b['title']} born?",
            [birthplace["region"], f"{birthplace['region']} region"],
            [[b["title"]], [author["name"]], [birthplace["name"]]],
        )
    people = list(mine["people"])
    rng.shuffle(people)
    for first, second in zip(people[::2], people[1::2]):
        if first["born"] != second["born"]:
            earlier = first if first["born"] < second["born"] else second
            add(
                "comparison",
                f"Who was born earlier, {first['name']} or {second['name']}?",
                [earlier["name"]],
                [[first["name"], second["name"]]],
            )
    cities = list(mine["cities"])
    rng.shuffle(cities)
    for first, second in zip(cities[::2], cities[1::2]):
        if first["founded"] != second["founded"]:
            older = first if first["founded"] < second["founded"] else second
            add(
                "comparison",
                f"Which city was founded first, {first['name']} or {second['name']}?",
                [older["name"]],
                [[first["name"], second["name"]]],
            )
    return found


def generate_tasks(split: str, count: int, *, seed: int = 0) -> list[ToolTask]:
    """``count`` questions of ``split`` over the world of ``seed``; each reference query is checked
    to retrieve its article in the top 3."""
    world = generate_world(seed)
    corpus = world_corpus(world)
    index = _Index(corpus)
    title_of = {d["title"]: i for i, d in enumerate(corpus)}
    rng = random.Random(f"searchqa|{split}|{seed}")
    candidates = _questions(world, rng, split)
    rng.shuffle(candidates)
    tasks = []
    for candidate in candidates:
        if len(tasks) == count:
            break
        turns = []
        for turn in candidate["queries"]:
            calls = []
            for query in turn:
                hits = [position for position, _ in index.search(query, 3)]
                if title_of[query] not in hits:
                    break
                calls.append({"name": "search", "arguments": {"query": query}})
            if len(calls) != len(turn):
                break
            turns.append(tuple(calls))
        if len(turns) != len(candidate["queries"]):
            continue  # a hop BM25 cannot find in the top 3: not a fair question
        tasks.append(
            ToolTask(
                id=f"{split}/{candidate['type']}/{len(tasks):04d}",
                question=candidate["question"],
                tools=(SEARCH_TOOL,),
                answer=tuple(candidate["answer"]),
                reference=tuple(turns),
                meta={"type": candidate["type"], "hops": sum(len(t) for t in turns)},
            )
        )
    if len(tasks) < count:
        raise ValueError(
            f"only {len(tasks)} questions could be made for {split!r}; asked for {count}"
        )
    return tasks


def corpus_file_data(seed: int = 0) -> dict[str, Any]:
    """The shipped corpus file's contents (the world of ``seed``)."""
    return {
        "format": "mentorgym-corpus",
        "version": 1,
        "seed": seed,
        "documents": world_corpus(generate_world(seed)),
    }
