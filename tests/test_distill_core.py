"""distill.schedules, the methods' per-token losses (on tensors) and the rewards against
direct computations."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from distill.batching import Batch
from distill.losses import aggregate, kl_k3, reverse_kl_per_position
from distill.methods import grpo, opd
from distill.methods.grpo import group_advantages as grpo_advantages
from distill.methods.mentor import text_reward
from distill.rewards import MentorRewardConfig, sparse_reward, tool_set_match
from distill.schedules import intervention_prob

# -- schedules -----------------------------------------------------------------


def test_cosine_schedule_at_known_points() -> None:
    n = 250
    assert intervention_prob(0, n) == pytest.approx(1.0)
    assert intervention_prob(int(0.4 * n), n) == pytest.approx(0.5)
    for step in (200, 201, 240, 250, 400):
        assert intervention_prob(step, n) == pytest.approx(0.0, abs=1e-12)
    values = [intervention_prob(s, n) for s in range(n)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_other_schedule_kinds() -> None:
    n = 100
    assert intervention_prob(40, n, kind="linear") == pytest.approx(0.5)
    assert intervention_prob(0, n, kind="exponential") == pytest.approx(1.0)
    assert intervention_prob(80, n, kind="exponential") == pytest.approx(0.0, abs=1e-12)
    assert (
        0.0 < intervention_prob(20, n, kind="exponential") < intervention_prob(20, n, kind="linear")
    )
    assert intervention_prob(55, n, kind="constant", start=0.3) == 0.3
    assert intervention_prob(0, n, start=0.8, end=0.2) == pytest.approx(0.8)
    assert intervention_prob(90, n, start=0.8, end=0.2) == pytest.approx(0.2)
    assert intervention_prob(50, n, ratio=1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "step"}, {"ratio": 0.0}, {"ratio": 1.5}, {"start": 1.2}, {"end": -0.1}],
)
def test_schedule_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        intervention_prob(1, 10, **kwargs)
    with pytest.raises(ValueError):
        intervention_prob(1, 0)


# -- losses --------------------------------------------------------------------


def random_batch(seed: int = 0, shape: tuple[int, int] = (3, 7)):
    g = torch.Generator().manual_seed(seed)
    logp_old = -torch.rand(shape, generator=g) * 3
    logp = (logp_old + 0.5 * torch.randn(shape, generator=g)).clamp(max=0).requires_grad_(True)
    logp_teacher = -torch.rand(shape, generator=g) * 3
    mask = (torch.rand(shape, generator=g) > 0.3).float()
    mask[0, :] = 1.0
    return logp, logp_old, logp_teacher, mask


def tensor_batch(
    logp_old: torch.Tensor,
    logp_teacher: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor | None = None,
) -> Batch:
    """A student batch made of tensors (what collate makes of recorded turns)."""
    rows = mask.shape[0]
    return Batch(
        examples=[],
        mask=mask,
        logp_old=logp_old,
        has_old=torch.ones(rows, dtype=torch.bool),
        logp_teacher=logp_teacher,
        advantages=advantages if advantages is not None else torch.zeros(rows),
        actors=["student"] * rows,
    )


def opd_loss(logp, logp_old, logp_teacher, mask, clip=0.2):
    """OPD's loss as the trainer takes it: distill.methods.opd's per-token term, token-mean."""
    ctx = SimpleNamespace(config=SimpleNamespace(reverse_kl="sampled", clip=clip))
    batch = tensor_batch(logp_old, logp_teacher, mask)
    per_token = opd.reverse_kl(logp, None, batch, ctx) * batch.actor_mask("student")
    return aggregate(per_token, mask)


def full_vocab_reverse_kl(student_logits, teacher_logits, mask):
    return aggregate(reverse_kl_per_position(student_logits, teacher_logits), mask)


def nll_loss(logp, mask):
    return aggregate(-logp, mask)  # distill.methods.sft's per-token loss


def grpo_loss(logp, logp_old, logp_ref, advantages, mask, clip=0.2, kl_coef=0.001):
    batch = tensor_batch(logp_old, torch.zeros_like(logp_old), mask, advantages)
    config = SimpleNamespace(clip=clip, kl_coef=kl_coef)
    per_token, _ = grpo.token_loss(logp, logp_ref, batch, config)
    return aggregate(per_token, mask)


def test_opd_loss_matches_a_direct_computation_including_the_clip_region() -> None:
    logp, logp_old, logp_teacher, mask = random_batch()
    loss = opd_loss(logp, logp_old, logp_teacher, mask, clip=0.2)
    expected, count = 0.0, 0
    for i in range(logp.shape[0]):
        for j in range(logp.shape[1]):
            if mask[i, j]:
                a = float(logp_teacher[i, j] - logp_old[i, j])
                r = math.exp(float(logp[i, j].detach() - logp_old[i, j]))
                expected += -min(r * a, min(max(r, 0.8), 1.2) * a)
                count += 1
    assert loss.item() == pytest.approx(expected / count, rel=1e-5)
    ratio = torch.exp(logp - logp_old).detach()
    assert ((ratio > 1.2) | (ratio < 0.8)).any()  # the batch exercises the clip


def test_opd_gradient_is_zero_in_the_clipped_region_and_ignores_masked_tokens() -> None:
    logp, logp_old, logp_teacher, mask = random_batch(1)
    opd_loss(logp, logp_old, logp_teacher, mask).backward()
    advantage = logp_teacher - logp_old
    ratio = torch.exp(logp - logp_old).detach()
    clipped = ((ratio > 1.2) & (advantage > 0)) | ((ratio < 0.8) & (advantage < 0))
    assert torch.all(logp.grad[clipped] == 0)
    assert torch.all(logp.grad[mask == 0] == 0)
    live = (~clipped) & (mask > 0)
    expected = -(advantage * ratio)[live] / mask.sum()
    assert torch.allclose(logp.grad[live], expected, atol=1e-6)


def test_one_step_opd_gradient_is_the_sampled_reverse_kl_gradient() -> None:
    _, logp_old, logp_teacher, mask = random_batch(2)
    logp = logp_old.clone().requires_grad_(True)
    opd_loss(logp, logp_old, logp_teacher, mask).backward()
    # d/dlogp of mean(-(logp_T - logp_old) * logp): the score-function form of KL(pi_S || pi_T)
    assert torch.allclose(logp.grad, -(logp_teacher - logp_old) * mask / mask.sum(), atol=1e-7)


def test_sequence_mean_aggregation() -> None:
    values = torch.tensor([[1.0, 3.0, 0.0], [10.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert aggregate(values, mask).item() == pytest.approx(14 / 3)
    assert aggregate(values, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 10) / 2)
    with pytest.raises(ValueError):
        aggregate(values, mask, "sum")


def test_full_vocab_reverse_kl_value_and_expected_gradient_equal_opd() -> None:
    torch.manual_seed(0)
    vocab = 6
    student_logits = torch.randn(1, 1, vocab, requires_grad=True)
    teacher_logits = torch.randn(1, 1, vocab)
    mask = torch.ones(1, 1)
    kl = full_vocab_reverse_kl(student_logits, teacher_logits, mask)
    p_s = torch.softmax(student_logits, -1)
    direct = (
        p_s * (torch.log_softmax(student_logits, -1) - torch.log_softmax(teacher_logits, -1))
    ).sum()
    assert kl.item() == pytest.approx(direct.item(), rel=1e-6)
    kl.backward()
    exact_gradient = student_logits.grad.clone()
    # OPD's expected gradient: the sum over every token y of pi_S(y) * grad of the OPD loss on y.
    expected = torch.zeros_like(student_logits)
    for y in range(vocab):
        logits = student_logits.detach().clone().requires_grad_(True)
        log_probs = torch.log_softmax(logits, -1)[..., y]
        logp_teacher = torch.log_softmax(teacher_logits, -1)[..., y]
        opd_loss(log_probs, log_probs.detach(), logp_teacher, mask).backward()
        expected += p_s.detach()[..., y] * logits.grad
    assert torch.allclose(exact_gradient, expected, atol=1e-6)


def test_full_vocab_kl_rejects_different_vocabularies() -> None:
    with pytest.raises(ValueError, match="vocabularies"):
        full_vocab_reverse_kl(torch.zeros(1, 1, 4), torch.zeros(1, 1, 5), torch.ones(1, 1))


def test_nll_loss_counts_only_masked_tokens() -> None:
    logp = torch.tensor([[-1.0, -2.0, -30.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert nll_loss(logp, mask).item() == pytest.approx(1.5)


def test_kl_k3_is_nonnegative_and_zero_at_equality() -> None:
    logp, _, logp_ref, _ = random_batch(3)
    values = kl_k3(logp.detach(), logp_ref)
    assert torch.all(values >= -1e-7)
    assert torch.allclose(kl_k3(logp_ref, logp_ref), torch.zeros_like(logp_ref))


def test_grpo_advantages_are_group_normalised() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.2, 0.2, 7.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 2])
    adv = grpo_advantages(rewards, groups)
    first = rewards[:3]
    assert torch.allclose(adv[:3], (first - first.mean()) / (first.std() + 1e-6))
    assert torch.allclose(adv[3:5], torch.zeros(2))  # equal rewards: no signal
    assert adv[5] == 0.0  # a lone rollout: no baseline


def test_grpo_loss_combines_surrogate_and_kl() -> None:
    logp, logp_old, logp_ref, mask = random_batch(4)
    advantages = torch.tensor([0.5, -1.0, 2.0])
    loss = grpo_loss(logp, logp_old, logp_ref, advantages, mask, clip=0.2, kl_coef=0.001)
    ratio = torch.exp(logp - logp_old)
    a = advantages[:, None].expand_as(logp)
    surrogate = -torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
    kl = torch.exp(logp_ref - logp) - (logp_ref - logp) - 1
    expected = ((surrogate + 0.001 * kl) * mask).sum() / mask.sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# -- rewards -------------------------------------------------------------------

VALID = ["add", "multiply", "divide", "power"]


def mentor_reward(
    *,
    finished: bool,
    answered: bool,
    correct: bool | float,
    student_tools: list[str],
    teacher_tools: list[str],
    valid_tools: list[str],
    variant: str = "exact",
    weights: dict | None = None,
) -> float:
    """MENTOR's reward on an env without tools (distill.methods.mentor.text_reward) of a
    rollout built to have these properties: its action types are ``student_tools``, the
    env did not understand those outside ``valid_tools``."""
    from distill.rollout import Rollout
    from tests.builders import make_turn

    rollout = Rollout(env_id="ALFWorld-v0", task_id="t", seed=0, group=0)
    for kind in student_tools or ["look"]:
        rollout.turns.append(
            make_turn(
                actor="student",
                prompt_ids=[1],
                completion_ids=[2],
                action_type=kind,
                invalid_action=kind not in valid_tools,
            )
        )
    if not student_tools:
        rollout.turns[0].actor = "expert"  # a finished episode whose student called nothing
    rollout.turns[-1].finished = finished
    rollout.terminated = answered
    graded = not isinstance(correct, bool)
    rollout.won, rollout.score = bool(correct), float(correct)
    settings = MentorRewardConfig(variant=variant, weights=weights or {})
    return text_reward(rollout, teacher_tools, settings, graded=graded)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"finished": False, "answered": True, "correct": True}, 0.0),
        ({"finished": True, "answered": False, "correct": False}, 0.1),
        # correct, same tools, no hallucination: 0.7 + 0.3 + 0.1
        ({"finished": True, "answered": True, "correct": True}, 1.1),
        # wrong, same tools: 0 + 0.3 * 1 * 0.2 + 0.1
        ({"finished": True, "answered": True, "correct": False}, 0.16),
    ],
)
def test_mentor_reward_gates(case: dict, expected: float) -> None:
    reward = mentor_reward(
        **case,
        student_tools=["add", "multiply"],
        teacher_tools=["multiply", "add"],
        valid_tools=VALID,
    )
    assert reward == pytest.approx(expected)


def test_mentor_reward_hallucination_and_variants() -> None:
    common = {"finished": True, "answered": True, "correct": True, "valid_tools": VALID}
    student, teacher = ["add", "sqrt"], ["add", "multiply"]
    # sqrt does not exist here: nohall = 0
    assert mentor_reward(
        student_tools=student, teacher_tools=teacher, variant="exact", **common
    ) == pytest.approx(0.7)
    assert mentor_reward(
        student_tools=student, teacher_tools=teacher, variant="overlap", **common
    ) == pytest.approx(1.0)
    assert mentor_reward(
        student_tools=student, teacher_tools=teacher, variant="f1", **common
    ) == pytest.approx(0.85)
    assert mentor_reward(
        student_tools=["add"], teacher_tools=teacher, variant="none", **common
    ) == pytest.approx(0.8)
    weights = {"correct": 1.0, "match": 0.0, "no_hallucination": 0.0}
    assert (
        mentor_reward(student_tools=student, teacher_tools=teacher, weights=weights, **common)
        == 1.0
    )
    with pytest.raises(ValueError, match="unknown reward weights"):
        mentor_reward(student_tools=[], teacher_tools=[], weights={"bonus": 1.0}, **common)
    with pytest.raises(ValueError, match="match variant"):
        mentor_reward(student_tools=[], teacher_tools=[], variant="jaccard", **common)


def test_tool_set_match_f1() -> None:
    assert tool_set_match(["a", "b", "c"], ["a", "b"], "f1") == pytest.approx(0.8)
    assert tool_set_match([], [], "f1") == 1.0 and tool_set_match(["a"], [], "f1") == 0.0
    assert tool_set_match(["a", "a"], ["a"], "exact") == 1.0


def test_graded_outcome_and_sparse_reward() -> None:
    graded = mentor_reward(
        finished=True,
        answered=True,
        correct=0.5,
        student_tools=["add"],
        teacher_tools=["add"],
        valid_tools=VALID,
    )
    assert graded == pytest.approx(0.7 * 0.5 + 0.3 * 0.2 + 0.1)
    assert sparse_reward(finished=False, answered=True, correct=True) == 0.0
    assert sparse_reward(finished=True, answered=True, correct=True) == 1.0
    assert sparse_reward(finished=True, answered=True, correct=False) == 0.1
    assert sparse_reward(finished=True, answered=False, correct=False) == 0.1
