"""One file per method; each exposes ``make_examples(ctx, step) -> (examples, metrics)``.

Module flags tell the trainer what a method needs: ``NEEDS_TEACHER``,
``NEEDS_SHARED_VOCAB`` (the teacher scores student tokens),
``NEEDS_REFERENCE_MODEL`` (GRPO's KL to the initial student) and
``NEEDS_EXPERT`` (the env's oracle); ``prepare(ctx)`` runs once before training.
"""
