"""The methods, one file each, listed as data in ``METHODS``.

A method's file holds its whole algorithm: its config class (``Config``, the
paper's defaults, each field documented once and checked when built), how its
rollouts are collected (``make_examples(ctx, step) -> (examples, metrics)``:
who acts each turn, where episodes start and stop) and, once per file, the
loss its tokens get. Module flags tell the trainer what a method needs:
``NEEDS_TEACHER``, ``NEEDS_SHARED_VOCAB`` (the teacher scores student tokens),
``NEEDS_REFERENCE_MODEL`` (GRPO's KL to the initial student) and
``NEEDS_EXPERT`` (the env's oracle); ``prepare(ctx)`` runs once before training.
"""

from __future__ import annotations

from distill.methods import grpo, guided_opd, mentor, opd, sft, tcod

__all__ = ["CONFIG_CLASSES", "METHODS"]

#: Every method by its config name.
METHODS = {
    "sft": sft,
    "opd": opd,
    "guided_opd": guided_opd,
    "tcod": tcod,
    "grpo": grpo,
    "mentor": mentor,
}
#: The config classes by their class names (``GuidedOPDConfig`` ...).
CONFIG_CLASSES = {module.Config.__name__: module.Config for module in METHODS.values()}
