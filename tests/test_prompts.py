"""Prompts per env family (rendered snapshots), episode history, and forgiving action parsing."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import envs  # noqa: E402
from agents.parsing import parse_action, parse_tool_completion, strip_think  # noqa: E402
from agents.prompts import (  # noqa: E402
    EpisodeSlots,
    EpisodeState,
    PromptConfig,
    build_messages,
    detect_family,
    render_prompt,
    template_tools,
)
from agents.tiny import train_tokenizer  # noqa: E402

gym.register_envs(envs)

INSTRUCTION = (
    "Think step by step about the current situation inside <think> </think>. Then give exactly "
    "one admissible action for this step inside <action> </action>."
)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def render(tokenizer, state: EpisodeState, config: PromptConfig | None = None) -> str:
    tools = state.tools if state.family == "tool" else None
    return render_prompt(tokenizer, build_messages(state, config), tools=tools)


def alfworld_state() -> EpisodeState:
    info = {
        "task": "put a clean apple in fridge",
        "turn": 0,
        "admissible_actions": ["go to fridge 1", "take apple 1 from countertop 1", "look"],
        "task_id": "pick_clean_then_place_in_recep-Apple-None-Fridge-1",
    }
    state = EpisodeState.start(
        "You are in the middle of a room.\nYour task is to: put a clean apple in fridge.", info
    )
    state.record("<think>t</think><action>go to countertop 1</action>", "go to countertop 1")
    state.observe("On the countertop 1, you see an apple 1.", dict(info, turn=1))
    return state


def test_alfworld_prompt_snapshot(tokenizer) -> None:
    state = alfworld_state()
    assert state.family == "alfworld"
    expected = (
        "<|im_start|>user\n"
        "You are an expert agent acting in a simulated household (ALFWorld). You move between "
        "receptacles and take, put, open, close, heat, cool, clean, slice or use objects.\n"
        "Your task: put a clean apple in fridge\n\n"
        "Prior to this step, you have already taken 1 step(s).\n\n"
        "Your last 1 observation(s) and the action you took after each:\n"
        "[Step 1] Observation: You are in the middle of a room.\n"
        "Your task is to: put a clean apple in fridge.\n"
        "[Step 1] Action: go to countertop 1\n\n"
        "You are now at step 2. Current observation:\n"
        "On the countertop 1, you see an apple 1.\n\n"
        "Admissible actions:\n- go to fridge 1\n- take apple 1 from countertop 1\n- look\n\n"
        f"{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render(tokenizer, state) == expected


def scienceworld_state(steps: int) -> EpisodeState:
    info = {
        "task": "boil water",
        "turn": 0,
        "admissible_actions": ["look around", "open OBJ", "move OBJ to LOC"],
        "objects": ["door", "water", "stove"],
        "task_id": "boil-0",
    }
    state = EpisodeState.start(
        "This room is called the kitchen.\n\nYour task is to boil water.", info
    )
    for action in ["look around", "open door", "go to kitchen"][:steps]:
        state.record(f"<think>x</think><action>{action}</action>", action)
        state.observe(f"You did {action}.", dict(info, turn=state.turns_taken))
    return state


def test_scienceworld_compact_prompt_snapshot_keeps_the_last_two_pairs(tokenizer) -> None:
    state = scienceworld_state(3)
    assert state.family == "scienceworld"
    expected = (
        "<|im_start|>user\n"
        "You are an expert agent acting in a text-based science laboratory (ScienceWorld). You "
        "move between rooms, use instruments and objects, and run experiments.\n"
        "Your task: boil water\n\n"
        "Prior to this step, you have already taken 3 step(s).\n\n"
        "Your last 2 observation(s) and the action you took after each:\n"
        "[Step 2] Observation: You did look around.\n"
        "[Step 2] Action: open door\n"
        "[Step 3] Observation: You did open door.\n"
        "[Step 3] Action: go to kitchen\n\n"
        "You are now at step 4. Current observation:\nYou did go to kitchen.\n\n"
        "Admissible action templates (replace OBJ and LOC with objects listed below):\n"
        "look around, open OBJ, move OBJ to LOC\n"
        "Objects here:\ndoor, water, stove\n\n"
        f"{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render(tokenizer, state) == expected
    wider = render(tokenizer, state, PromptConfig(history_k=3))
    assert "[Step 1] Action: look around" in wider and "last 3 observation(s)" in wider
    none = render(tokenizer, state, PromptConfig(history_k=0))
    assert "[Step" not in none and "already taken 3 step(s)" in none


def test_webshop_prompt_snapshot(tokenizer) -> None:
    info = {
        "task": "i need a red shirt",
        "turn": 0,
        "admissible_actions": ["search[<keywords>]"],
        "page": "search",
        "task_id": "goal-1",
    }
    state = EpisodeState.start(
        "WebShop [SEP] Instruction: [SEP] i need a red shirt [SEP] Search", info
    )
    expected = (
        "<|im_start|>user\n"
        "You are an expert agent acting in an online shop (WebShop). Search with search[keywords], "
        "open products and choose their options with click[...], and finish by clicking buy now.\n"
        "Your task: i need a red shirt\n\n"
        "Prior to this step, you have already taken 0 step(s).\n\n"
        "You are now at step 1. Current observation:\n"
        "WebShop [SEP] Instruction: [SEP] i need a red shirt [SEP] Search\n\n"
        "Admissible actions:\n- search[<keywords>]\n\n"
        f"{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render(tokenizer, state) == expected


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
]


def tool_state() -> EpisodeState:
    info = {
        "task": "What is 2+3?",
        "turn": 0,
        "admissible_actions": [],
        "tools": TOOLS,
        "tool_results": [],
        "task_id": "m1",
    }
    state = EpisodeState.start("What is 2+3?\n\nGive the final answer as \\boxed{...}.", info)
    state.record(
        '<think>add</think>\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>',
        "same",
    )
    state.observe(
        "<tool_response>\n5\n</tool_response>",
        dict(info, turn=1, tool_results=[{"name": "add", "ok": True, "content": "5"}]),
    )
    return state


def test_tool_prompt_snapshot_uses_tools_and_tool_turns(tokenizer) -> None:
    state = tool_state()
    assert state.family == "tool"
    expected = (
        "<|im_start|>system\n"
        "You solve tasks with the tools described below. Think step by step inside <think> "
        '</think> before acting. Call a tool by writing <tool_call>{"name": <tool name>, '
        '"arguments": {<arguments as JSON>}}</tool_call>; several calls may go in one reply, and '
        "their results come back in <tool_response> blocks. When you know the answer, give it in "
        "the form the task asks for.\n\n"
        "# Tools\n\nYou may call one or more functions. Their signatures, as JSON, are inside "
        "<tools></tools>:\n<tools>\n"
        '{"type": "function", "function": {"name": "add", "description": "Add two numbers.", '
        '"parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": '
        '"number"}}, "required": ["a", "b"]}}}\n</tools>\n\n'
        "Write each call as a JSON object inside <tool_call></tool_call>:\n<tool_call>\n"
        '{"name": <function name>, "arguments": <arguments object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWhat is 2+3?\n\nGive the final answer as \\boxed{...}.<|im_end|>\n"
        "<|im_start|>assistant\n<think>add</think>\n<tool_call>\n"
        '{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render(tokenizer, state) == expected
    messages = build_messages(state)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[-1] == {"role": "tool", "content": "5", "name": "add"}


def test_tool_turns_carry_call_ids_of_structured_calls_and_invalid_turns_are_user_turns() -> None:
    state = tool_state()
    state.steps[0].message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_7", "type": "function", "function": {"name": "add", "arguments": "{}"}}
        ],
    }
    messages = build_messages(state)
    assert messages[2]["tool_calls"][0]["id"] == "call_7"
    assert messages[3]["tool_call_id"] == "call_7"
    state.record("I am not sure.", "I am not sure.")
    state.observe("No tool call and no final answer found.", {"turn": 2, "tool_results": []})
    messages = build_messages(state)
    assert messages[-1] == {"role": "user", "content": "No tool call and no final answer found."}


def test_chat_layout_prompts_extend_each_other(tokenizer) -> None:
    config = PromptConfig(history="chat")
    earlier = render(tokenizer, scienceworld_state(1), config)
    later = render(tokenizer, scienceworld_state(2), config)
    completion = "<think>x</think><action>open door</action>"
    assert later.startswith(earlier + completion)
    assert later.count("<|im_start|>assistant") == 3
    assert "Step 3 (you have already taken 2 step(s))" in later


def test_detect_family_from_env_id_and_info() -> None:
    assert detect_family({}, "ALFWorld-v0") == "alfworld"
    assert detect_family({}, "ScienceWorld-v0") == "scienceworld"
    assert detect_family({}, "WebShop-v0") == "webshop"
    assert detect_family({}, "ToolMath-v0") == "tool"
    assert detect_family({}, "SearchQA-v0") == "tool"
    assert detect_family({"tools": []}) == "tool"
    assert detect_family({"objects": []}) == "scienceworld"
    assert detect_family({"page": "search"}) == "webshop"
    assert detect_family({"task_id": "pick_and_place_simple-Mug-None-Desk-1"}) == "alfworld"
    assert detect_family({"task_id": "coin/gold"}) == "text"
    with pytest.raises(ValueError, match="family"):
        PromptConfig(family="chess")
    with pytest.raises(ValueError, match="history"):
        PromptConfig(history="everything")


def test_episode_slots_start_on_turn_zero_and_continue_otherwise() -> None:
    slots = EpisodeSlots()
    info = {"task": "t", "task_id": "a", "turn": 0, "admissible_actions": ["look"]}
    (entry,) = slots.update(["first"], [info], ["x"])
    assert entry.occurrence == 0 and entry.state.observation == "first"

    class Turn:
        completion, action, actor, extra = "<action>look</action>", "look", "student", {}

    slots.record([entry], [Turn()])
    (again,) = slots.update(["second"], [dict(info, turn=1)], ["x"])
    assert again.state is entry.state and again.state.turns_taken == 1
    assert again.state.steps[0].observation == "first" and again.state.observation == "second"
    (fresh,) = slots.update(["new episode"], [info], ["x"])
    assert fresh.state is not entry.state and fresh.occurrence == 1
    slots.restart()
    (restarted,) = slots.update(["new episode"], [info], ["x"])
    assert restarted.occurrence == 0
    with pytest.raises(ValueError, match="distinct"):
        slots.update(["a", "b"], [info, info], ["k", "k"])


def test_real_webshop_prompt(tokenizer) -> None:
    env = gym.make("WebShop-v0", split="test")
    try:
        observation, info = env.reset(seed=0)
        state = EpisodeState.start(observation, info, env_id="WebShop-v0")
        text = render(tokenizer, state)
        assert "Prior to this step, you have already taken 0 step(s)." in text
        assert info["task"] in text and "search[" in text and INSTRUCTION in text
        action = info["admissible_actions"][0]
        state.record(f"<think>search</think><action>{action}</action>", action)
        observation, _, _, _, info = env.step(action)
        state.observe(observation, info)
        text = render(tokenizer, state)
        assert "already taken 1 step(s)" in text and f"[Step 1] Action: {action}" in text
        assert "click[" in text
    finally:
        env.close()


def test_real_toolmath_prompt_has_tools_and_tool_turns(tokenizer) -> None:
    env = gym.make("ToolMath-v0", split="test", expert=True)
    try:
        observation, info = env.reset(seed=0)
        state = EpisodeState.start(observation, info)
        assert state.family == "tool" and state.tools == info["tools"]
        first = render(tokenizer, state)
        assert "<tools>" in first and '"name": "add"' in first and observation.strip() in first
        action = info["expert_action"]
        state.record(f"<think>compute</think>\n{action}", action)
        observation, _, _, _, info = env.step(action)
        state.observe(observation, info)
        messages = build_messages(state)
        tool_turns = [m for m in messages if m["role"] == "tool"]
        assert len(tool_turns) == len(info["tool_results"]) >= 1
        assert tool_turns[0]["content"] == info["tool_results"][0]["content"]
        second = render(tokenizer, state)
        assert second.startswith(first) and second.endswith("<|im_start|>assistant\n")
    finally:
        env.close()


def test_compact_tool_listing_puts_one_signature_line_per_tool_in_the_system_turn(
    tokenizer,
) -> None:
    env = gym.make("ToolMath-v0", split="test")
    try:
        observation, info = env.reset(seed=0)
        state = EpisodeState.start(observation, info)
        config = PromptConfig(tool_listing="compact")
        assert template_tools(state, config) is None
        assert template_tools(state, PromptConfig()) == info["tools"]
        system = build_messages(state, config)[0]
        assert system["role"] == "system"
        assert "\nTools:\nadd(a: number, b: number): Add two numbers: a + b.\n" in system["content"]
        assert system["content"].count("\n") >= len(info["tools"])
        compact = render_prompt(tokenizer, build_messages(state, config))
        full = render(tokenizer, state)
        assert "<tools>" not in compact and observation.strip() in compact
        assert len(tokenizer.encode(compact)) < len(tokenizer.encode(full)) / 2
    finally:
        env.close()
    with pytest.raises(ValueError, match="tool_listing"):
        PromptConfig(tool_listing="short")


def test_real_alfworld_info_is_detected(tokenizer) -> None:
    env = gym.make("ALFWorld-v0", split="valid_seen")
    try:
        observation, info = env.reset(seed=0)
        state = EpisodeState.start(observation, info)
        assert state.family == "alfworld"
        text = render(tokenizer, state)
        assert "(ALFWorld)" in text and f"- {info['admissible_actions'][0]}" in text
    finally:
        env.close()


@pytest.mark.java
@pytest.mark.skipif(not __import__("shutil").which("java"), reason="needs a Java runtime")
def test_real_scienceworld_prompt_uses_the_compact_form(tokenizer) -> None:
    env = gym.make("ScienceWorld-v0", split="test")
    try:
        observation, info = env.reset(seed=0)
        state = EpisodeState.start(observation, info)
        assert state.family == "scienceworld"
        text = render(tokenizer, state)
        assert "replace OBJ and LOC with objects listed below" in text
        assert "Objects here:" in text and info["objects"][0] in text
    finally:
        env.close()


# -- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "action", "found"),
    [
        ("<think>go</think>\n<action>go to desk 1</action>", "go to desk 1", True),
        ("<think>go</think><action>  go   to desk 1 \n</action>", "go to desk 1", True),
        ("<ACTION>open drawer 2</Action>", "open drawer 2", True),
        ("< action >take mug 1</ action >", "take mug 1", True),
        ("<think>hmm</think><action>go to desk 1", "go to desk 1", True),  # stopped at the tag
        ("<action>go to desk 1\nthen I will open it", "go to desk 1", True),  # unclosed, more text
        ("<action>look</action><action>inventory</action>", "look", True),
        ("<action></action><action>inventory</action>", "inventory", True),
        (
            "<think>I could <action>look</action></think><action>open door</action>",
            "open door",
            True,
        ),
        ("<think>I could <action>look</action></think>no tags here", "look", True),
        ("<action>'click[buy now]'</action>", "click[buy now]", True),
        ("<action>`search[red shirt]`</action>", "search[red shirt]", True),
        ("<think>x</think>\nAction: go to kitchen", "go to kitchen", True),
        ("**Action:** heat water", "heat water", True),
        ("<action>look</action><|im_end|>", "look", True),
        ("go to desk 1", "go to desk 1", False),
        ("  go to desk 1  \n", "go to desk 1", False),
        ("<think>unfinished reasoning", "<think>unfinished reasoning", False),
        ("", "", False),
    ],
)
def test_parse_action_cases(completion: str, action: str, found: bool) -> None:
    parsed = parse_action(completion)
    assert parsed.action == action
    assert parsed.found is found


def test_parse_action_keeps_the_reasoning_and_copes_with_non_strings() -> None:
    assert parse_action("<think> plan </think><action>a</action>").think == "plan"
    assert parse_action(None).action == ""  # type: ignore[arg-type]
    assert parse_action(42).action == "42"  # type: ignore[arg-type]


def test_parse_tool_completion_drops_reasoning_only() -> None:
    call = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    parsed = parse_tool_completion(f"<think>maybe \\boxed{{7}}</think>\n{call}<|im_end|>")
    assert parsed.action == call and parsed.found and parsed.think == "maybe \\boxed{7}"
    assert parse_tool_completion("The answer is \\boxed{5}.").found
    unparsed = parse_tool_completion("no idea")
    assert unparsed.action == "no idea" and not unparsed.found
    assert strip_think("<think>a</think>b<think>c</think>") == "b"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/actionhkAT \n'\"`:*|x")), max_size=60) | st.text())
def test_parse_action_never_raises(text: str) -> None:
    for parser in (parse_action, parse_tool_completion):
        parsed = parser(text)
        assert isinstance(parsed.action, str)
        if parsed.found and parser is parse_action:
            assert parsed.action and parsed.action == parsed.action.strip()
