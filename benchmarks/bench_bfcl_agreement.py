"""Agreement of FunctionCall-v0's BFCL mode with BFCL's own AST checker, on real BFCL entries.

For every Python AST and (ir)relevance entry of BFCL's data files, the script
writes model responses of many kinds (the gold calls, optional arguments left
out or filled with ``""``/``[]``/``null``, strings with other case, tabs,
non-breaking spaces, quotes or punctuation, retyped numbers and booleans,
retyped list items, nested strings, extra, missing and unexpected parameters,
dotted and underscored names, dropped, doubled, reordered and swapped calls,
unreadable and empty responses, more than 8 calls, ...), then judges each
response three ways:

* BFCL's ``ast_checker`` (gorilla ``bfcl_eval``), run by ``--bfcl-python`` (an
  interpreter where ``pip install bfcl-eval`` worked; this project ships none of
  its code);
* FunctionCall-v0 in BFCL mode, the response sent as one completion;
* the mentorgym call judge (``match_calls``) on the same calls: what the env
  used for BFCL data before BFCL mode (the baseline).

Both ``bfcl_mode`` settings are measured against the matching BFCL model setting
(``underscore_to_dot`` true and false). The last line is the headline figure.

    python -m venv /tmp/bfcl && /tmp/bfcl/bin/pip install bfcl-eval
    python benchmarks/bench_bfcl_agreement.py --bfcl-python /tmp/bfcl/bin/python
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402,F401
from envs.tooluse.bfcl import AST_CATEGORIES, RELEVANCE_CATEGORIES  # noqa: E402
from envs.tooluse.calls import format_tool_calls  # noqa: E402
from envs.tooluse.checkers import match_calls  # noqa: E402
from envs.tooluse.schema import normalize_tool_name, schema_name, schema_parameters  # noqa: E402
from envs.tooluse.tasks import ToolTask, load_bfcl  # noqa: E402

# BFCL v4 file names: every Python AST and relevance category ("simple" is v3's name).
FILES = tuple(c for c in AST_CATEGORIES + RELEVANCE_CATEGORIES if c != "simple")

# Run by the official interpreter: reads cases on stdin, writes one verdict per line.
DRIVER = r"""
import json, sys
from bfcl_eval.constants.enums import Language
from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
from bfcl_eval.utils import is_empty_output

def model(flag):
    for key, config in MODEL_CONFIG_MAPPING.items():
        if config.underscore_to_dot == flag and "_" not in key:
            return key.replace("/", "_")
    raise SystemExit("no BFCL model with underscore_to_dot=%s" % flag)

models = {"fc": model(True), "prompting": model(False)}
for line in sys.stdin:
    case = json.loads(line)
    calls, category = case["calls"], case["category"]
    if "relevance" in category:
        called = calls is not None and not is_empty_output(calls)
        valid = (not called) if "irrelevance" in category else called
    elif calls is None:
        valid = False
    else:
        try:
            result = ast_checker(case["functions"], calls, case["gold"], Language.PYTHON,
                                 category, models[case["mode"]])
            valid = bool(result["valid"])
        except Exception as error:  # noqa: BLE001
            valid = "crash: %s" % type(error).__name__
    print(json.dumps(valid), flush=False)
"""


# -- responses ------------------------------------------------------------------------------


def _first(options: Any) -> Any:
    chosen = [o for o in options if o != ""] if isinstance(options, list) else []
    return chosen[0] if chosen else None


def _name(name: str, mode: str) -> str:
    return name.replace(".", "_") if mode == "fc" else name


def _gold_calls(task: ToolTask, mode: str, fill: str = "first") -> list[dict[str, Any]]:
    calls = []
    for gold in task.meta["bfcl_ground_truth"]:
        ((name, params),) = gold.items()
        arguments = {}
        for key, options in params.items():
            optional = isinstance(options, list) and "" in options
            if fill == "min" and optional:
                continue
            if fill == "last":
                chosen = [o for o in options if o != ""]
                value = chosen[-1] if chosen else None
            else:
                value = _first(options)
            if value is None and (optional or not isinstance(options, list) or not options):
                continue
            arguments[key] = value
        calls.append({_name(name, mode): arguments})
    return calls


def _schema_of(task: ToolTask, name: str) -> dict[str, Any]:
    for function in task.meta["bfcl_functions"]:
        if function["name"] == name or function["name"].replace(".", "_") == name:
            return function["parameters"].get("properties", {})
    return {}


def _map_values(calls: list[dict[str, Any]], change: Any) -> list[dict[str, Any]] | None:
    """Apply ``change(value) -> new | None`` to the first argument it changes."""
    out = copy.deepcopy(calls)
    for call in out:
        ((_, arguments),) = call.items()
        for key, value in arguments.items():
            new = change(value)
            if new is not None and (new != value or type(new) is not type(value)):
                arguments[key] = new
                return out
    return None


def _deep(value: Any, change: Any, depth: int = 0) -> Any:
    """``value`` with ``change`` applied to strings below the top level."""
    if isinstance(value, dict):
        return {k: _deep(v, change, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, change, depth + 1) for v in value]
    if isinstance(value, str) and depth >= 2:
        return change(value)
    return value


def _retype_items(value: Any, kind: str) -> Any:
    if isinstance(value, list):
        return [_retype_items(v, kind) for v in value]
    if kind == "float" and type(value) is int:
        return float(value)
    if kind == "int" and type(value) is float and value.is_integer():
        return int(value)
    if kind == "bool" and type(value) is bool:
        return int(value)
    return value


def responses(task: ToolTask, mode: str) -> list[tuple[str, list[dict[str, Any]] | None, str]]:
    """(kind, decoded calls or None, completion text) for one task."""
    category = task.meta["bfcl_category"]
    out: list[tuple[str, list[dict[str, Any]] | None, str]] = []

    def add(kind: str, calls: list[dict[str, Any]] | None, text: str | None = None) -> None:
        if calls is None and text is None:
            return
        if text is None:
            assert calls is not None
            text = format_tool_calls(
                [{"name": next(iter(c)), "arguments": next(iter(c.values()))} for c in calls]
            )
        out.append((kind, calls, text))

    add("empty", [], "")
    add("text_only", [], "I cannot help with that.")
    add("malformed", None, '<tool_call>\n{"name": "f", "arguments": {\n</tool_call>')
    add("unclosed", None, '<tool_call>\n{"name": "f", "arguments": {}}')
    functions = task.meta["bfcl_functions"]
    if category in RELEVANCE_CATEGORIES:
        if functions:
            first = functions[0]
            required = first["parameters"].get("required", [])
            arguments = {key: "x" for key in required}
            add("call_first_function", [{_name(first["name"], mode): arguments}])
        add("call_unknown_function", [{"unknown_function": {}}])
        return out
    base = _gold_calls(task, mode)
    add("gold_first", base)
    add("gold_min", _gold_calls(task, mode, "min"))
    add("gold_last", _gold_calls(task, mode, "last"))
    add("think_nbsp", base, "<think>a\xa0b</think>\n" + format_tool_calls(_plain(base)))
    for kind, fill in (("fill_empty_string", ""), ("fill_empty_list", []), ("fill_null", None)):
        calls = copy.deepcopy(base)
        for call, gold in zip(calls, task.meta["bfcl_ground_truth"]):
            ((_, params),) = gold.items()
            ((_, arguments),) = call.items()
            for key, options in params.items():
                if isinstance(options, list) and "" in options:
                    arguments[key] = fill
        add(kind, calls)
    # Each option of the first parameter with several.
    for call_index, gold in enumerate(task.meta["bfcl_ground_truth"]):
        ((_, params),) = gold.items()
        for key, options in params.items():
            if isinstance(options, list) and len([o for o in options if o != ""]) > 1:
                for number, option in enumerate(o for o in options if o != ""):
                    calls = copy.deepcopy(base)
                    next(iter(calls[call_index].values()))[key] = option
                    add(f"option_{min(number, 3)}", calls)
                break
        break

    def strings(change: Any) -> list[dict[str, Any]] | None:
        return _map_values(base, lambda v: change(v) if isinstance(v, str) and v else None)

    add("string_upper", strings(str.upper))
    add("string_tab", strings(lambda v: v.replace(" ", "\t", 1) if " " in v else None))
    add("string_nbsp", strings(lambda v: v.replace(" ", "\xa0", 1) if " " in v else None))
    add("string_newline", strings(lambda v: v + "\n"))
    add("string_punct", strings(lambda v: v[:1] + ",./-_*^" + v[1:]))
    add("string_quote", strings(lambda v: v.replace('"', "'") if '"' in v else v + "'"))
    add("string_dquote", strings(lambda v: v.replace("'", '"') if "'" in v else None))
    add("string_other", strings(lambda v: v + "x"))
    add("int_as_float", _map_values(base, lambda v: float(v) if type(v) is int else None))
    add(
        "float_as_int",
        _map_values(base, lambda v: int(v) if type(v) is float and v.is_integer() else None),
    )
    add(
        "number_as_string", _map_values(base, lambda v: str(v) if type(v) in (int, float) else None)
    )
    add(
        "digits_as_int",
        _map_values(base, lambda v: int(v) if isinstance(v, str) and v.isdigit() else None),
    )
    add("bool_as_int", _map_values(base, lambda v: int(v) if type(v) is bool else None))
    add("bool_as_string", _map_values(base, lambda v: str(v).lower() if type(v) is bool else None))
    add("bool_flipped", _map_values(base, lambda v: not v if type(v) is bool else None))
    add("number_off", _map_values(base, lambda v: v + 1 if type(v) in (int, float) else None))
    add(
        "list_items_float",
        _map_values(base, lambda v: _retype_items(v, "float") if type(v) is list else None),
    )
    add(
        "list_items_int",
        _map_values(base, lambda v: _retype_items(v, "int") if type(v) is list else None),
    )
    add(
        "list_bools_int",
        _map_values(base, lambda v: _retype_items(v, "bool") if type(v) is list else None),
    )
    add(
        "list_reversed",
        _map_values(base, lambda v: v[::-1] if type(v) is list and len(v) > 1 else None),
    )
    add(
        "list_upper",
        _map_values(
            base,
            lambda v: (
                [s.upper() if isinstance(s, str) else s for s in v] if type(v) is list else None
            ),
        ),
    )
    add("list_empty", _map_values(base, lambda v: [] if type(v) is list and v else None))
    add("list_wrapped", _map_values(base, lambda v: [v] if type(v) in (str, int, float) else None))
    add(
        "nested_upper",
        _map_values(base, lambda v: _deep(v, str.upper) if type(v) in (list, dict) else None),
    )
    add(
        "nested_space",
        _map_values(
            base, lambda v: _deep(v, lambda s: s + " ") if type(v) in (list, dict) else None
        ),
    )
    add(
        "dict_extra_key",
        _map_values(base, lambda v: {**v, "extra_key": 1} if type(v) is dict else None),
    )
    add(
        "dict_drop_key",
        _map_values(base, lambda v: dict(list(v.items())[1:]) if type(v) is dict and v else None),
    )
    add("dict_as_string", _map_values(base, lambda v: json.dumps(v) if type(v) is dict else None))
    calls = copy.deepcopy(base)
    first_arguments = next(iter(calls[0].values()))
    if first_arguments:
        first_arguments[next(iter(first_arguments))] = None
        add("value_null", calls)
    # Parameters: extra, dropped, schema-only.
    first_name = next(iter(base[0]))
    properties = _schema_of(task, first_name)
    calls = copy.deepcopy(base)
    next(iter(calls[0].values()))["unexpected_parameter"] = 1
    add("extra_param", calls)
    schema_only = [k for k in properties if k not in next(iter(base[0].values()))]
    if schema_only:
        calls = copy.deepcopy(base)
        spec = properties[schema_only[0]]
        default = spec.get("default", "x" if spec.get("type") == "string" else 1)
        next(iter(calls[0].values()))[schema_only[0]] = default
        add("schema_param_added", calls)
    arguments = next(iter(base[0].values()))
    if arguments:
        calls = copy.deepcopy(base)
        first_key = next(iter(arguments))
        del next(iter(calls[0].values()))[first_key]
        add("drop_param", calls)
    # Names.
    raw = next(iter(task.meta["bfcl_ground_truth"][0]))
    for kind, name in (("name_dotted", raw), ("name_underscored", raw.replace(".", "_")),
                       ("name_upper", raw.upper())):  # fmt: skip
        calls = copy.deepcopy(base)
        calls[0] = {name: next(iter(calls[0].values()))}
        add(kind, calls)
    others = [f["name"] for f in functions if f["name"] != raw]
    if others:
        calls = copy.deepcopy(base)
        calls[0] = {_name(others[0], mode): next(iter(calls[0].values()))}
        add("name_other_function", calls)
    # Calls.
    add("drop_call", base[:-1])
    add("double_call", [*base, base[0]])
    add("nine_calls", [base[0]] * 9)
    if len(base) > 1:
        add("reverse_calls", base[::-1])
        add("rotate_calls", base[1:] + base[:1])
        swapped = _swap(base)
        if swapped is not None:
            add("swap_values", swapped)
    return out


def _plain(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": next(iter(c)), "arguments": next(iter(c.values()))} for c in calls]


def _swap(calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Two calls of one function exchange the value of a parameter they both set differently."""
    for i in range(len(calls)):
        for j in range(i + 1, len(calls)):
            (name_i, args_i), (name_j, args_j) = (
                next(iter(calls[i].items())),
                next(iter(calls[j].items())),
            )
            if name_i != name_j:
                continue
            for key in args_i:
                if key in args_j and args_i[key] != args_j[key]:
                    out = copy.deepcopy(calls)
                    out[i][name_i][key], out[j][name_j][key] = args_j[key], args_i[key]
                    return out
    return None


# -- judging --------------------------------------------------------------------------------


def project_verdict(env: Any, task_id: str, text: str) -> bool:
    env.reset(options={"task_id": task_id})
    _, _, terminated, _, info = env.step(text)
    assert terminated, "BFCL mode judges the first completion"
    return bool(info["won"])


def baseline_verdict(task: ToolTask, calls: list[dict[str, Any]] | None) -> bool:
    """The mentorgym judge (what BFCL data was judged with before BFCL mode)."""
    if calls is None:
        return task.meta["bfcl_category"] in ("irrelevance", "live_irrelevance")
    made = [{"name": next(iter(c)), "arguments": next(iter(c.values()))} for c in calls]
    schemas = {schema_name(s): schema_parameters(s) for s in task.tools}
    gold = [{normalize_tool_name(k): v for k, v in g.items()} for g in task.gold_calls]
    if task.meta["bfcl_category"] == "live_relevance":
        return bool(made)
    return match_calls(made, gold, schemas).correct


def official_verdicts(python: str, cases: list[dict[str, Any]]) -> list[Any]:
    payload = "".join(json.dumps(case) + "\n" for case in cases)
    done = subprocess.run(
        [python, "-c", DRIVER], input=payload, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the official checker failed to run:\n{done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines()]


def data_dir(python: str) -> Path:
    done = subprocess.run(
        [python, "-c", "import bfcl_eval, os; print(os.path.dirname(bfcl_eval.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{python} cannot import bfcl_eval (pip install bfcl-eval into a separate venv, "
            "then pass its python as --bfcl-python)"
        )
    return Path(done.stdout.strip()) / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bfcl-python", default=sys.executable, help="interpreter with bfcl-eval")
    parser.add_argument("--data", type=Path, help="BFCL data dir (default: bfcl_eval's own)")
    parser.add_argument("--limit", type=int, default=0, help="entries per file (0: all)")
    parser.add_argument("--mode", choices=("fc", "prompting", "both"), default="both")
    args = parser.parse_args()
    data = args.data or data_dir(args.bfcl_python)
    modes = ("fc", "prompting") if args.mode == "both" else (args.mode,)
    rows: collections.Counter[tuple[str, str]] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    disagreements: list[str] = []
    cases, ours, baseline, labels = [], [], [], []
    entries = 0
    for name in FILES:
        questions = next(
            (
                p
                for p in sorted(data.glob("BFCL_v*.json"))
                if p.name.split("_", 2)[2] == f"{name}.json"
            ),
            None,
        )
        if questions is None:
            print(f"skipped {name}: no file in {data}")
            continue
        answers = data / "possible_answer" / questions.name
        answer_file = str(answers) if answers.exists() else None
        tasks = load_bfcl(questions, answer_file)
        if args.limit:
            tasks = tasks[: args.limit]
        entries += len(tasks)
        for mode in modes:
            env = gym.make(
                "FunctionCall-v0",
                task_file=str(questions),
                answer_file=answer_file,
                bfcl_mode=mode,
                admissible_actions="none",
            )
            for task in tasks:
                for kind, calls, text in responses(task, mode):
                    cases.append(
                        {
                            "functions": task.meta["bfcl_functions"],
                            "calls": calls,
                            "gold": task.meta["bfcl_ground_truth"],
                            "category": task.meta["bfcl_category"],
                            "mode": mode,
                        }
                    )
                    ours.append(project_verdict(env, task.id, text))
                    baseline.append(baseline_verdict(task, calls))
                    labels.append((mode, task.id, kind))
            env.close()
    official_all = official_verdicts(args.bfcl_python, cases)
    for official, mine, before, (mode, task_id, kind) in zip(official_all, ours, baseline, labels):
        if not isinstance(official, bool):
            rows[(kind, "crash")] += 1
            totals["crash"] += 1
            continue
        rows[(kind, "cases")] += 1
        rows[(kind, "after")] += mine == official
        rows[(kind, "before")] += before == official
        totals["cases"] += 1
        totals["after"] += mine == official
        totals["before"] += before == official
        totals["official_valid"] += official
        if mine != official and len(disagreements) < 20:
            disagreements.append(f"{mode} {task_id} {kind}: official {official}, ours {mine}")
    kinds_seen = sorted({kind for kind, _ in rows})
    print(f"{'kind':<22} {'cases':>7} {'before %':>9} {'after %':>8}")
    for kind in kinds_seen:
        n = rows[(kind, "cases")]
        if n:
            print(
                f"{kind:<22} {n:>7} {100 * rows[(kind, 'before')] / n:>9.2f} "
                f"{100 * rows[(kind, 'after')] / n:>8.2f}"
            )
    for line in disagreements:
        print("disagreement:", line)
    if totals["crash"]:
        print(f"cases where BFCL's checker raised (left out): {totals['crash']}")
    n = max(totals["cases"], 1)
    kinds_full = sum(
        rows[(k, "after")] == rows[(k, "cases")] for k in kinds_seen if rows[(k, "cases")]
    )
    print(
        f"entries {entries}, modes {', '.join(modes)}, kinds {len(kinds_seen)} "
        f"({kinds_full} at 100% after), official pass rate {100 * totals['official_valid'] / n:.2f}%"
    )
    print(
        f"agreement with BFCL's ast_checker over {totals['cases']} responses: BFCL mode "
        f"{100 * totals['after'] / n:.3f}% vs mentorgym judge {100 * totals['before'] / n:.3f}%"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
