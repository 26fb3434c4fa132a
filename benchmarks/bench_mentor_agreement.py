"""Agreement of MENTOR's reward with the official reward files, on real ToolMath-v0 episodes.

For ToolMath-v0 test tasks the script plays student scenarios through the real
env (the reference calls in parallel or one per turn; unreadable, unknown,
badly-argued and failing calls; hallucinations beside good calls; text-only
turns; completions cut for length; episodes ending on a call or past the turn
budget; answers boxed in every official and unofficial way, right and wrong)
and scores each episode three ways:

* the official reward (MENTOR-RL ``verl/utils/reward_score/mentor.py`` for
  ``exact``, ``mentor_ablation2/3/4.py`` for ``overlap``/``none``/``f1``), run by
  ``--official-python`` on the sample text the official rollout builds
  (chat prompt, turns with end-of-sequence tokens, tool responses, at most 5
  model turns); ``--official`` is the folder holding those files, which this
  project does not ship (``git clone`` MENTOR-RL; its interpreter needs
  ``pip install math-verify mathruler pylatexenc``);
* :func:`distill.methods.mentor.tool_reward` on the project's rollout;
* the project's earlier reward (action-type labels, the env's verdict, the last
  turn's end-of-sequence): the baseline.

Every fifth task has a failed teacher (no reference tools). The last line is
the headline figure. For the answer check to include MathRuler here too, put
it on the path: ``pip install --target /tmp/mr mathruler pylatexenc`` and
``PYTHONPATH=/tmp/mr``.

    python benchmarks/bench_mentor_agreement.py --official-python /tmp/mentor/bin/python \\
        --official MENTOR-RL/src/verl/utils/reward_score
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402,F401
from agents.prompts import EpisodeState  # noqa: E402
from distill.methods.mentor import tool_reward as mentor_tool_reward  # noqa: E402
from distill.rewards import (  # noqa: E402
    DEFAULT_MENTOR_WEIGHTS,
    MentorRewardConfig,
    ReferenceEpisode,
    tool_set_match,
)
from distill.rollout import Rollout, Turn  # noqa: E402
from envs.tooluse.calls import format_tool_call, format_tool_calls  # noqa: E402
from envs.tooluse.mentor_judge import unified_judge  # noqa: E402

EOS = "<|im_end|>"
MODULES = {"exact": "mentor", "overlap": "mentor_ablation2", "none": "mentor_ablation3",
           "f1": "mentor_ablation4"}  # fmt: skip

# Run by the official interpreter: one JSON case per line in, one score per line out.
DRIVER = r"""
import importlib, io, json, os, sys
sys.path.insert(0, sys.argv[1])
out = sys.stdout
sys.stdout = io.StringIO()  # the official files print a debug line per call
class Tokenizer:
    eos_token = "<|im_end|>"
modules = {}
for line in sys.stdin:
    case = json.loads(line)
    name = case["module"]
    if name not in modules:
        modules[name] = importlib.import_module(name)
    score = modules[name].compute_score_with_format(Tokenizer(), case["text"], case["gold"],
                                                    case["teacher_tools"])
    score = score[0] if isinstance(score, tuple) else score
    sys.stdout = io.StringIO()
    out.write(json.dumps(float(score)) + "\n")
out.flush()
"""

SYSTEM = (
    "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more "
    "functions to assist with the user query.\n\nFor each function call, return a json object "
    "with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
)
_PAIRS = re.compile(r"<tool_call>((?:(?!</tool_call>).)*)</tool_call>", re.DOTALL)


# -- the official sample text ------------------------------------------------------------------


def official_turn_calls(output: str) -> list[str]:
    """The official rollout's ``extract_tool_calls`` (tags must pair up in order)."""
    opens = [m.start() for m in re.finditer("<tool_call>", output)]
    closes = [m.start() for m in re.finditer("</tool_call>", output)]
    if len(opens) != len(closes) or any(s >= e for s, e in zip(opens, closes)):
        return []
    return [m.group(1).strip() for m in _PAIRS.finditer(output)]


def official_text(rollout: Rollout, max_turns: int = 5) -> str:
    """The decoded prompt + response the official rollout would hold for these turns."""
    assert rollout.state is not None
    first = rollout.state.steps[0].observation
    text = f"{SYSTEM}<|im_start|>user\n{first}<|im_end|>\n<|im_start|>assistant\n"
    for step, turn in enumerate(rollout.turns):
        if step >= max_turns:
            break
        text += turn.completion + (EOS if turn.finished else "")
        if not turn.finished:
            break
        calls = official_turn_calls(turn.completion)
        if not calls:
            break
        responses = "".join(
            f"<tool_response>{c}\n{turn.observation}\n</tool_response>\n" for c in calls
        )
        text += f"\n<|im_start|>user\n{responses}<|im_end|>\n<|im_start|>assistant\n<think>"
    return text


def official_teacher_tools(reference: ReferenceEpisode, tools: list[str]) -> list[str]:
    """``tool_calls_used`` of a task: the teacher's per-call names (only when it succeeded)."""
    if not reference.won:
        return []
    names = []
    for block in re.findall(
        r"<tool_call>(.*?)</tool_call>", "\n".join(reference.completions), re.S
    ):
        try:
            name = json.loads(block.strip()).get("name")
        except (ValueError, AttributeError):
            continue
        if name in tools:
            names.append(name)
    return names


# -- scenarios -------------------------------------------------------------------------------


def _calls(turn: list[dict[str, Any]]) -> str:
    return format_tool_calls(turn)


def scenarios(task: Any) -> dict[str, list[tuple[str, bool]]]:
    """Student completions (text, finished) for one task, by scenario kind."""
    gold = task.answer[0]
    turns = [_calls(list(t)) for t in task.reference]
    single = [_calls([c]) for t in task.reference for c in t]
    answer = f"The result is \\boxed{{{gold}}}."
    bad = '<tool_call>\n{"name": "add", "arguments": {"a": 1,\n</tool_call>'
    unknown = format_tool_call("teleport", {"to": "moon"})
    wrong_args = format_tool_call("divide", {"a": "x", "b": 2})
    by_zero = format_tool_call("divide", {"a": 1, "b": 0})
    first = turns[0]
    out = {
        "teacher_copy": [*turns, answer],
        "one_call_per_turn": [*single, answer],
        "wrong_answer": [*turns, "\\boxed{1}"],
        "no_tools_right": [answer],
        "no_tools_wrong": ["\\boxed{2}"],
        "malformed_first": [bad, *turns, answer],
        "unknown_tool_first": [unknown, *turns, answer],
        "bad_arguments_first": [wrong_args, *turns, answer],
        "divide_by_zero_first": [by_zero, *turns, answer],
        "hallucination_beside_call": [first + "\n" + unknown, *turns[1:], answer],
        "text_only_turn": ["Let me think about it.", *turns, answer],
        "ends_on_call": list(turns),
        "answer_tag": [*turns, f"<answer>{gold}</answer>"],
        "boxed_space": [*turns, f"So \\boxed {gold}"],
        "fbox": [*turns, f"\\fbox{{{gold}}}"],
        "boxed_empty": [*turns, "\\boxed{}"],
        "boxed_text": [*turns, f"\\boxed{{\\text{{{gold}}}}}"],
        "boxed_twice": [*turns, f"\\boxed{{{int(float(gold)) + 1}}} or rather \\boxed{{{gold}}}"],
        "boxed_or": [*turns, f"\\boxed{{{int(float(gold)) + 1} or {gold}}}"],
        "boxed_early": [first + f"\nMaybe \\boxed{{{gold}}}", *turns[1:], "Done."],
        "answer_tool_call": [*turns, format_tool_call("answer", {"answer": gold}), answer],
        "extra_turns": [*turns, *turns[:2], answer],
    }
    lengths = {
        "cut_first": [False] + [True] * len(turns),
        "cut_last": [True] * len(turns) + [False],
    }
    scenes = {kind: [(text, True) for text in texts] for kind, texts in out.items()}
    for kind, flags in lengths.items():
        scenes[kind] = list(zip([*turns, answer], flags))
    return scenes


def play(env: Any, task_id: str, completions: list[tuple[str, bool]], tools: list[str]) -> Rollout:
    """The episode the env plays for these completions, recorded as the collector records it."""
    observation, info = env.reset(options={"task_id": task_id})
    state = EpisodeState.start(observation, info, family="tool", env_id="ToolMath-v0")
    rollout = Rollout("ToolMath-v0", task_id, 0, 0, tools=list(tools), state=state)
    for text, finished in completions:
        state.record(text, text)
        observation, _, terminated, truncated, info = env.step(text)
        state.observe(observation, info)
        rollout.turns.append(
            Turn(
                "student",
                [],
                [],
                text,
                text,
                observation,
                0.0,
                float(info["score"]),
                str(info["action_type"]),
                bool(info["invalid_action"]),
                finished,
            )  # fmt: skip
        )
        rollout.won, rollout.score = bool(info["won"]), float(info["score"])
        if terminated or truncated:
            rollout.terminated = bool(terminated)
            break
    return rollout


def baseline(rollout: Rollout, reference: Rollout | None, variant: str) -> float:
    """The reward the project computed before (action-type labels, env verdict, last turn)."""
    last = rollout.turns[-1]
    teacher = (
        [t for t in reference.action_types_of("student") if t != "invalid"] if reference else []
    )
    if not last.finished:
        return 0.0
    if not any(t.action_type == "answer" for t in rollout.turns):
        return DEFAULT_MENTOR_WEIGHTS["unanswered"]
    student = rollout.action_types_of("student")
    valid = set(rollout.tools) | {"answer"}
    w, outcome = DEFAULT_MENTOR_WEIGHTS, float(rollout.won)
    scale = 1.0 if outcome >= 1.0 else w["wrong_match_scale"]
    return (
        w["correct"] * outcome
        + w["match"] * tool_set_match(student, teacher, variant) * scale
        + w["no_hallucination"] * float(all(tool in valid for tool in student))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--official-python", required=True, help="interpreter for the official files"
    )
    parser.add_argument("--official", type=Path, required=True, help="folder holding mentor.py")
    parser.add_argument("--tasks", type=int, default=54, help="ToolMath-v0 test tasks")
    args = parser.parse_args()
    if not (args.official / "mentor.py").exists():
        raise SystemExit(f"{args.official}/mentor.py not found (clone MENTOR-RL)")
    env = gym.make("ToolMath-v0", split="test", expert=True, admissible_actions="none")
    unwrapped = env.unwrapped
    cases, ours, before, labels = [], [], [], []
    for number, task_id in enumerate(unwrapped.task_ids[: args.tasks]):
        task = unwrapped.tasks[task_id]
        tools = [t["function"]["name"] for t in task.tools]
        expert_turns = [(_calls(list(t)), True) for t in task.reference]
        expert_turns.append((f"\\boxed{{{task.answer[0]}}}", True))
        teacher_rollout = play(env, task_id, expert_turns, tools)
        failed = number % 5 == 4
        reference = ReferenceEpisode(
            teacher_rollout.won and not failed, tuple(t.completion for t in teacher_rollout.turns)
        )
        teacher_tools = official_teacher_tools(reference, tools)
        for kind, completions in scenarios(task).items():
            student = play(env, task_id, completions, tools)
            text = official_text(student)
            for variant, module in MODULES.items():
                config = MentorRewardConfig(variant=variant)
                ours.append(
                    mentor_tool_reward(
                        student,
                        [reference],
                        tools,
                        config,
                        ground_truth=list(task.answer),
                        judge=unified_judge,
                    )  # fmt: skip
                )
                before.append(baseline(student, None if failed else teacher_rollout, variant))
                cases.append({"module": module, "text": text, "gold": task.answer[0],
                              "teacher_tools": teacher_tools})  # fmt: skip
                labels.append((kind, variant, task_id))
    env.close()
    done = subprocess.run(
        [args.official_python, "-c", DRIVER, str(args.official)],
        input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the official reward failed to run:\n{done.stderr[-3000:]}")
    official = [json.loads(line) for line in done.stdout.splitlines()]
    rows: collections.Counter[tuple[str, str]] = collections.Counter()
    shown = 0
    for value, mine, old, (kind, variant, task_id) in zip(official, ours, before, labels):
        for key in (kind, f"variant {variant}", "all"):
            rows[(key, "n")] += 1
            rows[(key, "after")] += abs(mine - value) < 1e-9
            rows[(key, "before")] += abs(old - value) < 1e-9
        if abs(mine - value) >= 1e-9 and shown < 15:
            shown += 1
            print(f"disagreement: {task_id} {kind} {variant}: official {value}, ours {mine}")
    keys = sorted({k for k, _ in rows if k != "all"}, key=lambda k: (k.startswith("variant"), k))
    print(f"{'scenario':<28} {'cases':>6} {'before %':>9} {'after %':>8}")
    for key in [*keys, "all"]:
        n = rows[(key, "n")]
        print(
            f"{key:<28} {n:>6} {100 * rows[(key, 'before')] / n:>9.2f} {100 * rows[(key, 'after')] / n:>8.2f}"
        )
    n = rows[("all", "n")]
    episodes = n // len(MODULES)
    print(
        f"agreement with the official MENTOR reward over {episodes} episodes x {len(MODULES)} "
        f"variants: {100 * rows[('all', 'after')] / n:.2f}% (before: {100 * rows[('all', 'before')] / n:.2f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
