"""MENTOR's reward on tool tasks against the official ``mentor*.py`` definitions.

Each row is a trajectory with the reward the official code gives it, worked out
by hand from its rules (weights 0.7 correct, 0.3 match (x0.2 when wrong), 0.1
no hallucination; 0 without end-of-sequence; 0.1 without a boxed answer or
without reference tools) and confirmed by ``benchmarks/bench_mentor_agreement.py``
running the official files on the same samples.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import pytest

from agents.prompts import EpisodeState
from distill.config import load_config
from distill.methods.mentor import tool_reward as mentor_tool_reward
from distill.rewards import (
    MentorRewardConfig,
    ReferenceEpisode,
    official_sample,
    tool_usage,
    turn_calls,
)
from distill.rollout import Rollout
from envs.tooluse.calls import format_tool_call
from envs.tooluse.mentor_judge import AnswerJudge, boxed_content, last_boxed, unified_judge
from tests.builders import make_turn

MATH = ["add", "subtract", "multiply", "divide", "sum_numbers", "floor", "ceil", "round_number",
        "power", "sqrt", "abs_value", "modulo"]  # fmt: skip
MATHRULER = importlib.util.find_spec("mathruler") is not None
PROMPT = "A crate holds 12 rows of 34 pens and 5 loose pens. How many pens?"


def call(name: str, **arguments: Any) -> str:
    return format_tool_call(name, arguments)


MUL = call("multiply", a=12, b=34)
ADD = call("add", a=408, b=5)
BOXED = "So there are \\boxed{413} pens."
TEACHER = ReferenceEpisode(True, (MUL + "\n" + call("multiply", a=1, b=1), ADD, BOXED))


def turn(completion: str, finished: bool = True, **fields: Any) -> Any:
    observation = "<tool_response>\n1\n</tool_response>"
    return make_turn(
        prompt_ids=[1],
        completion_ids=[2],
        completion=completion,
        finished=finished,
        observation=observation,
        **fields,
    )


def rollout(
    *turns: Any, tools: list[str] = MATH, prompt: str = PROMPT, won: bool = False
) -> Rollout:
    state = EpisodeState.start(prompt, {"task": prompt, "tools": []}, family="tool")
    state.record(turns[0].completion if turns else "", "")
    result = Rollout("ToolMath-v0", "t", 0, 0, turns=list(turns), tools=list(tools), state=state)
    result.won = won
    return result


def reward(
    student: Rollout, references: tuple = (TEACHER,), variant: str = "exact", gold: str = "413"
) -> float:
    config = MentorRewardConfig(variant=variant)
    return mentor_tool_reward(
        student, list(references), student.tools, config, ground_truth=[gold], judge=unified_judge
    )


TWO = MUL + "\n" + call("multiply", a=1, b=1)  # two calls in one turn

CASES = [
    # 1. per-call names: a turn of two calls gives two names
    ("copy of the teacher", rollout(turn(TWO), turn(ADD), turn(BOXED)), 1.1),
    ("same calls one per turn", rollout(turn(MUL), turn(MUL), turn(ADD), turn(BOXED)), 1.1),
    # 2. failed calls: unreadable ignored, valid tools still counted, unknown names hallucinated
    ("malformed call ignored", rollout(turn("<tool_call>{bad json</tool_call>"), turn(TWO), turn(ADD), turn(BOXED)), 1.1),
    ("bad arguments still count", rollout(turn(call("divide", a="x")), turn(TWO), turn(ADD), turn(BOXED)), 0.8),
    ("divide by zero still counts", rollout(turn(call("divide", a=1, b=0)), turn(TWO), turn(ADD), turn(BOXED)), 0.8),
    ("unknown tool", rollout(turn(call("teleport", to="x")), turn(TWO), turn(ADD), turn(BOXED)), 1.0),
    ("text-only turn ends the sample", rollout(turn(TWO), turn("Let me think."), turn(ADD), turn(BOXED)), 0.1),
    # 3. a hallucination next to a good call in the same turn
    ("hallucination beside a call", rollout(turn(MUL + call("teleport")), turn(ADD), turn(BOXED)), 1.0),
    # 4. `answer` is a tool name like any other where the env offers no answer tool
    ("answer call in ToolMath", rollout(turn(TWO), turn(ADD + call("answer", answer="413")), turn(BOXED)), 1.0),
    # 5. end-of-sequence over the whole sample
    ("ends on a tool call", rollout(turn(TWO), turn(ADD)), 0.0),
    ("cut for length mid-episode", rollout(turn(TWO, finished=False), turn(ADD), turn(BOXED)), 0.0),
    ("cut for length at the end", rollout(turn(TWO), turn(ADD), turn(BOXED, finished=False)), 0.0),
    # 6. answer extraction: the last \boxed anywhere, prompt included
    ("last boxed wins", rollout(turn(TWO), turn(ADD), turn("\\boxed{400}, no: \\boxed{413}")), 1.1),
    ("boxed in an earlier turn", rollout(turn("\\boxed{413}" + TWO), turn(ADD), turn("Done.")), 1.1),
    ("answer tag is not read", rollout(turn(TWO), turn(ADD), turn("<answer>413</answer>")), 0.1),
    ("empty boxed", rollout(turn(TWO), turn(ADD), turn("\\boxed{}")), 0.1),
    ("fbox refused", rollout(turn(TWO), turn(ADD), turn("\\fbox{413}")), 0.1),
    ("boxed with a space", rollout(turn(TWO), turn(ADD), turn("\\boxed 413")), 1.1),
    ("boxed with a space wins", rollout(turn(TWO), turn(ADD), turn("\\boxed 413$ or \\boxed{999}")), 1.1),
    ("boxed in the prompt", rollout(turn(TWO), turn(ADD), turn("Done."), prompt=PROMPT + " Answer as \\boxed{...}."), 0.16),
    ("wrong answer, tools match", rollout(turn(TWO), turn(ADD), turn("\\boxed{412}")), 0.16),
    # 9. turn budget: max_turns=5 counts every model turn
    ("four tool turns and the answer", rollout(turn(MUL), turn(MUL), turn(MUL), turn(ADD), turn(BOXED)), 1.1),
    ("five tool turns and the answer", rollout(turn(MUL), turn(MUL), turn(MUL), turn(MUL), turn(ADD), turn(BOXED)), 0.0),
]  # fmt: skip


@pytest.mark.parametrize(("label", "student", "expected"), CASES, ids=[c[0] for c in CASES])
def test_official_reward_table(label: str, student: Rollout, expected: float) -> None:
    assert reward(student) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "gold", "accepted"),
    [
        ("413", "413", True),
        ("1,200", "1200", True),
        ("1300 or 1200", "1200", True),  # math-verify reads the last number
        ("2,5", "2.5", True),  # a decimal comma
        ("1.2\\times10^3", "1200", False),
        ("12", "1200", False),
        ("\\text{3502.39}", "3502.39", MATHRULER),  # only MathRuler's grader reads these
        ("1e3", "1000", MATHRULER),
    ],
)
def test_answer_check_ors_the_three_checkers(prediction: str, gold: str, accepted: bool) -> None:
    assert unified_judge(prediction, gold) is accepted
    student = rollout(turn(TWO), turn(ADD), turn(f"\\boxed{{{prediction}}}"))
    assert reward(student, gold=gold) == pytest.approx(1.1 if accepted else 0.16)


def test_references_come_from_successful_episodes() -> None:
    failed = ReferenceEpisode(False, (call("sqrt", x=4), "\\boxed{2}"))
    student = rollout(turn(TWO), turn(ADD), turn(BOXED))
    assert reward(student, (failed, TEACHER)) == pytest.approx(1.1)
    # No successful episode: no reference tools, a flat 0.1 however good the rollout.
    assert reward(student, (failed,)) == pytest.approx(0.1)
    assert reward(student, ()) == pytest.approx(0.1)
    assert reward(student, (failed,), variant="none") == pytest.approx(0.8)  # ablation 3 needs none


@pytest.mark.parametrize(
    ("variant", "partial_correct", "match_wrong", "no_tools_correct"),
    [
        ("exact", 0.8, 0.16, 0.8),
        ("overlap", 1.0, 0.06, 0.7),  # ablation 2: no hallucination term
        ("f1", 0.7 + 0.3 * 2 / 3 + 0.1, 0.16, 0.8),
        ("none", 0.8, 0.1, 0.8),
    ],
)
def test_variants_match_the_ablation_files(
    variant: str, partial_correct: float, match_wrong: float, no_tools_correct: float
) -> None:
    partial = rollout(turn(MUL), turn(BOXED))  # multiply only; the teacher used multiply and add
    assert reward(partial, variant=variant) == pytest.approx(partial_correct)
    wrong = rollout(turn(TWO), turn(ADD), turn("\\boxed{1}"))
    assert reward(wrong, variant=variant) == pytest.approx(match_wrong)
    assert reward(rollout(turn(BOXED)), variant=variant) == pytest.approx(no_tools_correct)


def test_answer_tool_envs_use_the_env_verdict_and_leave_answer_out() -> None:
    tools = ["search", "answer"]
    teacher = ReferenceEpisode(True, (call("search", query="x"), call("answer", answer="Velda")))
    student = rollout(
        turn(call("search", query="y")),
        turn(call("answer", answer="Velda"), action_type="answer"),
        tools=tools,
        won=True,
    )
    assert tool_usage(student.turns[1].completion, tools).used == []
    assert reward(student, (teacher,), variant="f1") == pytest.approx(1.1)
    unanswered = rollout(turn(call("search", query="y")), turn("I do not know."), tools=tools)
    assert reward(unanswered, (teacher,)) == pytest.approx(0.1)


def test_extraction_helpers() -> None:
    assert last_boxed("a \\boxed{x{y}} b \\boxed{z}") == "\\boxed{z}"
    assert last_boxed("\\boxed 5$ \\boxed{6}") == "\\boxed 5"
    assert last_boxed("\\fbox{7}") == "\\fbox{7}" and last_boxed("\\boxed{8") is None
    assert boxed_content("\\boxed{x{y}}") == "x{y}"
    with pytest.raises(ValueError):
        boxed_content("\\fbox{7}")
    assert turn_calls("<tool_call>a</tool_call><tool_call>b</tool_call>") == ["a", "b"]
    assert turn_calls("</tool_call><tool_call>a") == []  # tags out of order: no calls
    text, finished = official_sample(rollout(turn(TWO), turn(ADD), turn(BOXED)))
    assert finished and text.startswith(PROMPT) and text.endswith(BOXED)
    usage = tool_usage(TWO + call("teleport") + "<tool_call>{x</tool_call>", MATH)
    assert usage.used == ["multiply", "multiply"] and usage.invalid == ["teleport"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown match variant"):
        MentorRewardConfig(variant="jaccard")
    with pytest.raises(ValueError, match="max_turns"):
        MentorRewardConfig(max_turns=0)
    with pytest.raises(ValueError, match="unknown reward weights"):
        MentorRewardConfig(weights={"bonus": 1.0})


def test_composite_rewards_use_the_official_reward_on_tool_tasks() -> None:
    from distill.methods import mentor

    config = load_config(
        None, {"method": "mentor", "env_id": "ToolMath-v0", "student": "micro", "teacher": "tiny"}
    )
    references = {
        "t": {"won": True, "actions": [], "action_types": [], "episodes": [
            {"won": True, "completions": list(TEACHER.completions)}]},
    }  # fmt: skip
    pool = SimpleNamespace(get_attr=lambda name: [{"t": SimpleNamespace(answer=("413",))}])
    ctx = SimpleNamespace(
        config=config,
        cache={"references": references},
        collector=SimpleNamespace(pool=pool),
    )
    students = [
        rollout(turn(TWO), turn(ADD), turn(BOXED)),
        rollout(turn(TWO), turn(ADD), turn("\\boxed{\\text{413}}")),
        rollout(turn(TWO), turn(ADD)),
    ]
    rewards = mentor.composite_rewards(ctx, students)
    assert rewards[0] == pytest.approx(1.1) and rewards[2] == 0.0
    assert rewards[1] == pytest.approx(1.1 if MATHRULER else 0.16)  # judged in the sandbox
    assert ctx.cache["ground_truth"] == {"t": ["413"]}


def test_the_sandboxed_judge_survives_a_hostile_answer() -> None:
    judge = AnswerJudge(timeout_s=3.0)
    try:
        assert judge("1,200", ["1200"]) and not judge("12", ["1200"])
        assert judge("9**9**9**9**9", ["1"]) is False  # sympy would run for ever
        assert judge("413", ["413"])
    finally:
        judge.close()


def test_reference_collection_keeps_every_attempt_and_prefers_a_success() -> None:
    from distill.methods.common import reference_rollouts

    played: list[Any] = []

    def collect(requests: list[Any], progress: Any = None) -> list[Rollout]:
        played.extend(requests)
        out = []
        for k, request in enumerate(requests):
            episode = Rollout("ToolMath-v0", request.task_id, request.seed, 0)
            episode.turns = [turn(f"try {k}", actor="teacher", action="a", action_type="add")]
            episode.won = k % 2 == 1  # the second attempt of each task succeeds
            out.append(episode)
        return out

    ctx = SimpleNamespace(
        cache={},
        config=SimpleNamespace(turn_cap=lambda: 5),
        rollout_seed=lambda step, number: number,
        collector=SimpleNamespace(collect=collect),
    )
    references = reference_rollouts(ctx, ["a", "b", "a"], "teacher", attempts=2)
    assert len(played) == 4 and set(references) == {"a", "b"}
    assert references["a"]["won"] and references["a"]["actions"] == ["a"]
    assert [e["won"] for e in references["a"]["episodes"]] == [False, True]
    assert references["a"]["episodes"][1]["completions"] == ["try 1"]
    reference_rollouts(ctx, ["a", "b"], "teacher", attempts=2)
    assert len(played) == 4  # cached
    with pytest.raises(ValueError, match="at least 1"):
        reference_rollouts(ctx, ["a"], "teacher", attempts=0)
