#!/usr/bin/env python
"""Serve a ``transformers`` causal LM over an OpenAI-compatible HTTP API.

A small server of our own, so that a teacher can run on another machine
without vLLM, and so that tests exercise ``OpenAIAgent`` against a real HTTP
server. Standard library only (``http.server``); requests that arrive together
are generated in one batch by a single model worker.

Endpoints (OpenAI wire format, plus the vLLM extensions noted):

* ``GET /v1/models``, ``GET /health``;
* ``POST /v1/chat/completions``: ``messages``, ``tools``, ``temperature``,
  ``top_p``, ``top_k`` (vLLM), ``max_tokens`` / ``max_completion_tokens``,
  ``stop``, ``seed``, ``logprobs``, ``top_logprobs``,
  ``include_stop_str_in_output`` (vLLM), ``return_tokens_as_token_ids`` (vLLM),
  ``return_token_ids`` (vLLM: ``prompt_token_ids`` and ``token_ids`` in the
  reply), ``chat_template_kwargs`` (vLLM);
* ``POST /v1/completions``: ``prompt`` (text, token ids, or a list of either),
  the sampling fields above, ``echo`` and ``logprobs`` (legacy format),
  ``prompt_logprobs`` (vLLM: per prompt token ``{token_id: {logprob, rank,
  decoded_token}}``). ``max_tokens`` may be 0 to score a prompt only;
* ``POST /tokenize`` (vLLM: ``prompt`` or ``messages`` to token ids) and
  ``POST /detokenize`` (vLLM: ``tokens`` to text).

Log-probs are those of the model at temperature 1, whatever the sampling
temperature. The reply's ``content`` leaves out a matched stop string (unless
``include_stop_str_in_output``) and special tokens; ``logprobs`` list every
generated token, the end-of-sequence token included. Not supported (clear 400
errors): ``n`` > 1, ``stream``. Tool calls are not parsed out of the text:
the ``<tool_call>`` blocks stay in ``content``.

Examples::

    python tools/serve.py models/tiny --port 8000
    python tools/serve.py tiny:small --port 0          # a random small model, any free port
    python tools/serve.py Qwen/Qwen3-0.6B --device cuda --dtype bfloat16 --host 0.0.0.0

The server prints ``serving <name> at http://<host>:<port>/v1`` once it listens.
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from agents.hf import Generation, HFAgent, SamplingParams  # noqa: E402
from agents.prompts import render_prompt  # noqa: E402
from tools._cli import HelpFormatter  # noqa: E402

__all__ = ["ModelServer", "OpenAIServer", "make_server", "main"]

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_TOP_LOGPROBS = 20


class BadRequest(ValueError):
    """A request the server refuses, with the HTTP status and OpenAI error type to send."""

    def __init__(
        self, message: str, status: int = 400, kind: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


@dataclass
class _Job:
    kind: str  # "generate" or "score"
    payload: Any
    future: Future = field(default_factory=Future)


class ModelServer:
    """The model behind the HTTP layer: request validation, batching, response building.

    One worker thread runs the model; jobs that wait together (up to
    ``max_batch_size``, gathered for ``batch_wait_s``) run as one batch.
    """

    def __init__(
        self,
        agent: HFAgent,
        model_name: str,
        *,
        max_batch_size: int = 16,
        batch_wait_s: float = 0.005,
        max_tokens_limit: int = 4096,
    ) -> None:
        self.agent = agent
        self.model_name = model_name
        self.max_batch_size = max(1, int(max_batch_size))
        self.batch_wait_s = max(0.0, float(batch_wait_s))
        self.max_tokens_limit = int(max_tokens_limit)
        self.created = int(time.time())
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="model-worker", daemon=True)
        self._worker.start()

    # -- the worker ---------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker; requests still waiting get an error rather than hanging."""
        self._jobs.put(None)
        self._worker.join(timeout=30)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and not job.future.done():
                job.future.set_exception(
                    BadRequest("the server is shutting down", 503, "server_error")
                )

    def _submit(self, kind: str, payload: Any) -> Any:
        if not self._worker.is_alive():
            raise BadRequest("the model worker has stopped", 503, "server_error")
        job = _Job(kind, payload)
        self._jobs.put(job)
        return job.future.result()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch_size:
                try:
                    more = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    self._run(batch)
                    return
                batch.append(more)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        generate = [job for job in batch if job.kind == "generate"]
        score = [job for job in batch if job.kind == "score"]
        if generate:
            try:
                results = self.agent.generate(
                    [job.payload[0] for job in generate],
                    [job.payload[1] for job in generate],
                    top_logprobs=max(job.payload[2] for job in generate),
                )
                for job, result in zip(generate, results):
                    job.future.set_result(result)
            except Exception as error:  # every waiting request must get an answer
                for job in generate:
                    job.future.set_exception(error)
        by_top: dict[int | None, list[_Job]] = {}
        for job in score:
            by_top.setdefault(job.payload[2], []).append(job)
        for top_n, jobs in by_top.items():
            try:
                results = self.agent.score_segments(
                    [job.payload[0] for job in jobs], [job.payload[1] for job in jobs], top_n=top_n
                )
                for job, result in zip(jobs, results):
                    job.future.set_result(result)
            except Exception as error:
                for job in jobs:
                    job.future.set_exception(error)

    # -- request fields -----------------------------------------------------------

    def _number(self, body: dict, name: str, default: float, low: float, high: float) -> float:
        value = body.get(name, default)
        if value is None:
            value = default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise BadRequest(f"'{name}' must be a number")
        if not low <= value <= high:
            raise BadRequest(f"'{name}' must be between {low} and {high}, got {value}")
        return float(value)

    def _integer(
        self, body: dict, name: str, default: int | None, low: int, high: int
    ) -> int | None:
        value = body.get(name, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"'{name}' must be an integer")
        if not low <= value <= high:
            raise BadRequest(f"'{name}' must be between {low} and {high}, got {value}")
        return int(value)

    def _common(
        self, body: dict, *, default_max_tokens: int, min_max_tokens: int
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise BadRequest(
                f"The model {model!r} does not exist; this server serves {self.model_name!r}.",
                404,
                "NotFoundError",
            )
        if body.get("stream"):
            raise BadRequest("streaming is not supported by tools/serve.py; send stream=false")
        if self._integer(body, "n", 1, 1, 1) != 1:
            raise BadRequest("only n=1 is supported")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        max_tokens = self._integer(
            {"max_tokens": max_tokens},
            "max_tokens",
            default_max_tokens,
            min_max_tokens,
            self.max_tokens_limit,
        )
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise BadRequest("'stop' must be a non-empty string or a list of them")
        top_k = self._integer(body, "top_k", 0, -1, 1_000_000)
        seed = self._integer(body, "seed", None, -(2**63), 2**63 - 1)
        return {
            "temperature": self._number(body, "temperature", 1.0, 0.0, 100.0),
            "top_p": self._number(body, "top_p", 1.0, 1e-9, 1.0),
            "top_k": max(0, int(top_k or 0)),
            "max_tokens": int(max_tokens or 0),
            "stop": tuple(stop),
            "seed": None if seed is None else seed & ((1 << 63) - 1),
            "include_stop": bool(body.get("include_stop_str_in_output", False)),
            "as_ids": bool(body.get("return_tokens_as_token_ids", False)),
            "return_ids": bool(body.get("return_token_ids", False)),
        }

    def _params(self, common: dict[str, Any]) -> SamplingParams:
        return SamplingParams(
            temperature=common["temperature"],
            top_p=common["top_p"],
            top_k=common["top_k"],
            max_new_tokens=max(1, common["max_tokens"]),
            stop=common["stop"],
            seed=common["seed"],
        )

    def _token_text(self, token_id: int, as_ids: bool) -> str:
        if as_ids:
            return f"token_id:{token_id}"
        return self.agent.tokenizer.decode([token_id], skip_special_tokens=False)

    def _content(self, generation: Generation, include_stop: bool) -> str:
        text = generation.text
        stop = generation.stop_reason
        if isinstance(stop, str) and not include_stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        return text

    def _generate(self, prompt_ids: list[int], common: dict[str, Any], top_n: int) -> Generation:
        if len(prompt_ids) + common["max_tokens"] > self._context_limit():
            raise BadRequest(
                f"the prompt ({len(prompt_ids)} tokens) plus max_tokens ({common['max_tokens']}) "
                f"exceeds the model's context of {self._context_limit()} tokens"
            )
        return self._submit("generate", (prompt_ids, self._params(common), top_n))

    def _context_limit(self) -> int:
        config = self.agent.model.config
        return int(getattr(config, "max_position_embeddings", None) or 1_000_000)

    # -- endpoints -----------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_name,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "mentorgym",
                }
            ],
        }

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        common = self._common(
            body, default_max_tokens=self.agent.defaults.max_new_tokens, min_max_tokens=1
        )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list")
        cleaned = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"messages[{index}] must be an object with a 'role'")
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            if content is not None and not isinstance(content, str):
                raise BadRequest(f"messages[{index}].content must be a string or a list of parts")
            cleaned.append({**message, "content": content or ""})
        tools = body.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise BadRequest("'tools' must be a list")
        if body.get("tool_choice") == "none":
            tools = None
        template_kwargs = body.get("chat_template_kwargs") or {}
        if not isinstance(template_kwargs, dict):
            raise BadRequest("'chat_template_kwargs' must be an object")
        logprobs = bool(body.get("logprobs", False))
        top_n = self._integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS) or 0
        try:
            text = render_prompt(
                self.agent.tokenizer, cleaned, tools=tools, template_kwargs=template_kwargs
            )
        except Exception as error:  # a template error is the request's fault
            raise BadRequest(f"the chat template failed on these messages: {error}") from None
        prompt_ids = self.agent.encode(text)
        generation = self._generate(prompt_ids, common, top_n if logprobs else 0)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": self._content(generation, common["include_stop"]),
            },
            "logprobs": None,
            "finish_reason": generation.finish_reason,
            "stop_reason": generation.stop_reason,
        }
        if logprobs:
            entries = []
            for step, (token, value) in enumerate(zip(generation.token_ids, generation.logprobs)):
                text_token = self._token_text(token, common["as_ids"])
                entry: dict[str, Any] = {
                    "token": text_token,
                    "logprob": value,
                    "bytes": list(text_token.encode("utf-8")),
                    "top_logprobs": [],
                }
                if top_n and generation.top_logprobs:
                    for alt, alt_value in list(generation.top_logprobs[step].items())[:top_n]:
                        alt_text = self._token_text(alt, common["as_ids"])
                        entry["top_logprobs"].append(
                            {
                                "token": alt_text,
                                "logprob": alt_value,
                                "bytes": list(alt_text.encode("utf-8")),
                            }
                        )
                entries.append(entry)
            choice["logprobs"] = {"content": entries}
        if common["return_ids"]:
            choice["token_ids"] = list(generation.token_ids)
        response: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [choice],
            "usage": _usage(len(prompt_ids), len(generation.token_ids)),
        }
        if common["return_ids"]:
            response["prompt_token_ids"] = prompt_ids
        return response

    def _prompts(self, prompt: Any) -> list[list[int]]:
        """The token ids of each prompt of a completions request."""
        if isinstance(prompt, str):
            prompts: list[Any] = [prompt]
        elif (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(x, int) and not isinstance(x, bool) for x in prompt)
        ):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt:
            prompts = prompt
        else:
            raise BadRequest(
                "'prompt' must be a string, a list of token ids, or a non-empty list of either"
            )
        out = []
        vocab = int(self.agent.model.get_input_embeddings().weight.shape[0])
        for index, item in enumerate(prompts):
            if isinstance(item, str):
                ids = self.agent.encode(item)
            elif isinstance(item, list) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in item
            ):
                ids = list(item)
                if any(x < 0 or x >= vocab for x in ids):
                    raise BadRequest(
                        f"prompt[{index}] has token ids outside the vocabulary (0..{vocab - 1})"
                    )
            else:
                raise BadRequest(f"prompt[{index}] must be a string or a list of token ids")
            if not ids:
                raise BadRequest(f"prompt[{index}] is empty")
            out.append(ids)
        return out

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        common = self._common(body, default_max_tokens=16, min_max_tokens=0)
        prompts = self._prompts(body.get("prompt"))
        echo = bool(body.get("echo", False))
        legacy_n = self._integer(body, "logprobs", None, 0, MAX_TOP_LOGPROBS)
        prompt_n = self._integer(body, "prompt_logprobs", None, 0, MAX_TOP_LOGPROBS)
        if common["max_tokens"] == 0 and not echo and prompt_n is None:
            raise BadRequest("max_tokens=0 only makes sense with echo=true or prompt_logprobs")
        choices, prompt_total, completion_total = [], 0, 0
        for index, prompt_ids in enumerate(prompts):
            prompt_total += len(prompt_ids)
            generation = None
            if common["max_tokens"] > 0:
                generation = self._generate(prompt_ids, common, legacy_n or 0)
                completion_total += len(generation.token_ids)
            scored = None
            if (echo and legacy_n is not None) or prompt_n is not None:
                top = max(legacy_n or 0, prompt_n or 0)
                scored = (
                    self._submit("score", (prompt_ids, [(1, len(prompt_ids) - 1)], top))[0]
                    if len(prompt_ids) > 1
                    else []
                )
            text = self._content(generation, common["include_stop"]) if generation else ""
            if echo:
                text = self.agent.tokenizer.decode(prompt_ids, skip_special_tokens=False) + text
            choice: dict[str, Any] = {
                "index": index,
                "text": text,
                "logprobs": None,
                "finish_reason": generation.finish_reason if generation else "length",
                "stop_reason": generation.stop_reason if generation else None,
            }
            if legacy_n is not None:
                choice["logprobs"] = self._legacy_logprobs(
                    prompt_ids if echo else [],
                    scored if echo else None,
                    generation,
                    legacy_n,
                    common["as_ids"],
                )
            if prompt_n is not None:
                choice["prompt_logprobs"] = [None] + [
                    self._prompt_entry(prompt_ids[k + 1], entry, prompt_n, common["as_ids"])
                    for k, entry in enumerate(scored or [])
                ]
            if common["return_ids"]:
                choice["prompt_token_ids"] = prompt_ids
                choice["token_ids"] = list(generation.token_ids) if generation else []
            choices.append(choice)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": _usage(prompt_total, completion_total),
        }

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        """vLLM's ``/tokenize``: the token ids of ``prompt`` (text) or of ``messages`` (chat)."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if isinstance(body.get("prompt"), str):
            text = body["prompt"]
            ids = list(
                self.agent.tokenizer.encode(
                    text, add_special_tokens=bool(body.get("add_special_tokens", True))
                )
            )
        elif isinstance(body.get("messages"), list) and body["messages"]:
            try:
                text = render_prompt(
                    self.agent.tokenizer,
                    body["messages"],
                    tools=body.get("tools"),
                    template_kwargs=body.get("chat_template_kwargs") or {},
                )
            except Exception as error:
                raise BadRequest(f"the chat template failed on these messages: {error}") from None
            ids = self.agent.encode(text)
        else:
            raise BadRequest("give 'prompt' (a string) or 'messages' (a non-empty list)")
        return {"count": len(ids), "max_model_len": self._context_limit(), "tokens": ids}

    def detokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        """vLLM's ``/detokenize``: the text of ``tokens``."""
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in tokens
        ):
            raise BadRequest("'tokens' must be a list of token ids")
        checked = self._prompts([tokens])[0] if tokens else []  # ids inside the vocabulary
        return {"prompt": self.agent.tokenizer.decode(checked)}

    def _prompt_entry(self, token: int, entry: tuple, top_n: int, as_ids: bool) -> dict[str, Any]:
        value, rank, top = entry
        result = {
            str(token): {
                "logprob": value,
                "rank": rank,
                "decoded_token": self._token_text(token, as_ids),
            }
        }
        for position, (alt, alt_value) in enumerate(list(top.items())[:top_n], start=1):
            if str(alt) not in result:
                result[str(alt)] = {
                    "logprob": alt_value,
                    "rank": position,
                    "decoded_token": self._token_text(alt, as_ids),
                }
        return result

    def _legacy_logprobs(
        self,
        prompt_ids: list[int],
        scored: list[tuple] | None,
        generation: Generation | None,
        top_n: int,
        as_ids: bool,
    ) -> dict[str, Any]:
        tokens: list[str] = []
        values: list[float | None] = []
        tops: list[dict[str, float] | None] = []
        for k, token in enumerate(prompt_ids):
            tokens.append(self._token_text(token, as_ids))
            if k == 0 or scored is None:
                values.append(None)
                tops.append(None)
            else:
                value, _, top = scored[k - 1]
                values.append(value)
                tops.append({self._token_text(a, as_ids): v for a, v in list(top.items())[:top_n]})
        if generation is not None:
            for step, (token, value) in enumerate(zip(generation.token_ids, generation.logprobs)):
                tokens.append(self._token_text(token, as_ids))
                values.append(value)
                alternatives = (generation.top_logprobs or [{}] * (step + 1))[step] if top_n else {}
                tops.append(
                    {self._token_text(a, as_ids): v for a, v in list(alternatives.items())[:top_n]}
                )
        offsets, cursor = [], 0
        for token in tokens:
            offsets.append(cursor)
            cursor += len(token)
        return {
            "tokens": tokens,
            "token_logprobs": values,
            "top_logprobs": tops,
            "text_offset": offsets,
        }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class _Handler(BaseHTTPRequestHandler):
    server: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(
            status, {"error": {"message": message, "type": kind, "param": None, "code": status}}
        )

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(200, self.server.model_server.models())
        elif path in ("/health", "/v1/health", ""):
            self._send(200, {"status": "ok", "model": self.server.model_server.model_name})
        else:
            self._error(404, f"no route {self.path}", "NotFoundError")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        routes = {
            "/v1/chat/completions": self.server.model_server.chat,
            "/chat/completions": self.server.model_server.chat,
            "/v1/completions": self.server.model_server.completions,
            "/completions": self.server.model_server.completions,
            "/tokenize": self.server.model_server.tokenize,
            "/detokenize": self.server.model_server.detokenize,
        }
        handler = routes.get(path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(
                413 if length > 0 else 400,
                "missing, bad or too large Content-Length",
                "invalid_request_error",
            )
            return
        raw = self.rfile.read(length) if length else b""
        if handler is None:
            self._error(404, f"no route {self.path}", "NotFoundError")
            return
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as error:
            self._error(
                400, f"the request body is not valid JSON: {error}", "invalid_request_error"
            )
            return
        try:
            self._send(200, handler(body))
        except BadRequest as error:
            self._error(error.status, str(error), error.kind)
        except ValueError as error:  # bad ids and other input errors raised by the model layer
            self._error(400, str(error), "invalid_request_error")
        except Exception as error:  # the client still gets a JSON answer
            self._error(500, f"{type(error).__name__}: {error}", "server_error")


class OpenAIServer(ThreadingHTTPServer):
    """The HTTP server; ``url`` is its ``http://host:port/v1`` base URL."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], model_server: ModelServer, verbose: bool = False
    ) -> None:
        super().__init__(address, _Handler)
        self.model_server = model_server
        self.verbose = verbose
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        """Serve in a background thread (for tests and notebooks)."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="openai-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and the model worker."""
        self.shutdown()
        self.server_close()
        self.model_server.close()
        if self._thread is not None:
            self._thread.join(timeout=30)


def make_server(
    agent: HFAgent,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    model_name: str = "model",
    max_batch_size: int = 16,
    verbose: bool = False,
) -> OpenAIServer:
    """An OpenAI-compatible server for ``agent``'s model (``port=0``: any free port).

    Call ``.start()`` to serve in a background thread, or ``.serve_forever()``.
    """
    model_server = ModelServer(agent, model_name, max_batch_size=max_batch_size)
    return OpenAIServer((host, port), model_server, verbose=verbose)


def load_agent(model: str, *, dtype: str, device: str, trust_remote_code: bool) -> HFAgent:
    """The model to serve, by the project's agent grammar: ``tiny:<size>`` (a random offline
    model), ``hf:<folder-or-hub-name>``, or a bare folder or hub name (read as ``hf:``)."""
    from agents.factory import canonical_spec, check_agent_spec, make_agent

    spec = canonical_spec(model)
    if not spec.startswith(("tiny:", "hf:")):
        if ":" in spec and not Path(spec).expanduser().is_dir():
            raise ValueError(
                f"cannot serve {model!r}: give a model folder, hf:<folder-or-hub-name> "
                "or tiny:<size>"
            )
        spec = f"hf:{spec}"
    check_agent_spec(spec, models_only=True)  # a missing folder is one line, before any load
    options: dict[str, Any] = {"device": device}
    if spec.startswith("hf:"):
        options.update(dtype=dtype, trust_remote_code=trust_remote_code)
    agent = make_agent(spec, options=options)
    if not isinstance(agent, HFAgent):
        raise ValueError(f"{model!r} is not a model this server can run")
    return agent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description="Serve a transformers causal LM over an OpenAI-compatible API "
        "(chat completions and completions, with log-probs and prompt log-probs).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "model",
        help="a model folder, hf:<folder-or-hub-name>, or tiny:<size> (a random offline model)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument(
        "--served-model-name", help="the model id clients send (default: the model argument)"
    )
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--max-batch-size", type=int, default=16, help="requests generated together"
    )
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()  # its retry warnings would come before our one-line error
    try:
        agent = load_agent(
            args.model,
            dtype=args.dtype,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        server = make_server(
            agent,
            host=args.host,
            port=args.port,
            model_name=args.served_model_name or args.model,
            max_batch_size=args.max_batch_size,
            verbose=args.verbose,
        )
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever, so it must run in another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving {server.model_server.model_name} at {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.model_server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
