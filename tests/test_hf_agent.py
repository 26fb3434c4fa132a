"""HFAgent: batched generation and scoring equal to one-at-a-time, records, ranking, episodes."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import random  # noqa: E402

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import agents  # noqa: E402
import envs  # noqa: E402
from agents.hf import HFAgent, SamplingParams  # noqa: E402
from agents.prompts import EpisodeState  # noqa: E402
from agents.tiny import build_tiny  # noqa: E402
from envs.evaluation import evaluate_panel, evaluate_panel_batched  # noqa: E402
from envs.panels import load_panel  # noqa: E402

gym.register_envs(envs)
TOLERANCE = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pair():
    return build_tiny("tiny", seed=0)


def random_prompts(n: int, seed: int = 0, low: int = 3, high: int = 40) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(5, 4000) for _ in range(rng.randrange(low, high))] for _ in range(n)]


def reference_logprobs(model, prompt: list[int], completion: list[int]) -> list[float]:
    """Log-probs from one unpadded forward pass: the ground truth padding must not change."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0].float()
    table = torch.log_softmax(logits, dim=-1)
    return [float(table[len(prompt) + j - 1, token]) for j, token in enumerate(completion)]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= TOLERANCE for x, y in zip(a, b))


def test_agents_package_exports_hf_agent() -> None:
    assert agents.HFAgent is HFAgent


def test_greedy_batched_generation_equals_one_at_a_time(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, temperature=0, max_new_tokens=12)
    prompts = random_prompts(5)
    batched = agent.generate(prompts)
    for prompt, generation in zip(prompts, batched):
        (alone,) = agent.generate([prompt])
        assert alone.token_ids == generation.token_ids
        assert close(alone.logprobs, generation.logprobs)
        assert generation.finish_reason in ("length", "stop")


def test_seeded_sampling_does_not_depend_on_the_batch(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer)
    prompts = random_prompts(4, seed=1)
    params = [
        SamplingParams(temperature=1.0, top_p=0.9, top_k=50, max_new_tokens=10, seed=i)
        for i in range(4)
    ]
    batched = agent.generate(prompts, params)
    for prompt, p, generation in zip(prompts, params, batched):
        assert agent.generate([prompt], p)[0].token_ids == generation.token_ids
    other_seed = agent.generate([prompts[0]], SamplingParams(max_new_tokens=10, seed=99))[0]
    assert other_seed.token_ids != batched[0].token_ids


def test_generation_logprobs_are_the_temperature_one_scores(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, temperature=0.5, top_p=0.8, max_new_tokens=8, seed=0)
    prompts = random_prompts(3, seed=2)
    generations = agent.generate(prompts)
    for prompt, generation in zip(prompts, generations):
        assert close(generation.logprobs, reference_logprobs(model, prompt, generation.token_ids))


def test_stop_strings_end_of_sequence_and_length(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, temperature=0, max_new_tokens=12)
    prompt = random_prompts(1, seed=3)[0]
    free = agent.generate([prompt])[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 12
    # A stop string that the greedy output contains ends the completion at that token.
    texts = [tokenizer.decode(free.token_ids[: k + 1]) for k in range(len(free.token_ids))]
    k = next(k for k in range(2, 12) if texts[k].strip() and texts[k] != texts[k - 1])
    stop = texts[k][len(texts[k - 1]) :][-2:] or texts[k][-1]
    first = next(j for j in range(12) if stop in texts[j])
    stopped = agent.generate(
        [prompt], SamplingParams(temperature=0, max_new_tokens=12, stop=(stop,))
    )[0]
    assert stopped.token_ids == free.token_ids[: first + 1]
    assert stopped.finish_reason == "stop" and stopped.stop_reason == stop
    # End of sequence: make the first greedy token an EOS token.
    agent.eos_token_ids = agent.eos_token_ids | {free.token_ids[0]}
    eos = agent.generate([prompt])[0]
    assert eos.token_ids == free.token_ids[:1] and eos.stop_reason == free.token_ids[0]


def test_scoring_is_invariant_to_batch_composition_and_padding(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, max_batch_tokens=120)  # forces several chunks
    prompts = random_prompts(7, seed=4, low=1, high=50)
    completions = random_prompts(7, seed=5, low=0, high=20)
    batched = agent.logprobs(prompts, completions)
    for prompt, completion, values in zip(prompts, completions, batched):
        assert close(values, reference_logprobs(model, prompt, completion))
        assert close(agent.logprobs([prompt], [completion])[0], values)
    shuffled = list(range(7))
    random.Random(0).shuffle(shuffled)
    again = agent.logprobs([prompts[i] for i in shuffled], [completions[i] for i in shuffled])
    for i, values in zip(shuffled, again):
        assert close(values, batched[i])
    big = HFAgent(model, tokenizer)  # everything in one padded batch
    for values, expected in zip(big.logprobs(prompts, completions), batched):
        assert close(values, expected)


def test_scoring_rejects_bad_input(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer)
    with pytest.raises(ValueError, match="differ in length"):
        agent.logprobs([[1, 2]], [[3], [4]])
    with pytest.raises(ValueError, match="empty"):
        agent.logprobs([[]], [[3]])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        agent.logprobs([[1, 2]], [[10**6]])
    with pytest.raises(ValueError, match="token ids"):
        agent.logprobs([["a"]], [[1]])
    with pytest.raises(ValueError, match="at least one token"):
        agent.generate([[]])
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="mode"):
        HFAgent(model, tokenizer, mode="beam")


def test_score_segments_is_the_public_scoring_entry_point(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer)
    prompt, completion = [5, 6, 7, 8], [9, 10, 11]
    ((values,),) = agent.score_segments([prompt + completion], [[(4, 3)]])
    assert close(values, reference_logprobs(model, prompt, completion))
    ((ranked,),) = agent.score_segments([prompt + completion], [[(4, 3)]], top_n=2)
    assert close([v for v, _, _ in ranked], values)
    for value, rank, top in ranked:
        assert rank >= 1 and len(top) == 2 and max(top.values()) >= value - TOLERANCE
    with pytest.raises(ValueError, match="segment"):
        agent.score_segments([[5, 6, 7]], [[(0, 2)]])  # the first token has no context
    with pytest.raises(ValueError, match="segment"):
        agent.score_segments([[5, 6, 7]], [[(2, 5)]])
    with pytest.raises(ValueError, match="top_n"):
        agent.score_segments([[5, 6, 7]], [[(1, 2)]], top_n=-1)


@dataclasses.dataclass
class PastKeyValuesOutput:
    logits: torch.Tensor
    past_key_values: object = None


class PastKeyValuesModel(torch.nn.Module):
    """A model whose forward speaks the older API: ``past_key_values`` in and out."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config, self.generation_config = inner.config, inner.generation_config
        self.caches_passed = 0

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.inner.get_input_embeddings()

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=None,
        logits_to_keep=0,
    ) -> PastKeyValuesOutput:
        self.caches_passed += past_key_values is not None
        output = self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        return PastKeyValuesOutput(output.logits, output.cache if use_cache else None)


def test_model_calls_use_the_forwards_own_cache_argument(pair, caplog) -> None:
    """The current API (``cache``) where the model has it, with no deprecation warning;
    ``past_key_values`` for a model that names its forward's argument so; same results."""
    model, tokenizer = pair
    if "cache" not in inspect.signature(model.forward).parameters:
        pytest.skip("this transformers version names the cache past_key_values only")
    current = HFAgent(model, tokenizer, temperature=0, max_new_tokens=6)
    assert current.lm.cache_argument == "cache"
    prompts = random_prompts(3, seed=7)
    completions = random_prompts(3, seed=8, low=1, high=6)
    actions = [["go north", "look"], ["take key"], ["open door", "inventory"]]
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error", FutureWarning)
        logging.getLogger("transformers").addHandler(caplog.handler)
        try:
            expected = (
                current.generate(prompts),
                current.logprobs(prompts, completions),
                current.rank_actions(prompts, actions),
            )
        finally:
            logging.getLogger("transformers").removeHandler(caplog.handler)
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]
    older = PastKeyValuesModel(model)
    agent = HFAgent(older, tokenizer, temperature=0, max_new_tokens=6)
    assert agent.lm.cache_argument == "past_key_values"
    generated = agent.generate(prompts)
    assert older.caches_passed > 0
    for got, want in zip(generated, expected[0]):
        assert got.token_ids == want.token_ids and close(got.logprobs, want.logprobs)
    for got, want in zip(agent.logprobs(prompts, completions), expected[1]):
        assert close(got, want)
    for got, want in zip(agent.rank_actions(prompts, actions), expected[2]):
        assert [ids for _, ids, _ in got] == [ids for _, ids, _ in want]
        assert close([score for score, _, _ in got], [score for score, _, _ in want])


class CountingRoom:
    """A tiny text env with the contract's info keys (fast, deterministic)."""

    def __init__(self, task_id: str) -> None:
        self.task_id, self.turn = task_id, 0

    def info(self) -> dict:
        return {
            "task": f"count to three in {self.task_id}",
            "task_id": self.task_id,
            "turn": self.turn,
            "admissible_actions": ["say one", "say two", "say three"],
            "score": 0.0,
            "won": False,
            "invalid_action": False,
        }

    def reset(self) -> tuple[str, dict]:
        self.turn = 0
        return f"You are in room {self.task_id}.", self.info()

    def step(self, action: str) -> tuple[str, dict]:
        self.turn += 1
        return f"You said: {action}. The room echoes.", self.info()


def test_act_batch_records_turns_and_keeps_each_episode_history(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, max_new_tokens=6, seed=0, actor="teacher")
    rooms = [CountingRoom(name) for name in ("a", "b", "c")]
    pairs = [room.reset() for room in rooms]
    actions = agent.act_batch([o for o, _ in pairs], [i for _, i in pairs])
    assert len(actions) == 3 and len(agent.last_turns) == 3
    for turn, action in zip(agent.last_turns, actions):
        assert turn.action == action and turn.actor == "teacher"
        assert tokenizer.decode(turn.prompt_ids) == turn.prompt
        assert "already taken 0 step(s)" in turn.prompt
        assert len(turn.completion_ids) == len(turn.logprobs) <= 6
        assert turn.completion == tokenizer.decode(turn.completion_ids, skip_special_tokens=True)
        assert close(turn.logprobs, reference_logprobs(model, turn.prompt_ids, turn.completion_ids))
    stepped = [room.step(action) for room, action in zip(rooms, actions)]
    # Slots 2 and 0 only, in another order: each continues its own episode.
    agent.act_batch([stepped[2][0], stepped[0][0]], [stepped[2][1], stepped[0][1]], slots=[2, 0])
    for turn, room, action in zip(agent.last_turns, ("c", "a"), (actions[2], actions[0])):
        assert "already taken 1 step(s)" in turn.prompt and f"room {room}." in turn.prompt
        assert f"[Step 1] Action: {action}" in turn.prompt
    state = agent._slots.state(2)
    assert state is not None and state.turns_taken == 2 and state.steps[0].actor == "teacher"


def test_actions_do_not_depend_on_the_batch(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, max_new_tokens=6, seed=7)
    rooms = [CountingRoom(name) for name in ("a", "b", "c")]
    starts = [room.reset() for room in rooms]
    together = agent.act_batch([o for o, _ in starts], [i for _, i in starts])
    agent.restart()
    alone = [agent.act(o, i) for o, i in starts]
    assert alone == together


def test_rank_mode_scores_every_admissible_action(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, mode="rank", seed=0)
    assert agent.env_kwargs == {"admissible_actions": "full"}
    rooms = [CountingRoom("a"), CountingRoom("b")]
    starts = [room.reset() for room in rooms]
    actions = agent.act_batch([o for o, _ in starts], [i for _, i in starts])
    for turn, action, (_, info) in zip(agent.last_turns, actions, starts):
        assert action in info["admissible_actions"] and turn.finish_reason == "rank"
        scores = {
            candidate: sum(
                reference_logprobs(
                    model,
                    turn.prompt_ids,
                    tokenizer.encode(
                        f"<think></think>\n<action>{candidate}</action>", add_special_tokens=False
                    ),
                )
            )
            for candidate in info["admissible_actions"]
        }
        assert action == max(scores, key=scores.get)
        assert abs(sum(turn.logprobs) - scores[action]) < TOLERANCE
        # the completion a trained model writes (and the SFT data holds), empty thought included
        assert turn.completion == f"<think></think>\n<action>{action}</action>"
    ranked = agent.rank_actions([agent.last_turns[0].prompt_ids], [["say one", "say two"]])[0]
    assert [round(score, 3) for score, _, _ in ranked] == [
        round(sum(values), 3) for _, _, values in ranked
    ]


def test_rank_mode_scores_the_completion_format_of_the_family(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, mode="rank")
    call = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    text, ids = agent.ranked_completion(call, "tool")
    # a tool turn is the bare call, ended by the chat's end-of-turn token, as in SFT data
    assert text == call and ids == agent.encode(call) + [tokenizer.eos_token_id]
    assert tokenizer.convert_ids_to_tokens(ids[-1]) == "<|im_end|>"
    text, ids = agent.ranked_completion("go north", "alfworld")
    assert text == "<think></think>\n<action>go north</action>" and ids == agent.encode(text)
    custom = HFAgent(model, tokenizer, mode="rank", rank_prefix="Action: ", rank_suffix="\n")
    assert custom.ranked_completion("go north", "tool")[0] == "Action: go north\n"


def test_rank_mode_plays_tool_tasks_by_their_admissible_calls(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, mode="rank")
    env = gym.make("ToolMath-v0", levels=[2], **agent.env_kwargs)
    observation, info = env.reset(seed=0)
    action = agent.act(observation, info)
    turn = agent.last_turn
    assert action in info["admissible_actions"] and turn.finish_reason == "rank"
    assert turn.completion_ids[-1] == tokenizer.eos_token_id
    scores = agent.rank_actions([turn.prompt_ids], [info["admissible_actions"]], ["tool"])[0]
    assert turn.extra["score"] == pytest.approx(max(score for score, _, _ in scores))
    env.close()


def test_chat_episode_prompts_extend_each_other_and_trajectory_scoring_matches(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, max_new_tokens=8, seed=0, history="chat")
    room = CountingRoom("t")
    observation, info = room.reset()
    prompts, completions = [], []
    for _ in range(4):
        agent.act(observation, info)
        turn = agent.last_turn
        prompts.append(turn.prompt_ids)
        completions.append(turn.completion_ids)
        observation, info = room.step(turn.action)
    for earlier, completion, later in zip(prompts, completions, prompts[1:]):
        assert later[: len(earlier) + len(completion)] == earlier + completion
    per_turn = agent.logprobs(prompts, completions)
    whole = agent.logprobs_trajectory(prompts, completions)
    for a, b in zip(per_turn, whole):
        assert close(a, b)
    # A trajectory whose prompts do not extend each other (window layout) still scores right.
    window = HFAgent(model, tokenizer, max_new_tokens=8, seed=0)
    room = CountingRoom("w")
    observation, info = room.reset()
    w_prompts, w_completions = [], []
    for _ in range(3):
        window.act(observation, info)
        w_prompts.append(window.last_turn.prompt_ids)
        w_completions.append(window.last_turn.completion_ids)
        observation, info = room.step(window.last_turn.action)
    mixed = window.logprobs_trajectories([prompts, w_prompts], [completions, w_completions])
    for got, expected in zip(
        mixed[0] + mixed[1], per_turn + window.logprobs(w_prompts, w_completions)
    ):
        assert close(got, expected)


def test_episode_token_ids_rebuild_another_actors_turns(pair) -> None:
    model, tokenizer = pair
    student = HFAgent(model, tokenizer, max_new_tokens=6, seed=0, history="chat")
    room = CountingRoom("x")
    observation, info = room.reset()
    state = EpisodeState.start(observation, info)
    recorded = []
    for _ in range(3):
        (turn,) = student.take_turns([state])
        recorded.append(turn)
        state.record(turn.completion, turn.action)
        observation, info = room.step(turn.action)
        state.observe(observation, info)
    teacher = HFAgent(model, tokenizer, history="chat")
    prompts, completions = teacher.episode_token_ids(state)
    assert [tokenizer.decode(p) for p in prompts] == [t.prompt for t in recorded]
    for earlier, completion, later in zip(prompts, completions, prompts[1:]):
        assert later[: len(earlier) + len(completion)] == earlier + completion
    scores = teacher.logprobs_trajectory(prompts, completions)
    assert [len(s) for s in scores] == [len(c) for c in completions]


def test_webshop_panel_batched_equals_sequential(pair) -> None:
    model, tokenizer = pair
    panel = load_panel("WebShop-v0")
    records: dict[str, list] = {"one": [], "batch": []}

    def play(batch: int) -> list:
        agent = HFAgent(model, tokenizer, max_new_tokens=6, seed=3, temperature=0.7)
        made = [
            gym.make("WebShop-v0", split=panel.split, max_episode_steps=2) for _ in range(batch)
        ]
        key = "one" if batch == 1 else "batch"
        try:
            if batch == 1:
                return evaluate_panel(made[0], agent, panel, limit=3, on_turn=records[key].append)
            return evaluate_panel_batched(made, agent, panel, limit=3, on_turn=records[key].append)
        finally:
            for env in made:
                env.close()

    sequential, batched = play(1), play(2)
    assert (
        [r.task_id for r in sequential] == [r.task_id for r in batched] == list(panel.task_ids[:3])
    )
    assert [r.turns for r in batched] == [2, 2, 2]
    key = lambda e: (e.episode, e.turn)  # noqa: E731
    one, many = sorted(records["one"], key=key), sorted(records["batch"], key=key)
    assert [(e.task_id, e.turn, e.action) for e in one] == [
        (e.task_id, e.turn, e.action) for e in many
    ]
    assert all(e.agent_turn is not None and e.agent_turn.completion_ids for e in many)


def test_batched_evaluation_needs_slots() -> None:
    class NoSlots:
        def reset(self, task, info):
            pass

        def act(self, observation, info):
            return "look"

        def act_batch(self, observations, infos):
            return ["look"] * len(observations)

    panel = load_panel("WebShop-v0")
    env = gym.make("WebShop-v0", split=panel.split)
    try:
        with pytest.raises(ValueError, match="slots"):
            evaluate_panel_batched([env], NoSlots(), panel, limit=1)
    finally:
        env.close()


def test_tool_tasks_get_the_whole_completion_as_action(pair) -> None:
    model, tokenizer = pair
    agent = HFAgent(model, tokenizer, max_new_tokens=6, seed=0, temperature=0)
    env = gym.make("ToolMath-v0", split="test")
    try:
        observation, info = env.reset(seed=0)
        action = agent.act(observation, info)
        turn = agent.last_turn
        assert "<tools>" in turn.prompt and turn.prompt.endswith("<|im_start|>assistant\n")
        assert action == (turn.completion.strip() or turn.completion)
        observation, _, _, _, info = env.step(action)  # an unparseable completion is invalid
        assert info["invalid_action"]
        agent.act(observation, info)
        assert agent.last_turn.prompt.startswith(turn.prompt + turn.completion)
    finally:
        env.close()
