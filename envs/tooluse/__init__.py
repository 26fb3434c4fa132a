"""Tool-calling environments: ToolMath-v0, FunctionCall-v0 and SearchQA-v0.

* ``env.ToolEnv``: the shared episode logic (Qwen/Hermes ``<tool_call>`` blocks
  in, ``<tool_response>`` blocks out, a final answer ends the episode);
* ``sandbox.Sandbox``: runs every tool call in a confined worker process with
  wall-clock, CPU, memory and output limits, no network and no file writes;
* ``toolmath``, ``functioncall``, ``searchqa``: the three envs, each with its
  judge; their tools are ``mathtools``, ``apitools`` and ``searchtool``;
* ``generators``: the task generators and their data tables, one module per
  family (``tools/make_tool_tasks.py`` writes the shipped task files with them);
* ``tasks``: the JSONL task schema and the BFCL / HotpotQA loaders.

See ``docs/tool-tasks.md`` for the user guide. Submodules are imported on
demand, so ``import envs`` stays light.
"""

from __future__ import annotations
