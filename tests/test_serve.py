"""tools/serve.py: the OpenAI-compatible server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from agents.hf import HFAgent  # noqa: E402
from agents.tiny import build_tiny, save_tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import serve  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def local():
    model, tokenizer = build_tiny("tiny", seed=0)
    return HFAgent(model, tokenizer, max_new_tokens=8)


@pytest.fixture(scope="module")
def server(local):
    running = serve.make_server(local, host="127.0.0.1", port=0, model_name="tiny").start()
    try:
        yield running
    finally:
        running.stop()


def call(url: str, payload: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_models_and_health(server) -> None:
    status, body = call(server.url + "/models")
    assert status == 200 and body["data"][0]["id"] == "tiny"
    status, body = call(server.url.removesuffix("/v1") + "/health")
    assert status == 200 and body["status"] == "ok"


def test_chat_completion_with_logprobs_and_token_ids(server, local) -> None:
    payload = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "go to the kitchen"}],
        "max_tokens": 6,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
        "return_token_ids": True,
    }
    status, body = call(server.url + "/chat/completions", payload)
    assert status == 200 and body["object"] == "chat.completion"
    choice = body["choices"][0]
    ids, prompt_ids = choice["token_ids"], body["prompt_token_ids"]
    assert len(ids) == body["usage"]["completion_tokens"] <= 6
    assert body["usage"]["prompt_tokens"] == len(prompt_ids)
    assert local.tokenizer.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    entries = choice["logprobs"]["content"]
    assert len(entries) == len(ids) and all(len(e["top_logprobs"]) == 3 for e in entries)
    expected = local.logprobs([prompt_ids], [ids])[0]
    assert all(abs(e["logprob"] - v) < 1e-4 for e, v in zip(entries, expected))
    assert choice["message"]["content"] == local.tokenizer.decode(ids, skip_special_tokens=True)
    # Greedy: the top alternative is the chosen token.
    assert all(abs(e["top_logprobs"][0]["logprob"] - e["logprob"]) < 1e-6 for e in entries)


def test_stop_strings_are_cut_unless_asked_to_keep(server) -> None:
    base = {"prompt": "search[red shirt]", "max_tokens": 8, "temperature": 0}
    _, free = call(server.url + "/completions", base)
    text = free["choices"][0]["text"]
    middle = [k for k in range(len(text) // 2, len(text) - 1) if text[k : k + 2].strip()]
    assert middle, f"the greedy completion {text!r} is too short to test"
    stop = text[middle[0] : middle[0] + 2]
    first = text.find(stop)
    _, cut = call(server.url + "/completions", {**base, "stop": [stop]})
    choice = cut["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == stop
    assert choice["text"] == text[:first]
    _, kept = call(
        server.url + "/completions", {**base, "stop": stop, "include_stop_str_in_output": True}
    )
    kept_text = kept["choices"][0]["text"]
    assert kept_text.startswith(text[: first + len(stop)]) and text.startswith(kept_text)


def test_completions_prompt_logprobs_and_echo_agree_with_local_scoring(server, local) -> None:
    ids = local.encode("<|im_start|>user\nlook around<|im_end|>\n")
    status, body = call(
        server.url + "/completions",
        {"prompt": ids, "max_tokens": 1, "prompt_logprobs": 2, "temperature": 0},
    )
    assert status == 200
    entries = body["choices"][0]["prompt_logprobs"]
    assert entries[0] is None and len(entries) == len(ids)
    expected = local.logprobs([ids[:1]], [ids[1:]])[0]
    for position, value in enumerate(expected, start=1):
        entry = entries[position][str(ids[position])]
        assert abs(entry["logprob"] - value) < 1e-4 and entry["rank"] >= 1
        assert len(entries[position]) >= 2  # the token plus the top alternatives
    status, echo = call(
        server.url + "/completions", {"prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 0}
    )
    assert status == 200
    values = echo["choices"][0]["logprobs"]["token_logprobs"]
    assert values[0] is None and all(abs(a - b) < 1e-4 for a, b in zip(values[1:], expected))
    assert echo["choices"][0]["text"] == local.tokenizer.decode(ids)


def test_batched_prompts_and_concurrent_requests(server) -> None:
    status, body = call(server.url + "/completions", {"prompt": ["a b", "c d e"], "max_tokens": 3})
    assert status == 200 and [c["index"] for c in body["choices"]] == [0, 1]
    results: list = []

    def one(i: int) -> None:
        results.append(
            call(server.url + "/completions", {"prompt": f"room {i}", "max_tokens": 4, "seed": i})
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 6 and all(status == 200 for status, _ in results)


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"messages": [], "max_tokens": 2}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": True}, 400, "streaming"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "model": "gpt-9"}, 404, "does not exist"),
        (
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            400,
            "temperature",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [""]}, 400, "stop"),
    ],
)
def test_bad_chat_requests_get_clear_errors(
    server, payload: dict, status: int, message: str
) -> None:
    got, body = call(server.url + "/chat/completions", payload)
    assert got == status and message in body["error"]["message"]


def test_bad_bodies_routes_and_ids(server) -> None:
    status, body = call(server.url + "/chat/completions", raw=b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = call(server.url + "/nowhere", {"x": 1})
    assert status == 404
    status, body = call(server.url + "/completions", {"prompt": [1, 10**7], "max_tokens": 1})
    assert status == 400 and "vocabulary" in body["error"]["message"]
    status, body = call(server.url + "/completions", {"prompt": "x", "max_tokens": 0})
    assert status == 400 and "echo" in body["error"]["message"]
    status, body = call(server.url + "/completions", {"prompt": "", "max_tokens": 1})
    assert status == 400


def test_command_line_server_starts_answers_and_stops(tmp_path: Path) -> None:
    path = save_tiny(tmp_path / "tiny", "tiny")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tools" / "serve.py"),
            str(path),
            "--port",
            "0",
            "--served-model-name",
            "t",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    try:
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "serving" not in line:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
        assert line.startswith("serving t at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        status, body = call(
            url + "/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        )
        assert status == 200 and body["model"] == "t"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == 0


def test_command_line_reports_a_missing_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "serve.py"),
            str(tmp_path / "missing"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: agent 'hf:{tmp_path / 'missing'}': no model folder {tmp_path / 'missing'}"
    ]
