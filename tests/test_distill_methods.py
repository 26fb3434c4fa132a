"""distill methods end to end on tiny models and a real env, loss routing, resume and DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

from distill.batching import Example
from distill.config import load_config
from distill.methods.common import turn_examples
from distill.rollout import Rollout
from distill.trainer import accumulate
from tests.builders import make_turn

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "WebShop-v0"  # pure Python, short prompts: the cheapest real env for training tests

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def small_config(method: str, run_dir: Path, **overrides):
    values = {
        "method": method,
        "env_id": ENV_ID,
        "student": "micro",
        "run_dir": str(run_dir),
        "total_steps": 2,
        "rollouts_per_step": 2,
        "num_envs": 2,
        "env_mode": "sync",
        "max_new_tokens": 12,
        "max_turns": 3,
        "eval_every": 2,
        "eval_episodes": 1,
        "checkpoint_every": 1,
        "learning_rate": 1e-3,
        "tensorboard": False,
    }
    if method in ("opd", "guided_opd", "tcod"):
        values["teacher"] = "tiny"
    if method == "sft":
        values.update(demo_episodes=2, max_turns=6)
    if method in ("grpo", "mentor"):
        values["group_size"] = 2
    if method == "mentor":
        values["reference"] = "expert"
    values.update(overrides)
    return load_config(None, values)


@pytest.mark.parametrize("method", ["sft", "opd", "guided_opd", "tcod", "grpo", "mentor"])
def test_every_method_runs_two_steps_and_writes_its_run(method: str, tmp_path: Path) -> None:
    from distill.trainer import train

    summary = train(small_config(method, tmp_path), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    trained = [row for row in rows if "loss" in row]
    assert [row["step"] for row in trained] == [1, 2]
    assert all(row["tokens"] > 0 and torch.isfinite(torch.tensor(row["loss"])) for row in trained)
    assert {"time_rollout_s", "time_scoring_s", "time_optimise_s", "env_errors"} <= set(trained[0])
    assert all(row["env_errors"] == 0 for row in trained)
    assert "eval_sr" in rows[0] and "eval_sr" in trained[-1]
    assert summary["final"]["eval_episodes"] == 1
    assert (tmp_path / "checkpoints" / "step-00000002" / "COMPLETE").exists()
    assert (tmp_path / "final" / "config.json").exists() and (tmp_path / "curves.png").exists()
    assert json.loads((tmp_path / "config.json").read_text())["method"] == method


def test_zero_eval_episodes_means_the_run_never_evaluates(tmp_path: Path) -> None:
    """The study evaluates on its own panels: its runs ask for no evaluation at all."""
    from distill.trainer import train

    summary = train(small_config("sft", tmp_path, eval_episodes=0), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert not any("eval_sr" in row for row in rows) and not summary.get("final")
    assert (tmp_path / "final" / "config.json").exists()


def test_tcod_b2f_replays_a_shrinking_reference_prefix(tmp_path: Path) -> None:
    from distill.trainer import train

    config = small_config(
        "tcod", tmp_path, variant="b2f", pace=1, max_turns=6, total_steps=2, eval_every=0
    )
    train(config, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    replayed = [row["replayed_turns"] for row in rows if "replayed_turns" in row]
    assert replayed[0] > 0 and replayed[1] < replayed[0]


def fake_rollout(actors: list[str]) -> Rollout:
    rollout = Rollout(env_id=ENV_ID, task_id="goal-1", seed=0, group=0)
    for k, actor in enumerate(actors):
        rollout.turns.append(
            make_turn(
                actor=actor,
                prompt_ids=[1, 2, 3 + k],
                completion_ids=[4, 5],
                action_type="click",
                sample_logprobs=[-1.0, -2.0],
                teacher_logprobs=[-0.5, -0.7],
                trained=actor != "replay",
            )
        )
    return rollout


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        (
            {"student_turn_loss": "reverse_kl", "teacher_turn_loss": "forward_kl"},
            [("reverse_kl", "student"), ("forward_kl", "teacher"), ("reverse_kl", "student")],
        ),
        (
            {"student_turn_loss": "reverse_kl", "teacher_turn_loss": "reverse_kl"},
            [("reverse_kl", "student"), ("reverse_kl", "teacher"), ("reverse_kl", "student")],
        ),
        (
            {"student_turn_loss": "forward_kl", "teacher_turn_loss": "reverse_kl"},
            [("forward_kl", "student"), ("reverse_kl", "teacher"), ("forward_kl", "student")],
        ),
        (
            {"student_turn_loss": "reverse_kl", "teacher_turn_loss": "none"},
            [("reverse_kl", "student"), ("reverse_kl", "student")],
        ),
    ],
    ids=["default", "both-reverse", "swapped", "teacher-masked"],
)
def test_guided_opd_routes_each_actor_to_its_loss(losses: dict, expected: list) -> None:
    """Which turns Guided-OPD trains, and which term each row's tokens get, per ablation."""
    from distill.batching import collate
    from distill.methods import guided_opd

    config = small_config("guided_opd", Path("/tmp/unused"), **losses)
    rollout = fake_rollout(["student", "teacher", "replay", "student"])
    trained = [
        a
        for a, k in (("student", config.student_turn_loss),)
        + (("teacher", config.teacher_turn_loss),)
        if k != "none"
    ]
    examples = turn_examples([rollout], trained)
    assert [e.actor for e in examples] == [actor for _, actor in expected]
    for example in examples:
        # pi_old is recorded only for the student's own samples
        assert (example.logp_old is not None) == (example.actor == "student")
    # Each row's per-token loss is the term its actor's option names, computed directly.
    batch = collate(examples)
    logp = torch.tensor([[-1.3, -1.9]] * len(examples), requires_grad=True)
    ctx = SimpleNamespace(config=config, pad_id=0)
    with mock.patch.object(guided_opd.opd, "student_logprobs", lambda *_: (logp, None)):
        per_token, _ = guided_opd.loss(None, batch, ctx)
    for row, (kind, actor) in enumerate(expected):
        old = batch.logp_old[row] if actor == "student" else logp[row].detach()
        if kind == "forward_kl":
            direct = -logp[row]
        else:
            ratio = torch.exp(logp[row] - old)
            advantage = batch.logp_teacher[row] - old
            direct = -torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)
        weight = config.teacher_weight if actor == "teacher" else 1.0
        assert torch.allclose(per_token[row], weight * direct), (row, kind, actor)


def tiny_lm():
    from agents.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer()
    return build_model("tiny", tokenizer, seed=0)


def step_loss(method: str, model, examples, config, **ctx_fields):
    """The loss of one optimiser step on ``examples`` as the trainer computes it."""
    from distill.methods import METHODS

    ctx = SimpleNamespace(config=config, pad_id=0, **ctx_fields)
    tokens = sum(e.trained_tokens for e in examples)
    loss, stats = accumulate(
        METHODS[method],
        model,
        examples,
        ctx,
        micro_batch_size=config.micro_batch_size,
        aggregation=config.aggregation,
        tokens=tokens,
        sequences=len(examples),
    )
    return torch.tensor(loss), {**stats, "tokens": tokens}


def test_sft_loss_is_the_nll_of_completion_tokens_only() -> None:
    model = tiny_lm()
    examples = [Example(prompt_ids=[5, 6, 7, 8], completion_ids=[9, 10, 11], actor="expert")]
    config = small_config("sft", Path("/tmp/unused"))
    loss, stats = step_loss("sft", model, examples, config)
    logits = model(input_ids=torch.tensor([[5, 6, 7, 8, 9, 10, 11]])).logits[0].float()
    log_probs = (
        torch.log_softmax(logits[3:6], -1).gather(-1, torch.tensor([[9], [10], [11]])).squeeze(-1)
    )
    assert loss.item() == pytest.approx(-log_probs.mean().item(), rel=1e-5)
    assert stats["tokens"] == 3


def test_teacher_weight_scales_teacher_tokens() -> None:
    model = tiny_lm()
    turn = [Example(prompt_ids=[5, 6], completion_ids=[7, 8], actor="teacher")]
    base = small_config("guided_opd", Path("/tmp/unused"), teacher_weight=1.0)
    doubled = small_config("guided_opd", Path("/tmp/unused"), teacher_weight=2.0)
    one, _ = step_loss("guided_opd", model, turn, base)
    model.zero_grad()
    two, _ = step_loss("guided_opd", model, turn, doubled)
    assert two.item() == pytest.approx(2 * one.item(), rel=1e-6)


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(file))
    return state


RESUME_SCRIPT = """
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
from tests.test_distill_methods import small_config
from distill.trainer import train
if __name__ == "__main__":
    config = small_config("opd", __import__("pathlib").Path({run!r}), total_steps=4, eval_every=0, checkpoint_every=1)
    train(config, resume={resume}, progress=False)
"""


def run_script(run_dir: Path, resume: bool) -> subprocess.Popen:
    code = RESUME_SCRIPT.format(root=str(ROOT), run=str(run_dir), resume=resume)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def test_a_killed_run_resumes_to_the_same_state(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_script(whole, resume=False).wait(timeout=600) == 0
    process = run_script(killed, resume=False)
    marker = killed / "checkpoints" / "step-00000002" / "COMPLETE"
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the run never reached its second checkpoint"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "final").exists()  # it really died before the end
    assert run_script(killed, resume=True).wait(timeout=600) == 0
    a, b = weights_of(whole / "final"), weights_of(killed / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    rows_a = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows_b] == pytest.approx([r["loss"] for r in rows_a], abs=1e-6)


def test_resuming_a_finished_run_keeps_its_summary(tmp_path: Path) -> None:
    """--resume on a run that had ended re-reports its evaluations; summary.json is not blanked."""
    from distill.trainer import train

    config = small_config("sft", tmp_path)
    first = train(config, progress=False)
    assert set(first) == {"initial", "final"} and "eval_sr" in first["final"]
    again = train(config, resume=True, progress=False)
    assert again == first
    assert json.loads((tmp_path / "summary.json").read_text()) == first


@pytest.mark.slow
def test_resume_passes_over_a_damaged_checkpoint_and_clears_stale_staging(tmp_path: Path) -> None:
    from distill.checkpoint import CheckpointError
    from distill.trainer import train

    def config(**overrides):
        values = {"total_steps": 2, "eval_every": 0, "eval_episodes": 0, **overrides}
        return small_config("opd", tmp_path, **values)

    train(config(), progress=False)
    newest = tmp_path / "checkpoints" / "step-00000002"
    state = newest / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])  # cut short, COMPLETE still there
    stale = tmp_path / "checkpoints" / ".step-00000003.killed"
    stale.mkdir()
    with pytest.warns(UserWarning, match="step-00000002 is damaged"):
        train(config(total_steps=3), resume=True, progress=False)
    assert not stale.exists()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # resumed after step 1
    with pytest.raises(CheckpointError, match="student='micro' .* student='mini'"):
        train(config(total_steps=4, student="mini"), resume=True, progress=False)


DDP_SCRIPT = """
import os, sys, json
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from tests.test_distill_methods import small_config
from distill.trainer import train
if __name__ == "__main__":
    config = small_config("opd", __import__("pathlib").Path({run!r}), total_steps=3, rollouts_per_step=4, num_envs=2, eval_every=0, checkpoint_every=10)
    train(config, progress=False)
"""


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    curves = {}
    for processes in (1, 2):
        run = tmp_path / f"p{processes}"
        script = tmp_path / f"ddp{processes}.py"
        script.write_text(DDP_SCRIPT.format(root=str(ROOT), run=str(run)))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            str(script),
        ]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        curves[processes] = [row["loss"] for row in rows if "loss" in row]
    assert len(curves[1]) == 3
    assert curves[2] == pytest.approx(curves[1], rel=1e-4, abs=1e-6)


def test_shipped_configs_load_and_share_one_recipe_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every method's config builds the same embedded teacher (same env settings and prompt)."""
    import distill.recipe as recipe_module

    names = set()
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        config = load_config(path)
        assert config.prompt_config().tool_listing == "compact"
        if path.stem != "teacher_sft":
            names.add(recipe_module.recipe_teacher_name(config))
    assert len(names) == 1
    shipped = names.pop()
    assert shipped.startswith("ToolMath-v0-")
    plain = load_config(None, {"method": "opd", "teacher": "recipe"})
    # the env family's defaults are the settings: spelt out, they name the same teacher
    explicit = load_config(
        None,
        {
            "method": "opd",
            "teacher": "recipe",
            "env_kwargs": {"levels": [2, 3, 4], "train_tasks": 20000},
            "prompt": {"tool_listing": "compact"},
        },
    )
    assert recipe_module.recipe_teacher_name(plain) == shipped
    assert recipe_module.recipe_teacher_name(explicit) == shipped
    other = load_config(None, {"method": "opd", "teacher": "recipe", "env_kwargs": {"levels": [2]}})
    assert recipe_module.recipe_teacher_name(other) != recipe_module.recipe_teacher_name(
        load_config(None, {"method": "opd", "teacher": "recipe", "env_kwargs": {"levels": [3]}})
    )
    # a changed recipe trains a new teacher instead of reusing one built by the old recipe
    recipe = tmp_path / "teacher_sft.yaml"
    recipe.write_text(recipe_module.TEACHER_RECIPE.read_text() + "\ntotal_steps: 7\n")
    before = recipe_module.recipe_teacher_name(plain)
    monkeypatch.setattr(recipe_module, "TEACHER_RECIPE", recipe)
    assert recipe_module.recipe_teacher_name(plain) != before


def test_a_bad_prompt_setting_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ValueError, match="prompt: .*unexpected keyword argument 'bogus'"):
        load_config(None, {"method": "opd", "teacher": "tiny", "prompt": {"bogus": 1}})
    with pytest.raises(ValueError, match="tool_listing must be one of"):
        load_config(None, {"method": "opd", "teacher": "tiny", "prompt": {"tool_listing": "tiny"}})


@pytest.mark.parametrize("env_id", ["ToolMath-v0", "WebShop-v0"])
def test_packed_trajectories_train_the_same_tokens_in_the_same_contexts(env_id: str) -> None:
    # SFT's demo_unit="trajectory": one sequence per expert episode, observations read but
    # not trained; every completion token keeps the log-prob it has as a separate turn.
    from agents.hf import HFAgent
    from agents.tiny import build_model, train_tokenizer
    from distill.batching import completion_logprobs
    from distill.methods.common import trajectory_examples
    from distill.rollout import RolloutCollector, RolloutRequest
    from envs.multiagent.selectors import FixedSelector

    tokenizer = train_tokenizer()
    student = HFAgent(build_model("tiny", tokenizer, seed=0), tokenizer)
    kwargs = {"expert": True, **({"levels": [3]} if env_id == "ToolMath-v0" else {})}
    collector = RolloutCollector(
        env_id, student=student, num_envs=2, env_kwargs=kwargs, mode="sync"
    )
    try:
        requests = [
            RolloutRequest(
                task,
                seed=k,
                selector=FixedSelector("expert", agents=("student", "expert")),
                max_turns=8,
            )
            for k, task in enumerate(collector.pool.get_attr("task_ids")[0][:2])
        ]
        rollouts = collector.collect(requests)
    finally:
        collector.close()
    assert all(r.won and len(r.turns) >= 3 for r in rollouts)
    turns, packed = turn_examples(rollouts, ["expert"]), trajectory_examples(rollouts, ["expert"])
    if env_id == "ToolMath-v0":  # the chat layout: each episode's prompts extend each other
        assert len(packed) == len(rollouts)
        for example, rollout in zip(packed, rollouts):
            assert example.prompt_ids == rollout.turns[0].prompt_ids
            assert sum(example.token_mask) == sum(len(t.completion_ids) for t in rollout.turns)
    else:  # a history window drops old turns: a turn that does not extend starts anew
        assert len(rollouts) < len(packed) <= len(turns)
    separate, _ = completion_logprobs(student.model, turns)
    together, _ = completion_logprobs(student.model, packed)
    expected = [v for i, e in enumerate(turns) for v in separate[i, : len(e.completion_ids)]]
    got = [
        v
        for i, e in enumerate(packed)
        for v, keep in zip(together[i, : len(e.completion_ids)], e.token_mask)
        if keep
    ]
    assert torch.allclose(torch.stack(got), torch.stack(expected), atol=1e-4)
    config = small_config("sft", Path("/tmp/unused"), demo_unit="trajectory")
    loss_turns, stats_turns = step_loss("sft", student.model, turns, config)
    loss_packed, stats_packed = step_loss("sft", student.model, packed, config)
    assert stats_packed["tokens"] == stats_turns["tokens"]
    assert sum(e.trained_tokens for e in packed) == stats_turns["tokens"]
    assert loss_packed.item() == pytest.approx(loss_turns.item(), rel=1e-4)


def test_the_head_on_trained_positions_only_gives_the_full_log_probs_and_gradients() -> None:
    """Packed examples (few trained tokens) take the trained-positions path; its log-probs and
    gradients equal those of full logits (``return_logits=True`` always computes them)."""
    from agents.tiny import build_model, train_tokenizer
    from distill.batching import Example, completion_logprobs

    tokenizer = train_tokenizer()
    model = build_model("tiny", tokenizer, seed=0)
    generator = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(5, 4000, (n,), generator=generator).tolist()

    examples = [
        Example(ids(30), ids(40), "expert", token_mask=[float(k % 5 == 0) for k in range(40)]),
        Example(ids(12), ids(25), "expert", token_mask=[float(k > 20) for k in range(25)]),
    ]
    mask = torch.zeros(2, 40)
    for i, example in enumerate(examples):
        mask[i, : len(example.token_mask)] = torch.tensor(example.token_mask)
    results = []
    for full in (False, True):
        model.zero_grad()
        logp, logits = completion_logprobs(model, examples, return_logits=full)
        assert (logits is not None) == full
        (-(logp * mask).sum()).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((logp.detach() * mask, grads))
    (selective, selective_grads), (reference, reference_grads) = results
    assert torch.allclose(selective, reference, atol=1e-5)
    assert len(selective_grads) == len(reference_grads)
    for got, expected in zip(selective_grads, reference_grads):
        assert torch.allclose(got, expected, atol=1e-5)


def test_sft_rejects_an_unknown_demo_unit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="demo_unit"):
        small_config("sft", tmp_path, demo_unit="episode")


def test_sft_on_packed_trajectories_trains_and_logs_the_units(tmp_path: Path) -> None:
    from distill.trainer import train

    config = small_config(
        "sft",
        tmp_path / "run",
        env_id="ToolMath-v0",
        env_kwargs={"levels": [2]},
        demo_unit="trajectory",
        demo_episodes=3,
    )
    summary = train(config, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    trained = [row for row in rows if "nll" in row]
    assert len(trained) == 2 and all(row["demo_units"] == 3 for row in trained)
    assert all(row["demo_turns"] > row["demo_units"] for row in trained)
    # two packed episodes per step: more trained tokens than any single turn holds
    assert all(row["tokens"] > 40 for row in trained)
    assert summary["final"]["eval_episodes"] >= 1


def test_each_step_collects_its_rollouts_once_and_writes_the_ones_it_trains_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distill.methods.opd as opd
    from distill.trainer import train

    made: list[int] = []  # the steps make_examples ran for
    trained_turns: list[int] = []  # turns with tokens in the examples each call returned
    make_examples = opd.make_examples

    def counting(ctx, step):
        examples, metrics = make_examples(ctx, step)
        made.append(step)
        trained_turns.append(sum(1 for e in examples if e.completion_ids))
        return examples, metrics

    monkeypatch.setattr(opd, "make_examples", counting)
    train(small_config("opd", tmp_path / "run"), progress=False)
    assert made == [0, 1]  # once per step: a second call would roll out (and train on) new episodes
    rows = [json.loads(line) for line in (tmp_path / "run" / "trajectories.jsonl").open()]
    # the trajectories written are the rollouts trained on: one row per trained turn, per step
    assert [sum(1 for r in rows if r["step"] == s + 1) for s in made] == trained_turns


@pytest.mark.parametrize(
    ("env_id", "announced"),
    [
        ("ToolMath-v0", "about 28 min (measured) on a 2-core CPU"),
        ("ALFWorld-v0", "2 to 3.5 hours (estimated from its measured parts) on a 2-core CPU"),
        ("FunctionCall-v0", "not measured for this env: the progress bars estimate it"),
    ],
)
def test_a_teacher_build_announces_its_time_on_that_env(
    env_id: str,
    announced: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The line printed before a recipe build gives that env's time, not ToolMath's for all."""
    import distill.recipe as recipe_module
    import distill.trainer

    monkeypatch.setenv("MENTORGYM_CACHE", str(tmp_path))
    monkeypatch.setattr(distill.trainer, "train", lambda config, resume, progress: {})
    config = load_config(None, {"method": "opd", "teacher": "recipe", "env_id": env_id})
    final = recipe_module.ensure_recipe_teacher(config, quiet=True)
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"building the embedded teacher for {env_id} in {tmp_path}")
    assert f"; {announced};" in line
    assert final == str(tmp_path / "teachers" / recipe_module.recipe_teacher_name(config) / "final")
