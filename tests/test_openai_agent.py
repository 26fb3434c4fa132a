"""OpenAIAgent against tools/serve.py on a free localhost port, and against servers that
are down, slow, erroring, or answering malformed JSON."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import agents  # noqa: E402
from agents.hf import HFAgent  # noqa: E402
from agents.openai_agent import (  # noqa: E402
    OpenAIAgent,
    ScoringNotSupported,
    ServerError,
    ServerUnreachable,
    normalise_base_url,
)
from agents.prompts import EpisodeState  # noqa: E402
from agents.tiny import build_tiny  # noqa: E402
from agents.trajectory import read_trajectories  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import benchmark  # noqa: E402
import serve  # noqa: E402

FAST = {"max_retries": 1, "backoff": 0.01, "max_backoff": 0.02}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def local():
    model, tokenizer = build_tiny("tiny", seed=0)
    return HFAgent(model, tokenizer, max_new_tokens=8, temperature=0)


@pytest.fixture(scope="module")
def server(local):
    running = serve.make_server(local, host="127.0.0.1", port=0, model_name="tiny").start()
    try:
        yield running
    finally:
        running.stop()


def room_info(task_id: str, turn: int = 0) -> dict:
    return {
        "task": f"leave room {task_id}",
        "task_id": task_id,
        "turn": turn,
        "admissible_actions": ["go north", "go south"],
    }


def test_agents_package_exports_openai_agent() -> None:
    assert agents.OpenAIAgent is OpenAIAgent
    assert normalise_base_url("http://127.0.0.1:9/") == "http://127.0.0.1:9/v1"
    assert normalise_base_url("http://h:1/api/v1/") == "http://h:1/api/v1"
    with pytest.raises(ValueError, match="http"):
        normalise_base_url("127.0.0.1:8000")


def test_act_batch_through_the_server_matches_the_local_model(server, local) -> None:
    agent = OpenAIAgent(
        server.url, max_tokens=8, temperature=0, seed=0, token_ids=True, tokenizer=local.tokenizer
    )
    assert agent.model == "tiny"  # asked from /models
    observations = ["You are in room a.", "You are in room b.", "You are in room c."]
    infos = [room_info(name) for name in "abc"]
    actions = agent.act_batch(observations, infos)
    assert len(actions) == 3
    for observation, info, turn, action in zip(observations, infos, agent.last_turns, actions):
        state = EpisodeState.start(observation, info)
        prompt_text, prompt_ids = local.prompt_ids(state)
        (expected,) = local.generate([prompt_ids])
        assert turn.prompt == prompt_text and turn.prompt_ids == prompt_ids
        assert turn.completion_ids == expected.token_ids and turn.action == action
        assert all(abs(a - b) < 1e-4 for a, b in zip(turn.logprobs, expected.logprobs))
        assert turn.finish_reason in ("stop", "length")
    again = agent.act_batch(["Still room a."], [room_info("a", 1)], slots=[0])
    assert "already taken 1 step(s)" in agent.last_turns[0].prompt and len(again) == 1


def test_scoring_through_prompt_logprobs_and_echo(server, local) -> None:
    agent = OpenAIAgent(server.url, "tiny", **FAST)
    prompts = [
        local.encode("<|im_start|>user\nopen the door<|im_end|>\n"),
        local.encode("take key"),
    ]
    completions = [local.encode("<action>open door</action>"), local.encode(" 1 and leave")]
    expected = local.logprobs(prompts, completions)
    got = agent.logprobs(prompts, completions)
    assert agent._scoring_method == "prompt_logprobs"
    for a, b in zip(got, expected):
        assert len(a) == len(b) and all(abs(x - y) < 1e-4 for x, y in zip(a, b))
    agent._scoring_method = "echo"
    for a, b in zip(agent.logprobs(prompts, completions), expected):
        assert all(abs(x - y) < 1e-4 for x, y in zip(a, b))
    assert agent.logprobs_trajectory(prompts[:1], completions[:1])[0] == pytest.approx(
        expected[0], abs=1e-4
    )
    with pytest.raises(ValueError, match="empty"):
        agent.logprobs([[]], [[1]])


def test_benchmark_runs_an_openai_agent(server, tmp_path: Path) -> None:
    out, trajectories = tmp_path / "bench.json", tmp_path / "t.jsonl"
    code = benchmark.main(
        [
            "--env", "WebShop-v0", "--agent", f"openai:{server.url}#tiny", "--episodes", "1",
            "--max-turns", "2", "--agent-kwargs", '{"max_tokens": 6, "max_retries": 0}',
            "--trajectories", str(trajectories), "--out", str(out), "--no-plot", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    records = read_trajectories(trajectories)
    assert [r["turn"] for r in records] == [1, 2] and all(
        r["agent"].startswith("openai:") for r in records
    )
    assert all(len(r["logprobs"]) == r["completion_tokens"] for r in records)


# -- servers that misbehave ----------------------------------------------------------


@contextmanager
def fake_server(
    respond: Callable[[BaseHTTPRequestHandler, dict | None], None],
) -> Iterator[tuple[str, list]]:
    """A localhost server whose every POST/GET is answered by ``respond``; yields (url, bodies)."""
    bodies: list = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            bodies.append(body)
            respond(self, body)

        do_GET = do_POST = _handle  # noqa: N815

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", bodies
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def reply(handler: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def chat_reply(content: str | None, finish_reason: str = "stop", **message) -> bytes:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish_reason,
    }
    return json.dumps({"choices": [choice]}).encode()


def test_a_server_that_is_down_gives_a_clear_error_quickly() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
    try:
        url = f"http://127.0.0.1:{holder.getsockname()[1]}/v1"
        agent = OpenAIAgent(url, "m", timeout=2, **FAST)
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="is the server running") as caught:
            agent.act("obs", room_info("a"))
        assert "2 attempt(s)" in str(caught.value) and url in str(caught.value)
        assert time.monotonic() - started < 10
    finally:
        holder.close()


def test_benchmark_reports_a_down_server_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{holder.getsockname()[1]}/v1"
        code = benchmark.main(
            [
                "--env", "WebShop-v0", "--agent", f"openai:{url}#m", "--episodes", "1",
                "--agent-kwargs", '{"max_retries": 0}', "--out", str(tmp_path / "b.json"),
                "--no-plot", "--quiet",
            ]
        )  # fmt: skip
        assert code == 3
        assert "is the server running" in capsys.readouterr().err
    finally:
        holder.close()


def test_a_slow_server_times_out_after_bounded_retries() -> None:
    def slow(handler, body) -> None:
        time.sleep(1.5)
        reply(handler, 200, chat_reply("<action>go north</action>"))

    with fake_server(slow) as (url, bodies):
        agent = OpenAIAgent(url, "m", timeout=0.3, **FAST)
        started = time.monotonic()
        with pytest.raises(ServerError, match="timeout"):
            agent.act("obs", room_info("a"))
        assert time.monotonic() - started < 5 and len(bodies) == 2


def test_malformed_json_is_reported() -> None:
    with fake_server(lambda handler, body: reply(handler, 200, b"{not json")) as (url, bodies):
        agent = OpenAIAgent(url, "m", **FAST)
        with pytest.raises(ServerError, match="not valid JSON") as caught:
            agent.act("obs", room_info("a"))
        assert not isinstance(caught.value, ServerUnreachable) and len(bodies) == 2


def test_a_reply_without_choices_is_reported() -> None:
    with fake_server(lambda handler, body: reply(handler, 200, b'{"choices": []}')) as (url, _):
        with pytest.raises(ServerError, match="no choices"):
            OpenAIAgent(url, "m", **FAST).act("obs", room_info("a"))


def test_transient_errors_are_retried_and_client_errors_are_not() -> None:
    calls = {"n": 0}

    def flaky(handler, body) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            reply(handler, 503, b'{"error": {"message": "warming up"}}')
        else:
            reply(handler, 200, chat_reply("<think>x</think><action>go south</action>"))

    with fake_server(flaky) as (url, _):
        agent = OpenAIAgent(url, "m", **FAST)
        assert agent.act("obs", room_info("a")) == "go south" and calls["n"] == 2
        assert agent.last_turn.logprobs is None  # the server sent none

    def refuse(handler, body) -> None:
        reply(handler, 400, b'{"error": {"message": "max_tokens is too large"}}')

    with fake_server(refuse) as (url, bodies):
        with pytest.raises(ServerError, match="HTTP 400: max_tokens is too large") as caught:
            OpenAIAgent(url, "m", **FAST).act("obs", room_info("a"))
        assert caught.value.status == 400 and len(bodies) == 1


def test_scoring_on_a_server_without_prompt_logprobs_says_so() -> None:
    def plain(handler, body) -> None:
        reply(
            handler,
            200,
            json.dumps({"choices": [{"index": 0, "text": "x", "logprobs": None}]}).encode(),
        )

    with fake_server(plain) as (url, bodies):
        agent = OpenAIAgent(url, "m", **FAST)
        with pytest.raises(ScoringNotSupported, match="prompt_logprobs"):
            agent.logprobs([[1, 2]], [[3]])
        assert {"prompt_logprobs", "echo"} <= {key for body in bodies for key in body}


def test_structured_tool_calls_become_tool_call_blocks_and_ids_flow_back() -> None:
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
        }
    ]

    def answer(handler, body) -> None:
        # As vLLM answers with --tool-call-parser: no content, the calls, finish "tool_calls".
        reply(handler, 200, chat_reply(None, finish_reason="tool_calls", tool_calls=calls))

    with fake_server(answer) as (url, bodies):
        agent = OpenAIAgent(url, "m", **FAST)
        info = {"task": "1+2?", "task_id": "m", "turn": 0, "tools": tools, "tool_results": []}
        action = agent.act("What is 1+2?", info)
        assert action == '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
        assert bodies[-1]["tools"] == tools and "stop" not in bodies[-1]
        assert agent.last_turn.finish_reason == "stop"  # the trajectory schema's word for it
        results = [{"name": "add", "ok": True, "content": "3"}]
        agent.act(
            "<tool_response>\n3\n</tool_response>", {**info, "turn": 1, "tool_results": results}
        )
        messages = bodies[-1]["messages"]
        assert messages[-2]["tool_calls"][0]["id"] == "call_1"
        assert messages[-1] == {
            "role": "tool",
            "content": "3",
            "name": "add",
            "tool_call_id": "call_1",
        }


def test_stop_string_cut_by_the_server_is_put_back() -> None:
    def cut(handler, body) -> None:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "<think>t</think><action>go north"},
            "finish_reason": "stop",
            "stop_reason": "</action>",
            "logprobs": {
                "content": [
                    {"token": "token_id:5", "logprob": -1.5},
                    {"token": "token_id:9", "logprob": -0.5},
                ]
            },
        }
        reply(handler, 200, json.dumps({"choices": [choice]}).encode())

    with fake_server(cut) as (url, bodies):
        agent = OpenAIAgent(url, "m", seed=3, **FAST)
        assert agent.act("obs", room_info("a")) == "go north"
        turn = agent.last_turn
        assert turn.completion.endswith("</action>") and turn.completion_ids == [5, 9]
        assert turn.logprobs == [-1.5, -0.5] and bodies[-1]["stop"] == ["</action>"]
        assert isinstance(bodies[-1]["seed"], int) and bodies[-1]["logprobs"] is True


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        OpenAIAgent("http://127.0.0.1:1/v1", "m", timeout=0)
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIAgent("http://127.0.0.1:1/v1", "m", concurrency=0)


def test_a_dripping_server_ends_within_the_deadline() -> None:
    """One byte every 0.5 s never trips the per-read timeout; the deadline ends it."""

    def drip(handler, body) -> None:
        payload = chat_reply("<action>go north</action>")
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        for byte in payload:
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:  # the client hung up: what we want
                return
            time.sleep(0.5)

    with fake_server(drip) as (url, bodies):
        agent = OpenAIAgent(url, "m", timeout=2, deadline=1.5, **FAST)
        started = time.monotonic()
        with pytest.raises(ServerError, match="no complete reply within the 1.5 s deadline"):
            agent.act("obs", room_info("a"))
        assert time.monotonic() - started < 1.5 + 0.5
        assert len(bodies) == 1  # the deadline covers the retries too


def test_a_dripping_header_ends_within_the_deadline() -> None:
    def drip_header(handler, body) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100):
            try:
                handler.wfile.write(b"X")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    with fake_server(drip_header) as (url, _):
        agent = OpenAIAgent(url, "m", timeout=2, deadline=1.0, **FAST)
        started = time.monotonic()
        with pytest.raises(ServerError, match="deadline"):
            agent.act("obs", room_info("a"))
        assert time.monotonic() - started < 1.0 + 0.5


def test_a_reply_larger_than_the_cap_is_refused() -> None:
    big = chat_reply("<action>go north</action>" + " " * 5000)
    with fake_server(lambda handler, body: reply(handler, 200, big)) as (url, bodies):
        agent = OpenAIAgent(url, "m", max_response_bytes=1000, **FAST)
        with pytest.raises(ServerError, match="max_response_bytes=1000"):
            agent.act("obs", room_info("a"))
        assert len(bodies) == 1  # not retried: the same request would get the same reply
    with pytest.raises(ValueError, match="deadline"):
        OpenAIAgent("http://127.0.0.1:1/v1", "m", deadline=0)


def test_benchmark_keeps_what_finished_when_the_server_dies_mid_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Two episodes of one turn each are answered; then the server fails for good."""
    answered = {"n": 0}

    def dies_after_two(handler, body) -> None:
        answered["n"] += 1
        if answered["n"] <= 2:
            reply(handler, 200, chat_reply("<action>search[red shoes]</action>"))
        else:
            reply(handler, 503, b'{"error": {"message": "the server is gone"}}')

    out = tmp_path / "bench.json"
    with fake_server(dies_after_two) as (url, _):
        code = benchmark.main(
            [
                "--env", "WebShop-v0", "--agent", f"openai:{url}#m", "--episodes", "4",
                "--max-turns", "1", "--agent-kwargs", '{"max_retries": 0}', "--out", str(out),
                "--quiet",
            ]
        )  # fmt: skip
    assert code == 3
    report = json.loads(out.read_text())
    assert report["incomplete"] is True and "the server is gone" in report["error"]
    (row,) = report["results"]
    assert row["incomplete"] is True and row["summary"]["episodes"] == 2
    assert [e["turns"] for e in row["episodes"]] == [1, 1]
    assert out.with_suffix(".png").stat().st_size > 1000
    err = capsys.readouterr().err
    assert "the server is gone" in err and "Traceback" not in err


def test_top_k_reaches_the_server_and_top_k_1_samples_greedily(server, local) -> None:
    # temperature 1 with top_k 1 leaves one candidate: the served draw is the greedy one.
    agent = OpenAIAgent(
        server.url,
        max_tokens=8,
        temperature=1.0,
        top_k=1,
        token_ids=True,
        tokenizer=local.tokenizer,
    )
    agent.act("You are in room a.", room_info("a"))
    state = EpisodeState.start("You are in room a.", room_info("a"))
    (expected,) = local.generate([local.prompt_ids(state)[1]])
    assert agent.last_turn.completion_ids == expected.token_ids


def test_top_k_and_min_p_are_sent_only_when_given() -> None:
    def answer(handler, body) -> None:
        reply(handler, 200, chat_reply("<action>go</action>"))

    with fake_server(answer) as (url, bodies):
        OpenAIAgent(url, "m", top_k=20, min_p=0.05, **FAST).act("obs", room_info("a"))
        OpenAIAgent(url, "m", **FAST).act("obs", room_info("a"))
    assert bodies[0]["top_k"] == 20 and bodies[0]["min_p"] == 0.05
    assert "top_k" not in bodies[1] and "min_p" not in bodies[1]
    with pytest.raises(ValueError, match="top_k must be an integer >= -1"):
        OpenAIAgent(url, "m", top_k=-2)
    with pytest.raises(ValueError, match="min_p must be between 0 and 1"):
        OpenAIAgent(url, "m", min_p=2)


def test_a_plain_vllm_refusing_tools_names_the_server_flags() -> None:
    message = (
        '{"error": {"message": "\\"auto\\" tool choice requires --enable-auto-tool-choice'
        ' and --tool-call-parser to be set"}}'
    )

    def refuse(handler, body) -> None:
        reply(handler, 400, message.encode())

    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    info = {"task": "1+2?", "task_id": "m", "turn": 0, "tools": tools, "tool_results": []}
    with fake_server(refuse) as (url, _):
        with pytest.raises(ServerError, match="--enable-auto-tool-choice --tool-call-parser"):
            OpenAIAgent(url, "m", **FAST).act("What is 1+2?", info)


def test_a_dead_vllm_engine_is_reported_at_once_with_the_flag_that_avoids_it() -> None:
    # vLLM's answer (HTTP 500) once its engine died, e.g. after the CPU build's
    # chunked-prefill crash on a seeded request; the server then exits, so retrying
    # would only end in "connection refused" and hide the cause.
    dead = (
        b'{"error": {"message": "EngineCore encountered an issue. See stack trace (above)'
        b' for the root cause.", "type": "InternalServerError", "code": 500}}'
    )

    def die(handler, body) -> None:
        reply(handler, 500, dead)

    with fake_server(die) as (url, bodies):
        agent = OpenAIAgent(url, "m", seed=1, max_retries=3, backoff=0.01)
        with pytest.raises(ServerError) as caught:
            agent.act("obs", room_info("a"))
        message = str(caught.value)
        assert len(bodies) == 1 and caught.value.status == 500 and "\n" not in message
        assert "engine died" in message and "--max-num-batched-tokens" in message
        with pytest.raises(ServerError, match="engine died and the server does not recover"):
            OpenAIAgent(url, "m", max_retries=3, backoff=0.01).act("obs", room_info("b"))
        assert len(bodies) == 2  # unseeded: no retry either, the log is named instead


def test_hf_style_options_map_to_openai_ones_or_are_named() -> None:
    from agents.factory import make_agent

    agent = make_agent("openai:http://127.0.0.1:9/v1#m", options={"max_new_tokens": 7, "top_k": 0})
    assert agent.max_tokens == 7 and agent.top_k == -1
    thinking = {"template_kwargs": {"enable_thinking": False}}
    agent = make_agent("openai:http://127.0.0.1:9/v1#m", options=thinking)
    assert agent.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    with pytest.raises(ValueError, match="takes no option 'num_beams'"):
        make_agent("openai:http://127.0.0.1:9/v1#m", options={"num_beams": 2})
    with pytest.raises(ValueError, match="use an hf: or tiny: agent"):
        make_agent("openai:http://127.0.0.1:9/v1#m", options={"mode": "score"})
    with pytest.raises(ValueError, match="max_new_tokens and max_tokens are the same option"):
        make_agent("openai:http://127.0.0.1:9/v1#m", options={"max_new_tokens": 7, "max_tokens": 8})


@pytest.mark.parametrize(
    ("spec", "option", "says"),
    [
        ("openai:http://127.0.0.1:9/v1#m", "temprature", "did you mean 'temperature'?"),
        ("openai:http://127.0.0.1:9/v1#m", "max_token", "did you mean 'max_tokens'?"),
        ("openai:http://127.0.0.1:9/v1#m", "max_batch_size", "an option of in-process models"),
        ("openai:http://127.0.0.1:9/v1#m", "repetition_penalty", '{"repetition_penalty": value}'),
        ("tiny:tiny", "max_tokens", "did you mean 'max_new_tokens'?"),
    ],
)
def test_an_unknown_option_is_named_in_one_line_with_the_likely_fix(spec, option, says) -> None:
    from agents.factory import make_agent

    with pytest.raises(ValueError) as caught:
        make_agent(spec, options={option: 1})
    message = str(caught.value)
    assert f"takes no option {option!r}" in message and says in message and "\n" not in message
