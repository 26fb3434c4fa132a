"""The loss that runs is the loss that is tested: each method's per-token loss, as the trainer
computes it (``distill.trainer.accumulate``), on a real mixed batch of teacher and student
turns, against a direct computation written here from the definitions; and the loss and the
gradient do not depend on how the batch is split into micro-batches."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from distill.batching import Example
from distill.config import load_config
from distill.methods import METHODS
from distill.methods.common import turn_examples
from distill.rollout import RolloutCollector, RolloutRequest, score_with_teacher
from distill.trainer import accumulate
from envs.multiagent.selectors import BernoulliSelector

AGGREGATIONS = ["token-mean", "seq-mean-token-mean"]


@pytest.fixture(scope="module")
def recorded():
    """Real WebShop rollouts where teacher and student take turns, scored by the teacher;
    the student then moves a little, so its ratios to pi_old leave 1 (and reach the clip)."""
    from agents.hf import HFAgent
    from agents.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer()
    student = HFAgent(build_model("micro", tokenizer, seed=0), tokenizer, max_new_tokens=10)
    teacher = HFAgent(build_model("micro", tokenizer, seed=1), tokenizer, max_new_tokens=10)
    teacher.actor = "teacher"
    collector = RolloutCollector(
        "WebShop-v0", student=student, teacher=teacher, num_envs=3, mode="sync"
    )
    try:
        tasks = collector.pool.get_attr("task_ids")[0][:3]
        requests = [
            RolloutRequest(
                task,
                seed=k,
                selector=BernoulliSelector(0.5, agents=("teacher", "student"), seed=k),
                max_turns=2,
            )
            for k, task in enumerate(tasks)
        ]
        rollouts = collector.collect(requests)
    finally:
        collector.close()
    score_with_teacher(teacher, rollouts)
    reference = copy.deepcopy(student.model).requires_grad_(False)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(7)
        for parameter in student.model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    actors = {turn.actor for rollout in rollouts for turn in rollout.turns}
    assert actors == {"teacher", "student"}, actors  # a mixed batch
    advantages = [0.8, -1.1, 0.3][: len(rollouts)]
    examples = turn_examples(rollouts, ["student", "teacher"], advantages=advantages)
    return SimpleNamespace(
        student=student.model, teacher=teacher.model, reference=reference, examples=examples
    )


def token_logprobs(model: torch.nn.Module, example: Example) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, logits) of the example's completion tokens: a plain full forward."""
    ids = torch.tensor([example.prompt_ids + example.completion_ids])
    logits = model(input_ids=ids).logits[0].float()
    start = len(example.prompt_ids) - 1
    logits = logits[start : start + len(example.completion_ids)]
    targets = torch.tensor(example.completion_ids)
    return torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1), logits


def clipped(ratio: torch.Tensor, advantage: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    return -torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage)


def direct_token_loss(method: str, config, example: Example, data) -> torch.Tensor | None:
    """The per-token loss of one example, from the methods' definitions (None: untrained)."""
    logp, logits = token_logprobs(data.student, example)
    teacher_logp = torch.tensor(example.logp_teacher or [0.0] * len(logp))
    old = torch.tensor(example.logp_old) if example.logp_old is not None else logp.detach()

    def reverse_kl() -> torch.Tensor:
        if getattr(config, "reverse_kl", "sampled") == "full_vocab":
            with torch.no_grad():
                _, teacher_logits = token_logprobs(data.teacher, example)
            p = torch.softmax(logits, -1)
            return (
                p * (torch.log_softmax(logits, -1) - torch.log_softmax(teacher_logits, -1))
            ).sum(-1)
        return clipped(torch.exp(logp - old), teacher_logp - old)

    if method == "sft":
        return -logp
    if method in ("opd", "tcod"):
        return reverse_kl() if example.actor == "student" else None
    if method == "guided_opd":
        kind = config.student_turn_loss if example.actor == "student" else config.teacher_turn_loss
        weight = 1.0 if example.actor == "student" else config.teacher_weight
        if kind == "none":
            return None
        return weight * (reverse_kl() if kind == "reverse_kl" else -logp)
    # grpo, mentor: clipped surrogate with the rollout's advantage, plus k3 to the reference
    if example.actor != "student":
        return None
    with torch.no_grad():
        logp_ref, _ = token_logprobs(data.reference, example)
    advantage = torch.full_like(logp, example.advantage)
    k3 = torch.exp(logp_ref - logp) - (logp_ref - logp) - 1
    return clipped(torch.exp(logp - old), advantage) + config.kl_coef * k3


def direct_step_loss(method: str, config, examples, data) -> torch.Tensor:
    rows = [direct_token_loss(method, config, e, data) for e in examples]
    if config.aggregation == "token-mean":
        total_tokens = sum(len(e.completion_ids) for e in examples)
        return sum(r.sum() for r in rows if r is not None) / total_tokens
    return sum(r.mean() for r in rows if r is not None) / len(examples)


CASES = [
    pytest.param("sft", {}, id="sft"),
    pytest.param("opd", {}, id="opd"),
    pytest.param("opd", {"reverse_kl": "full_vocab"}, id="opd-full-vocab"),
    pytest.param("guided_opd", {}, id="guided-opd"),
    pytest.param("guided_opd", {"teacher_turn_loss": "reverse_kl"}, id="both-reverse"),
    pytest.param(
        "guided_opd",
        {"student_turn_loss": "forward_kl", "teacher_turn_loss": "reverse_kl"},
        id="swapped",
    ),
    pytest.param("guided_opd", {"teacher_turn_loss": "none"}, id="teacher-masked"),
    pytest.param("guided_opd", {"teacher_weight": 2.5}, id="teacher-weight"),
    pytest.param("tcod", {}, id="tcod"),
    pytest.param("grpo", {"kl_coef": 0.05}, id="grpo"),
    pytest.param("mentor", {"kl_coef": 0.05, "reference": "expert"}, id="mentor"),
]


def config_for(method: str, overrides: dict, aggregation: str):
    values = {"method": method, "env_id": "WebShop-v0", "student": "micro", "eval_episodes": 0}
    if method in ("opd", "guided_opd", "tcod"):
        values["teacher"] = "micro"
    if method in ("grpo", "mentor"):
        values["group_size"] = 2
    return load_config(None, {**values, **overrides, "aggregation": aggregation})


def trainer_step(method: str, config, examples, data, micro_batch_size: int):
    """The step's loss and gradient as the trainer computes them, in micro-batches."""
    data.student.zero_grad(set_to_none=True)
    ctx = SimpleNamespace(
        config=config, pad_id=0, teacher_model=data.teacher, ref_model=data.reference
    )
    trained = [e for e in examples if e.trained_tokens > 0]
    loss, _ = accumulate(
        METHODS[method],
        data.student,
        trained,
        ctx,
        micro_batch_size=micro_batch_size,
        aggregation=config.aggregation,
        tokens=sum(e.trained_tokens for e in trained),
        sequences=len(trained),
    )
    grads = [p.grad.clone() for p in data.student.parameters() if p.grad is not None]
    return loss, grads


def method_examples(method: str, config, examples):
    """The examples the method would train on: the actors its loss covers."""
    if method == "sft":
        return [Example(e.prompt_ids, e.completion_ids, actor="expert") for e in examples]
    if method == "guided_opd":
        kinds = {"student": config.student_turn_loss, "teacher": config.teacher_turn_loss}
        return [e for e in examples if kinds[e.actor] != "none"]
    return [e for e in examples if e.actor == "student"]


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize(("method", "overrides"), CASES)
def test_the_trainers_loss_and_gradient_match_the_definition_however_split(
    method: str, overrides: dict, aggregation: str, recorded
) -> None:
    config = config_for(method, overrides, aggregation)
    examples = method_examples(method, config, recorded.examples)
    assert len(examples) >= 2
    whole, whole_grads = trainer_step(method, config, examples, recorded, len(examples))
    split, split_grads = trainer_step(method, config, examples, recorded, 1)
    recorded.student.zero_grad(set_to_none=True)
    direct = direct_step_loss(method, config, examples, recorded)
    direct.backward()
    direct = float(direct.detach())
    direct_grads = [p.grad.clone() for p in recorded.student.parameters() if p.grad is not None]
    assert whole == pytest.approx(direct, rel=1e-4, abs=1e-6)
    assert split == pytest.approx(whole, rel=1e-5, abs=1e-7)
    for grads in (split_grads, direct_grads):
        assert len(grads) == len(whole_grads)
        for got, expected in zip(grads, whole_grads):
            assert torch.allclose(got, expected, atol=1e-5, rtol=1e-3)


def test_the_batch_exercises_the_clip(recorded) -> None:
    ratios = []
    for example in recorded.examples:
        if example.actor == "student":
            logp, _ = token_logprobs(recorded.student, example)
            ratios.append(torch.exp(logp.detach() - torch.tensor(example.logp_old)))
    ratio = torch.cat(ratios)
    assert ((ratio > 1.2) | (ratio < 0.8)).any() and ((ratio > 0.8) & (ratio < 1.2)).any()
