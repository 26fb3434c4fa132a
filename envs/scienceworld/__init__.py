"""ScienceWorld-v0: the real ScienceWorld simulator (Java) behind the mentorgym contract."""

from __future__ import annotations

from envs.scienceworld.tasks import SPLITS, TaskInfo, parse_task_id, task_ids, tasks

__all__ = ["SPLITS", "TaskInfo", "parse_task_id", "task_ids", "tasks"]
