"""SearchQA task generator: a fictional world, its encyclopedia corpus and multi-hop questions.

The world (people, cities, regions, universities, companies, novels) is
generated, so no answer can be recalled from pre-training: every question
needs two or three retrievals, each using a name found in the previous result
(bridge questions), or two lookups compared (comparison questions). Each
reference query is checked to retrieve its article in the top 3. **Splits are
disjoint in the entity each question starts from**; the corpus is shared.
"""

from __future__ import annotations

import random
from typing import Any

from envs.tooluse.searchtool import SEARCH_TOOL, SearchIndex
from envs.tooluse.tasks import ToolTask

__all__ = ["corpus_file_data", "generate_tasks", "generate_world", "world_corpus"]

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
    index = SearchIndex(corpus)
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
