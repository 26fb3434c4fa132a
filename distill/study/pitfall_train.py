"""The Pitfall study's training: small MLP policies on the vectorised env, every arm.

Everything a method decides comes from the project's own code, not copies:
the teacher's probability per step from ``distill.schedules.intervention_prob``
(with Guided-OPD's defaults read off ``GuidedOPDConfig``), who acts each turn
from ``envs.multiagent.selectors`` (``BernoulliSelector`` / ``FixedSelector``,
one per episode, asked once per turn), the per-token terms from
``distill.losses`` (OPD's clipped surrogate with A = log pi_T - log pi_old,
the exact reverse KL, the k3 KL) aggregated by ``distill.losses.aggregate``,
GRPO's group advantages from ``distill.methods.grpo``, the sparse reward from
``distill.rewards`` and MENTOR's reward from ``distill.methods.mentor.text_reward``
on the project's ``Rollout`` records. What differs from the LM trainer: a
policy is an MLP over the observation's features (obstacle, mode, pit), one
action is one token, and one optimiser step (Adam) follows each batch.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill.losses import aggregate, kl_k3, ppo_clip_surrogate, reverse_kl_per_position
from distill.methods import grpo
from distill.methods.grpo import GRPOConfig
from distill.methods.guided_opd import GuidedOPDConfig
from distill.methods.mentor import text_reward
from distill.rewards import MentorRewardConfig, sparse_reward
from distill.rollout import Rollout, Turn
from distill.schedules import intervention_prob
from envs.multiagent.selectors import BernoulliSelector, FixedSelector
from envs.pitfall.dynamics import ACTIONS, MAX_TURNS, task_id
from envs.pitfall.vector import FEATURES, PitfallVec

__all__ = [
    "ARMS",
    "MENTOR_ARMS",
    "Arm",
    "guided_defaults",
    "make_policy",
    "mentor_train",
    "probe",
    "split_tasks",
    "train_arm",
    "train_imitation",
    "warm_start",
]


def _default(config: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(config) if f.name == name)


def guided_defaults() -> dict[str, Any]:
    """Guided-OPD's schedule settings and PPO clip, as the trainer's config class has them."""
    return {
        name: _default(GuidedOPDConfig, name)
        for name in ("beta_start", "beta_end", "beta_ratio", "clip", "teacher_weight")
    }


@dataclass(frozen=True)
class Arm:
    """One training arm: who acts (``selector``: student, teacher, or a schedule kind), the
    term of student turns (``sampled`` / ``full_vocab`` reverse KL) and of teacher turns
    (``forward_kl`` or ``none``)."""

    name: str
    selector: str  # "student" | "teacher" | a schedule kind of distill.schedules
    student_loss: str = "sampled"
    teacher_loss: str = "forward_kl"
    beta_start: float | None = None  # None: GuidedOPDConfig's default


ARMS: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("opd_sampled", "student", "sampled", "none"),
        Arm("opd_full", "student", "full_vocab", "none"),
        Arm("guided_opd", "cosine"),
        Arm("guided_masked", "cosine", teacher_loss="none"),
        Arm("guided_constant", "constant", beta_start=0.5),
        Arm("sft", "teacher", student_loss="none"),
    )
}
MENTOR_ARMS: tuple[str, ...] = ("grpo_sparse", "mentor_exact", "mentor_f1", "mentor_shuffled")


def split_tasks(split: str, count: int, offset: int = 0) -> list[str]:
    return [task_id(split, offset + i) for i in range(count)]


def make_policy(hidden: int, seed: int) -> torch.nn.Module:
    """A one-hidden-layer MLP from the observation's features to the six moves' logits."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, len(ACTIONS))
    )


def _logits(policy: torch.nn.Module, features: np.ndarray) -> torch.Tensor:
    return policy(torch.from_numpy(features))


def _sample(logits: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1).numpy()


# -- rollouts ---------------------------------------------------------------------------------


@dataclass
class Trace:
    """Every acting state of a batch of episodes, flattened over turns."""

    features: np.ndarray  # [states, FEATURES]
    moves: np.ndarray  # the move taken
    expert: np.ndarray  # the oracle's move there
    teacher_turn: np.ndarray  # bool: the teacher acted
    in_pit: np.ndarray
    turn: np.ndarray  # turn index within the episode
    episode: np.ndarray
    logp_old: np.ndarray  # the acting student's log-prob of the move (student turns)
    won: np.ndarray  # per episode
    score: np.ndarray  # per episode


def play(
    tasks: Sequence[str],
    student: torch.nn.Module | None,
    teacher: torch.nn.Module | None,
    selectors: Sequence[Any],
    seed: int,
    *,
    length: int | None = None,
    max_turns: int = MAX_TURNS,
    expert_noise: float | None = None,
) -> Trace:
    """Play one episode per task; ``selectors[i].select(turn)`` names who acts (``student``,
    ``teacher`` or ``expert``). ``expert_noise``: the expert's move is replaced by a random
    one with that probability (DART's noise injection)."""
    vec = PitfallVec(tasks, max_turns=max_turns, **({"length": length} if length else {}))
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for i, selector in enumerate(selectors):
        selector.reset(seed + 7919 * (i + 1))
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("features", "moves", "expert", "teacher", "pit", "turn", "ep", "logp")
    }
    rows = np.arange(vec.n)
    for t in range(max_turns):
        acting = ~vec.done
        if not acting.any():
            break
        idx = rows[acting]
        who = np.array([selectors[i].select(t) for i in idx])
        x = vec.features()[acting]
        expert = vec.expert()[acting]
        moves = expert.copy()
        logp = np.zeros(len(idx), dtype=np.float32)
        with torch.no_grad():
            if student is not None and (who == "student").any():
                logits = _logits(student, x)
                sampled = _sample(logits, generator)
                mask = who == "student"
                moves[mask] = sampled[mask]
                logp = torch.log_softmax(logits, -1)[torch.arange(len(idx)), sampled].numpy()
            if teacher is not None and (who == "teacher").any():
                sampled = _sample(_logits(teacher, x), generator)
                moves[who == "teacher"] = sampled[who == "teacher"]
        if expert_noise:
            noisy = (who == "expert") & (rng.random(len(idx)) < expert_noise)
            moves[noisy] = rng.integers(len(ACTIONS), size=int(noisy.sum()))
        full = vec.expert().copy()
        full[acting] = moves
        for key, value in (
            ("features", x),
            ("moves", moves),
            ("expert", expert),
            ("teacher", who == "teacher"),
            ("pit", vec.in_pit[acting]),
            ("turn", np.full(len(idx), t)),
            ("ep", idx),
            ("logp", logp),
        ):
            columns[key].append(value)
        vec.step(full)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}
    return Trace(
        features=cat["features"].astype(np.float32).reshape(-1, FEATURES),
        moves=cat["moves"].astype(np.int64),
        expert=cat["expert"].astype(np.int64),
        teacher_turn=cat["teacher"].astype(bool),
        in_pit=cat["pit"].astype(bool),
        turn=cat["turn"].astype(np.int64),
        episode=cat["ep"].astype(np.int64),
        logp_old=cat["logp"].astype(np.float32),
        won=vec.won.copy(),
        score=vec.score.copy(),
    )


def fixed(who: str, n: int) -> list[FixedSelector]:
    return [FixedSelector(who, agents=("student", "teacher", "expert")) for _ in range(n)]


# -- supervised training: teachers and warm starts ---------------------------------------------


def _nll_step(policy, optimiser, features: np.ndarray, labels: np.ndarray) -> float:
    logp = torch.log_softmax(_logits(policy, features), -1)
    per_token = -logp[torch.arange(len(labels)), torch.from_numpy(labels)][None, :]
    loss = aggregate(per_token, torch.ones_like(per_token))
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def expert_data(tasks: Sequence[str], noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States visited by the expert (with DART noise ``noise``) and the oracle's move there."""
    trace = play(tasks, None, None, fixed("expert", len(tasks)), seed, expert_noise=noise)
    return trace.features, trace.expert


def train_imitation(
    hidden: int, tasks: Sequence[str], noise: float, steps: int, lr: float, seed: int
) -> torch.nn.Module:
    """A teacher: imitation of the expert on clean (noise 0, T1) or noise-injected (T2) data."""
    policy = make_policy(hidden, seed)
    features, labels = expert_data(tasks, noise, seed)
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = rng.integers(len(labels), size=256)
        _nll_step(policy, optimiser, features[batch], labels[batch])
    return policy


def warm_start(
    hidden: int,
    seed: int,
    dev: Sequence[str],
    demos: Sequence[str],
    *,
    target: float,
    lr: float,
    max_steps: int,
    length: int | None = None,
    max_turns: int = MAX_TURNS,
) -> tuple[torch.nn.Module, dict[str, float]]:
    """A student trained on clean expert turns, one small batch at a time, until its dev
    success (sampled) reaches ``target``: a small but non-zero start."""
    policy = make_policy(hidden, 1000 + seed)
    trace = play(demos, None, None, fixed("expert", len(demos)), seed, length=length,
                 max_turns=max_turns)  # fmt: skip
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    success = 0.0
    for step in range(1, max_steps + 1):
        batch = rng.integers(len(trace.expert), size=32)
        _nll_step(policy, optimiser, trace.features[batch], trace.expert[batch])
        success = float(
            play(dev, policy, None, fixed("student", len(dev)), 12345, length=length,
                 max_turns=max_turns).won.mean()
        )  # fmt: skip
        if success >= target:
            return policy, {"warm_steps": step, "warm_dev_success": success}
    return policy, {"warm_steps": max_steps, "warm_dev_success": success}


# -- measurements --------------------------------------------------------------------------


def _probs(policy: torch.nn.Module, features: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(_logits(policy, features), -1)


def probe(
    student: torch.nn.Module | None,
    teacher: torch.nn.Module,
    tasks: Sequence[str],
    seed: int,
    *,
    who: str = "student",
    max_turns: int = MAX_TURNS,
) -> dict[str, Any]:
    """``who`` plays ``tasks`` alone (sampling); returns its success and score, the off-path
    fraction of the states it visited, the teacher's probability of the oracle's move there
    (all, on-path, off-path), and the exact reverse KL(student || teacher) per turn."""
    actor = student if who == "student" else teacher
    trace = play(tasks, actor if who == "student" else None, actor if who == "teacher" else None,
                 fixed(who, len(tasks)), seed, max_turns=max_turns)  # fmt: skip
    teacher_p = _probs(teacher, trace.features)
    right = teacher_p[torch.arange(len(trace.expert)), torch.from_numpy(trace.expert)].numpy()
    pit = trace.in_pit
    out: dict[str, Any] = {
        "success": float(trace.won.mean()),
        "score": float(trace.score.mean()),
        "offpath": float(pit.mean()),
        "teacher_acc": float(right.mean()),
        "teacher_acc_on": float(right[~pit].mean()) if (~pit).any() else float("nan"),
        "teacher_acc_off": float(right[pit].mean()) if pit.any() else float("nan"),
    }
    if student is not None:
        with torch.no_grad():
            kl = reverse_kl_per_position(
                _logits(student, trace.features), _logits(teacher, trace.features)
            ).numpy()
        per_turn = [
            float(kl[trace.turn == t].mean()) if (trace.turn == t).any() else float("nan")
            for t in range(max_turns)
        ]
        out["reverse_kl"] = float(kl.mean())
        out["kl_per_turn"] = per_turn
        student_p = _probs(student, trace.features)
        out["student_acc"] = float(
            student_p[torch.arange(len(trace.expert)), torch.from_numpy(trace.expert)].mean()
        )
    return out


# -- the Guided-OPD arms -------------------------------------------------------------------


def _selectors(arm: Arm, step: int, total: int, n: int, seed: int) -> tuple[list[Any], float]:
    if arm.selector in ("student", "teacher"):
        return fixed(arm.selector, n), float(arm.selector == "teacher")
    settings = guided_defaults()
    start = settings["beta_start"] if arm.beta_start is None else arm.beta_start
    beta = intervention_prob(
        step, total, kind=arm.selector, start=start, end=settings["beta_end"],
        ratio=settings["beta_ratio"],
    )  # fmt: skip
    agents = ("teacher", "student")
    return [BernoulliSelector(beta, agents=agents, seed=seed + i) for i in range(n)], beta


def arm_loss(
    arm: Arm, student: torch.nn.Module, teacher: torch.nn.Module, trace: Trace
) -> torch.Tensor:
    """The step's scalar loss: each turn's term by who wrote it (Guided-OPD's per-actor rule)."""
    logits = _logits(student, trace.features)[None]  # [1, states, actions]: one "sequence"
    logp_all = torch.log_softmax(logits, -1)
    moves = torch.from_numpy(trace.moves)[None, :, None]
    logp = logp_all.gather(-1, moves).squeeze(-1)
    teacher_turn = torch.from_numpy(trace.teacher_turn)[None].float()
    student_turn = 1.0 - teacher_turn
    per_token = torch.zeros_like(logp)
    mask = torch.zeros_like(logp)
    if arm.student_loss != "none":
        with torch.no_grad():
            teacher_logits = _logits(teacher, trace.features)[None]
        if arm.student_loss == "full_vocab":
            term = reverse_kl_per_position(logits, teacher_logits)
        else:
            logp_old = torch.from_numpy(trace.logp_old)[None]
            logp_teacher = torch.log_softmax(teacher_logits, -1).gather(-1, moves).squeeze(-1)
            term = ppo_clip_surrogate(
                logp, logp_old, logp_teacher - logp_old, guided_defaults()["clip"]
            )
        per_token = per_token + term * student_turn
        mask = mask + student_turn
    if arm.teacher_loss == "forward_kl":
        per_token = per_token + guided_defaults()["teacher_weight"] * -logp * teacher_turn
        mask = mask + teacher_turn
    return aggregate(per_token, mask, "token-mean")


def train_arm(
    arm: Arm,
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    *,
    steps: int,
    episodes: int,
    lr: float,
    seed: int,
    train_pool: int,
    dev: Sequence[str],
    probe_every: int,
    teacher_dev: dict[str, Any],
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """Train a copy of ``student`` under ``arm`` for ``steps`` steps of ``episodes`` episodes;
    returns it and the curve (a probe on ``dev`` at step 0, every ``probe_every`` and at the end)."""
    student = copy.deepcopy(student)
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    curve = []

    def measure(step: int, extra: dict[str, Any]) -> None:
        row = probe(student, teacher, dev, 777 + step)
        row["teacher_visited_acc"] = teacher_dev["teacher_acc"]
        curve.append({"step": step, **row, **extra})

    measure(0, {})
    for step in range(steps):
        tasks = [task_id("train", int(i)) for i in rng.integers(train_pool, size=episodes)]
        selectors, beta = _selectors(arm, step, steps, episodes, seed * 100_003 + step * 1_009)
        trace = play(tasks, student, teacher, selectors, seed * 1_000_003 + step)
        loss = arm_loss(arm, student, teacher, trace)
        optimiser.zero_grad()
        if loss.requires_grad:
            loss.backward()
            optimiser.step()
        done = step + 1
        if done % probe_every == 0 or done == steps:
            student_states = ~trace.teacher_turn
            measure(
                done,
                {
                    "beta": beta,
                    "train_offpath_student": float(trace.in_pit[student_states].mean())
                    if student_states.any()
                    else float("nan"),
                    "loss": float(loss.detach()),
                },
            )
    return student, curve


# -- the MENTOR arms (tool-selection variant) ----------------------------------------------


def _as_rollout(trace: Trace, episode: int, won: bool) -> Rollout:
    """An episode as the project's ``Rollout``: moves are the "tools"; the turn cap forces
    the answer, so every episode is finished and answered."""
    turns = [
        Turn(
            actor="student",
            prompt_ids=[],
            completion_ids=[],
            completion=ACTIONS[m],
            action=ACTIONS[m],
            observation="",
            reward=0.0,
            score=0.0,
            action_type=ACTIONS[m],
            invalid_action=False,
            finished=True,
        )  # fmt: skip
        for m in trace.moves[trace.episode == episode]
    ]
    return Rollout(env_id="Pitfall-v0", task_id="", seed=None, group=0, turns=turns,
                   won=bool(won), terminated=True)  # fmt: skip


def reference_types(
    teacher: torch.nn.Module, tasks: Sequence[str], attempts: int, seed: int, **variant: Any
) -> dict[str, list[str]]:
    """Per task, the move names of the teacher's first successful episode ([] if none)."""
    out: dict[str, list[str]] = {t: [] for t in tasks}
    for attempt in range(attempts):
        missing = [t for t in tasks if not out[t]]
        if not missing:
            break
        trace = play(missing, None, teacher, fixed("teacher", len(missing)), seed + attempt,
                     **variant)  # fmt: skip
        for k, task in enumerate(missing):
            if trace.won[k]:
                out[task] = [ACTIONS[m] for m in trace.moves[trace.episode == k]]
    return out


def mentor_rewards(arm: str, trace: Trace, references: Sequence[list[str]]) -> list[float]:
    if arm == "grpo_sparse":
        return [sparse_reward(finished=True, answered=True, correct=bool(w)) for w in trace.won]
    variant = "f1" if arm == "mentor_f1" else "exact"
    settings = MentorRewardConfig(variant=variant)
    return [
        text_reward(_as_rollout(trace, k, trace.won[k]), references[k], settings)
        for k in range(len(trace.won))
    ]


def mentor_train(
    arm: str,
    student: torch.nn.Module,
    references: dict[str, list[str]],
    *,
    steps: int,
    groups: int,
    group_size: int,
    lr: float,
    seed: int,
    pool: Sequence[str],
    dev: Sequence[str],
    probe_every: int,
    variant: dict[str, Any],
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """GRPO (one optimiser step per batch, GRPOConfig's clip and kl_coef to the initial
    student) with the sparse reward or MENTOR's; ``mentor_shuffled`` gives each task the
    reference of another task of the pool."""
    if arm not in MENTOR_ARMS:
        raise ValueError(f"unknown MENTOR arm {arm!r}; choose one of {list(MENTOR_ARMS)}")
    reference_model = copy.deepcopy(student)
    student = copy.deepcopy(student)
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    clip, kl_coef = _default(GRPOConfig, "clip"), _default(GRPOConfig, "kl_coef")
    rng = np.random.default_rng(seed)
    shuffled = list(pool)
    np.random.default_rng(4242).shuffle(shuffled)
    swap = dict(zip(pool, shuffled))
    curve = []

    def measure(step: int) -> None:
        trace = play(dev, student, None, fixed("student", len(dev)), 777 + step, **variant)
        curve.append({"step": step, "success": float(trace.won.mean())})

    measure(0)
    for step in range(steps):
        chosen = [pool[int(i)] for i in rng.integers(len(pool), size=groups)]
        tasks = [t for t in chosen for _ in range(group_size)]
        trace = play(tasks, student, None, fixed("student", len(tasks)),
                     seed * 1_000_003 + step, **variant)  # fmt: skip
        refs = [references[swap[t] if arm == "mentor_shuffled" else t] for t in tasks]
        rewards = mentor_rewards(arm, trace, refs)
        group_ids = torch.arange(groups).repeat_interleave(group_size)
        advantages = grpo.group_advantages(torch.tensor(rewards), group_ids)
        logp = torch.log_softmax(_logits(student, trace.features), -1)
        logp = logp[torch.arange(len(trace.moves)), torch.from_numpy(trace.moves)][None]
        advantage = advantages[torch.from_numpy(trace.episode)][None]
        per_token = ppo_clip_surrogate(
            logp, torch.from_numpy(trace.logp_old)[None], advantage, clip
        )
        if kl_coef > 0:
            with torch.no_grad():
                ref = torch.log_softmax(_logits(reference_model, trace.features), -1)
                ref = ref[torch.arange(len(trace.moves)), torch.from_numpy(trace.moves)][None]
            per_token = per_token + kl_coef * kl_k3(logp, ref)
        loss = aggregate(per_token, torch.ones_like(per_token))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (step + 1) % probe_every == 0 or step + 1 == steps:
            measure(step + 1)
    return student, curve
