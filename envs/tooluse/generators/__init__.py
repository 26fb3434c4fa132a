"""Task generators of the tool envs, apart from the envs that play the tasks.

One module per family (``toolmath``, ``functioncall``, ``searchqa``), each with
``generate_tasks(split, count, *, seed)`` and the data tables it draws from.
``tools/make_tool_tasks.py`` writes the shipped task files with them; the envs
read those files (ToolMath-v0's ``train_tasks=`` generates problems when made).
"""
