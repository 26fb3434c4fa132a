"""Title nouns: the lexicon rule (default) and spaCy's tagger (``nouns="spacy"``)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.webshop import nouns as nouns_module
from envs.webshop.nouns import NounsUnavailable, SpacyNouns, nouns_function
from envs.webshop.reward import type_reward

spacy = pytest.importorskip("spacy")


def tagging_pipeline(noun_words: set[str], proper: set[str] = frozenset()):
    """A real spaCy pipeline whose attribute ruler tags the given words NOUN / PROPN."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    ruler.add([[{"LOWER": {"IN": sorted(noun_words)}}]], {"POS": "NOUN"})
    if proper:
        ruler.add([[{"LOWER": {"IN": sorted(proper)}}]], {"POS": "PROPN"})
    return nlp


def test_spacy_nouns_keep_noun_and_propn_tokens_lower_cased_in_order() -> None:
    tagger = SpacyNouns(tagging_pipeline({"shoes", "running"}, {"acme"}))
    assert tagger("Acme Running Shoes for Men, Size 10") == ("acme", "running", "shoes")
    assert tagger("Blue and Green") == ()


class _Item:
    def __init__(self, title: str, nouns: tuple[str, ...]) -> None:
        self.title = self.name = title
        self.nouns = nouns
        self.query = "q"
        self.product_category = "A › B"


def test_type_reward_uses_the_tagger_when_given_one() -> None:
    product = _Item("Acme Running Shoes", ("acme", "running", "shoes"))
    goal = _Item("Zenith Running Shoes", ("zenith", "running", "shoes"))
    assert type_reward(product, goal).title_score == pytest.approx(2 / 3)
    tagger = SpacyNouns(tagging_pipeline({"shoes"}))
    assert type_reward(product, goal, tagger).title_score == 1.0  # only "shoes" is a noun
    assert type_reward(product, goal, SpacyNouns(tagging_pipeline(set()))).title_score == 0.2


def test_nouns_mode_is_checked() -> None:
    assert nouns_function("lexicon") is None
    with pytest.raises(ValueError, match="unknown nouns mode 'nltk'.*'lexicon', 'spacy'"):
        gym.make("WebShop-v0", nouns="nltk")


def test_spacy_without_its_model_is_a_clear_error(monkeypatch) -> None:
    def missing(name: str):
        raise OSError(f"[E050] Can't find model '{name}'.")

    monkeypatch.setattr(spacy, "load", missing)
    monkeypatch.setattr(nouns_module, "_SHARED", {})
    with pytest.raises(NounsUnavailable, match="model en_core_web_sm, which is not installed"):
        gym.make("WebShop-v0", nouns="spacy")


def test_webshop_with_spacy_nouns_scores_the_type_with_the_tagger(monkeypatch) -> None:
    # Every word a noun: the goal's own product still has title_score 1, and the
    # reward components show the tagger's title score.
    pipeline = spacy.blank("en")
    ruler = pipeline.add_pipe("attribute_ruler")
    ruler.add([[{"IS_ALPHA": True}]], {"POS": "NOUN"})
    monkeypatch.setattr(nouns_module, "_SHARED", {"spacy": SpacyNouns(pipeline)})
    env = gym.make("WebShop-v0", split="test", expert=True, nouns="spacy")
    obs, info = env.reset(options={"task_id": env.unwrapped.task_ids[0]})
    for _ in range(15):
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        if terminated:
            break
    assert info["won"] and info["reward_components"]["title_score"] == 1.0


def test_spacy_with_a_pipeline_folder(tmp_path, monkeypatch) -> None:
    tagging_pipeline({"shoes"}).to_disk(tmp_path / "pipeline")
    monkeypatch.setattr(nouns_module, "_SHARED", {})
    env = gym.make("WebShop-v0", nouns=f"spacy:{tmp_path / 'pipeline'}")
    assert env.unwrapped._nouns_of("Acme Running Shoes") == ("shoes",)
    with pytest.raises(ValueError, match="unknown nouns mode 'spacy:'"):
        gym.make("WebShop-v0", nouns="spacy:")
