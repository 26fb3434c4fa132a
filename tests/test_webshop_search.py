"""WebShop search: Lucene's analysis, norms, BM25 and tie order; the exact Lucene backend."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.webshop import lucene
from envs.webshop.analysis import STOP_WORDS, analyze, porter_stem, tokenize
from envs.webshop.catalogue import get_catalogue
from envs.webshop.search import ProductSearch, byte_to_length, length_to_byte

DATA = Path(__file__).resolve().parent / "data"


# -- analysis ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("face moisturizer, 3.4 fl oz", ["face", "moistur", "3.4", "fl", "oz"]),
        ("women's t-shirt", ["women", "t", "shirt"]),
        ("Women’s SHOES", ["women", "shoe"]),  # typographic apostrophe, upper case
        ("1,000 count; 12x16 inch", ["1,000", "count", "12x16", "inch"]),
        ("e.g. u.s.a", ["e.g", "u.s.a"]),
        ("it is the best of them", ["best", "them"]),  # Lucene's 33 stop words only
        ("Gillette® Fusion™", ["gillett", "®", "fusion", "™"]),  # emoji are tokens
        ("½ cup², __init__", ["cup", "__init__"]),  # ½ and ² separate words
        ("İSTANBUL ΣΟΦΙΑΣ", ["istanbul", "σοφιασ"]),  # per-character lower case
        ("", []),
    ],
)
def test_analyze_matches_lucenes_english_analyzer(text: str, terms: list[str]) -> None:
    assert analyze(text) == terms


def test_tokenize_keeps_case_and_splits_very_long_words() -> None:
    assert tokenize("Don't 3.4oz") == ["Don't", "3.4oz"]
    assert [len(t) for t in tokenize("a" * 600)] == [255, 255, 90]


def test_stop_words_are_lucenes() -> None:
    assert len(STOP_WORDS) == 33 and {"a", "such", "will", "with"} <= STOP_WORDS
    assert not {"i", "me", "my", "you", "from"} & STOP_WORDS


def test_porter_stems_are_lucenes() -> None:
    # Lucene's stems (Anserini 0.14.3's analyzer, stop words off), measured on these words.
    expected = json.loads((DATA / "lucene_porter_stems.json").read_text())
    assert {word: porter_stem(word) for word in expected} == expected


# -- norms -----------------------------------------------------------------------------


def test_length_norms_are_lucenes_one_byte_code() -> None:
    assert [length_to_byte(n) for n in range(42)] == list(range(41)) + [40]
    assert byte_to_length(length_to_byte(100)) == 96
    assert byte_to_length(length_to_byte(1000)) == 984
    assert length_to_byte(2**31 - 1) == 255
    codes = [length_to_byte(n) for n in range(5000)]
    assert codes == sorted(codes)
    assert all(byte_to_length(length_to_byte(n)) <= n for n in range(5000))


def test_lengths_that_share_a_norm_tie_and_ties_go_to_the_smaller_id() -> None:
    # 40 and 41 terms share one norm byte, so the scores tie exactly; the tie is
    # broken by ascending id, whatever the catalogue order.
    filler = " ".join(f"w{i}" for i in range(60))
    docs = ["apple " + " ".join(filler.split()[:40]), "apple " + " ".join(filler.split()[:39])]
    index = ProductSearch(docs, ["B2", "B1"])
    scores = index.scores("apple")
    assert scores[0] == scores[1]
    assert index.search("apple") == (1, 0)
    # 39 and 40 terms do not share one: the shorter document wins.
    docs = ["apple " + " ".join(filler.split()[:38]), "apple " + " ".join(filler.split()[:39])]
    assert ProductSearch(docs, ["B1", "B2"]).search("apple") == (0, 1)


# -- ranking ---------------------------------------------------------------------------


def test_rankings_equal_real_lucenes_on_the_shipped_catalogue() -> None:
    # Lucene's top 50 for queries where the former bm25s search ranked page 1 otherwise.
    recorded = json.loads((DATA / "webshop_lucene_rankings.json").read_text())["rankings"]
    catalogue = get_catalogue()
    for query, asins in recorded.items():
        assert [p.asin for p in catalogue.search(query)] == asins, query


def test_repeated_query_words_weigh_more_and_unknown_words_match_nothing() -> None:
    index = ProductSearch(["red shoe", "blue shoe blue", "green hat"], ["A", "B", "C"])
    assert index.search("red blue") == (1, 0)
    assert index.search("red red blue") == (0, 1)
    assert index.search("zebra") == () and index.search("the of") == ()
    assert index.search("shoe", top_k=1) == (0,) and index.search("shoe", top_k=0) == ()


def test_ids_must_match_documents() -> None:
    with pytest.raises(ValueError, match="2 documents but 1 ids"):
        ProductSearch(["a", "b"], ["A"])


# -- backends ---------------------------------------------------------------------------


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown search_backend 'solr'.*'python', 'lucene'"):
        gym.make("WebShop-v0", search_backend="solr")


def test_lucene_backend_without_pyserini_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(lucene, "find_spec", lambda name: None)
    with pytest.raises(lucene.LuceneUnavailable, match=r"needs pyserini.*mentorgym\[lucene\]"):
        gym.make("WebShop-v0", search_backend="lucene")


def test_lucene_backend_without_java_says_so(monkeypatch) -> None:
    monkeypatch.setattr(lucene, "find_spec", lambda name: object())
    monkeypatch.setattr(lucene.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert "needs Java" in lucene.lucene_problem()


@pytest.mark.java
@pytest.mark.slow
def test_lucene_backend_ranks_as_the_default(tmp_path, monkeypatch) -> None:
    pytest.importorskip("pyserini")
    if lucene.lucene_problem() is not None:
        pytest.skip(lucene.lucene_problem())
    monkeypatch.setenv(lucene.ENV_VAR, str(tmp_path))
    env = gym.make("WebShop-v0", split="test", search_backend="lucene", expert=True)
    catalogue = env.unwrapped.catalogue
    recorded = json.loads((DATA / "webshop_lucene_rankings.json").read_text())["rankings"]
    for query, asins in recorded.items():
        assert [p.asin for p in catalogue.search(query, backend="lucene")] == asins
    obs, info = env.reset(options={"task_id": env.unwrapped.task_ids[0]})
    for _ in range(15):
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        if terminated:
            break
    assert info["won"]
