"""The models of a run, built from the config's specs by the one agent factory.

* The **student** is trained here: a size built from a config (speaking the
  teacher's tokenizer when the teacher is a model folder, or ``tokenizer``'s),
  a model folder, or ``hf:<hub name>``.
* The **teacher** is any model spec: in-process (a size, a folder,
  ``hf:<name>``) or served (``openai:<base-url>#<model>``). A served teacher is
  driven by token ids (``OpenAIAgent(api="completions")``): it continues
  exactly the student's prompt tokens and scores the student's tokens, so it
  must tokenize as the student does, which :func:`check_teacher_tokens` checks
  against the server before the first step.
* ``recipe`` / ``recipe-teacher`` name the embedded offline teacher
  (``distill.recipe``), built once into a cache and reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.factory import make_agent, model_spec
from distill.config import RECIPE_STUDENT, RECIPE_TEACHER, ConfigError, TrainConfig

__all__ = [
    "check_shared_vocabulary",
    "check_teacher_tokens",
    "load_student",
    "load_teacher",
    "resolve_recipe_models",
    "student_tokenizer",
]


def resolve_recipe_models(config: TrainConfig, *, quiet: bool = False) -> TrainConfig:
    """``config`` with ``recipe`` (teacher) and ``recipe-teacher`` (student) replaced by the
    embedded teacher's folder, which is built first if it is not in the cache."""
    if RECIPE_TEACHER not in (config.teacher, config.student) and config.student != RECIPE_STUDENT:
        return config
    from distill.recipe import ensure_recipe_teacher

    folder = ensure_recipe_teacher(config, quiet=quiet)
    changes: dict[str, Any] = {}
    if config.teacher == RECIPE_TEACHER:
        changes["teacher"] = folder
    if config.student == RECIPE_STUDENT:
        changes["student"] = folder
    return dataclasses.replace(config, **changes)


def student_tokenizer(config: TrainConfig, run_dir: Path, *, resume: bool) -> Any | None:
    """The tokenizer a student built from a size speaks (None: the project's own): a resumed
    run's saved one, else ``config.tokenizer``, else an in-process teacher folder's."""
    from transformers import AutoTokenizer

    source = config.tokenizer
    teacher = model_spec(config.teacher) if config.teacher else ""
    if source is None and teacher.startswith("hf:") and Path(teacher[3:]).is_dir():
        source = teacher[3:]  # a student built here speaks the teacher's tokenizer
    if resume and (run_dir / "tokenizer" / "tokenizer_config.json").exists():
        source = str(run_dir / "tokenizer")  # a resumed run keeps the tokenizer it started with
    return AutoTokenizer.from_pretrained(source) if source else None


def _model_options(config: TrainConfig, actor: str) -> dict[str, Any]:
    return {
        "max_new_tokens": config.max_new_tokens,
        "prompt": config.prompt_config(),
        "temperature": config.train_temperature,
        "actor": actor,
        "device": config.device,
    }


def load_student(config: TrainConfig, tokenizer: Any | None) -> Any:
    """The student ``HFAgent`` (sampling at the training temperature)."""
    spec = model_spec(config.student)
    options = _model_options(config, "student")
    if spec.startswith("tiny:") and tokenizer is not None:
        options["tokenizer"] = tokenizer
    try:
        return make_agent(spec, seed=config.seed, options=options)
    except ValueError as error:
        raise ConfigError(f"student: {error}") from None


def load_teacher(config: TrainConfig, student: Any) -> Any:
    """The teacher agent (frozen), in-process or served (module docstring)."""
    assert config.teacher is not None
    spec = model_spec(config.teacher)
    options = {**_model_options(config, "teacher"), **config.teacher_options}
    if spec.startswith("tiny:"):
        options["tokenizer"] = student.tokenizer
    elif spec.startswith("openai:"):
        options.update(api="completions", tokenizer=student.tokenizer)
    try:
        teacher = make_agent(spec, seed=config.seed + 1, options=options)
    except ValueError as error:
        raise ConfigError(f"teacher: {error}") from None
    model = getattr(teacher, "model", None)
    if hasattr(model, "requires_grad_"):
        model.requires_grad_(False)
    return teacher


def check_shared_vocabulary(student: Any, teacher: Any) -> None:
    """OPD-family methods score the student's tokens with the teacher: the vocabularies must match."""
    if student.tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
        raise ConfigError(
            "teacher: the teacher and the student use different tokenizers; on-policy "
            "distillation scores the student's tokens with the teacher, so both must share a "
            "vocabulary (pick a teacher of the student's model family, or use sft, which needs "
            "only the teacher's text)"
        )


def check_teacher_tokens(teacher: Any, probe_texts: Sequence[str]) -> None:
    """A served teacher must split text into the student's token ids (its ``tokenizer`` is the
    student's); one clear ConfigError line if the server's tokenizer differs."""
    from agents.openai_agent import OpenAIAgent, TokenizerMismatch

    if not isinstance(teacher, OpenAIAgent):
        return
    try:
        teacher.check_tokenizer(probe_texts)
    except TokenizerMismatch as error:
        raise ConfigError(
            f"teacher: {error}. A served teacher scores and continues the student's token ids, "
            "so it must use the student's tokenizer (serve a model of the student's family, or "
            "build the student with the teacher's tokenizer: tokenizer: <folder>)"
        ) from None
