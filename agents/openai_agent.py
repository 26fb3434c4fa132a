"""``OpenAIAgent``: a model behind any OpenAI-compatible server (vLLM, SGLang, TGI, hosted APIs).

The agent builds the same prompts as ``HFAgent`` (``agents.prompts``), sends
them as chat messages to ``POST {base_url}/chat/completions`` (one request per
episode, ``concurrency`` at a time), parses the action and records the turn
(``last_turn`` / ``last_turns``), with the per-token log-probs the server
returns (``logprobs: true``; vLLM reports the model's own log-probs, i.e. at
temperature 1, by default).

With ``api="completions"`` and a ``tokenizer``, the agent renders and
tokenizes each prompt itself (``agents.prompt_tokens``, as ``HFAgent`` does)
and sends the token ids to ``POST {base_url}/completions``; the completion
comes back as token ids with their log-probs. The server's chat template and
tool-call parser play no part, so a served teacher continues exactly the
tokens an in-process model with that tokenizer would see (how distillation
drives a served teacher). ``check_tokenizer`` tells whether the server's
tokenizer is that one.

Teacher scoring (``logprobs(prompt_ids, completion_ids)``) goes through
``POST {base_url}/completions`` with the token ids as the prompt, reading
vLLM's ``prompt_logprobs`` or, failing that, the legacy ``echo`` +
``logprobs`` fields. Servers that offer neither (hosted chat APIs) get a
:class:`ScoringNotSupported` error saying so.

Network behaviour: every socket operation has a ``timeout``, and a request,
retries included, has an overall ``deadline`` (a server that drips a byte at
a time cannot hold an agent past it) and a reply-size cap
(``max_response_bytes``); connection failures, timeouts, HTTP
408/409/429/5xx and malformed JSON are retried ``max_retries`` times with
exponential backoff while the deadline allows; then a :class:`ServerError`
(:class:`ServerUnreachable` when no connection could be made) names the URL
and the last failure. Other HTTP errors, and vLLM's HTTP 500 for an engine that
died (it never comes back), are raised at once with the server's message and,
where the cause is known, the server flag that avoids it. Only the standard
library is used.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.base import TurnTakingAgent
from agents.parsing import parse_action, parse_tool_completion
from agents.prompt_tokens import PromptTokens
from agents.prompts import (
    EpisodeSlots,
    EpisodeState,
    PromptConfig,
    build_messages,
    render_prompt,
    stable_seed,
    template_tools,
)
from agents.trajectory import AgentTurn

__all__ = [
    "OpenAIAgent",
    "ScoringNotSupported",
    "ServerError",
    "ServerUnreachable",
    "TokenizerMismatch",
]

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: A request's overall deadline, when none is given, in multiples of the per-read timeout.
_DEADLINE_TIMEOUTS = 10
_TOKEN_ID_PREFIX = "token_id:"


class ServerError(RuntimeError):
    """The server failed: an HTTP error, a timeout, or a reply that is not what the API promises.

    ``status`` is the HTTP status when the server answered with an error.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(ServerError):
    """No connection could be made to the server (after every retry)."""


class ScoringNotSupported(ServerError):
    """The server cannot return log-probs of a given prompt (no prompt_logprobs, no echo)."""


class TokenizerMismatch(ValueError):
    """The server's tokenizer splits text differently from the local one."""


class _ReplyTooLarge(Exception):
    pass


class _Watchdog:
    """Shuts the sockets of one request down when its deadline passes, so that a read
    blocked on a slow or dripping server returns at once, at any stage of the exchange."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            if sock is not None:
                self._sockets.append(sock)
            expired = self.expired
        if expired:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _watched(connection_class: Any, watchdog: _Watchdog) -> Any:
    """A connection factory for urllib whose sockets the watchdog can shut down."""

    def make(host: str, **kwargs: Any) -> Any:
        connection = connection_class(host, **kwargs)
        connect = connection.connect

        def watched_connect() -> None:
            connect()
            watchdog.watch(connection.sock)

        connection.connect = watched_connect
        return connection

    return make


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
        return super().do_open(_watched(http_class, self.watchdog), req, **kwargs)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
        return super().do_open(_watched(http_class, self.watchdog), req, **kwargs)


def normalise_base_url(base_url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base_url must be a URL such as http://127.0.0.1:8000/v1")
    url = base_url.strip().rstrip("/")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, not {base_url!r}"
        )
    if parsed.path in ("", "/"):
        url += "/v1"
    return url


class OpenAIAgent(TurnTakingAgent):
    """A model served over the OpenAI API, as an agent and (where the server allows) a scorer.

    Arguments: ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``), ``model``
    (default: the first id of ``GET /models``), ``api_key`` (sent as a
    bearer token), sampling (``temperature``, ``top_p``, ``top_k``, ``min_p``,
    ``max_tokens``, ``seed``, ``stop`` for text envs; ``top_k`` and ``min_p`` are
    sent only when given, as vLLM's extension fields: a field left out takes the
    server's default, which vLLM reads from the model's ``generation_config.json``), ``logprobs`` / ``top_logprobs``,
    ``timeout`` (seconds any one socket operation may wait), ``deadline``
    (seconds one request may take in all, retries included; default 10 x
    ``timeout``), ``max_response_bytes`` (a longer reply is an error; 64 MiB),
    ``max_retries``, ``backoff`` (first wait, doubled each retry, at most
    ``max_backoff``), ``concurrency``
    (requests in flight for a batch), ``extra_body`` (merged into every
    request, e.g. ``{"top_k": 20}`` or ``{"chat_template_kwargs": ...}`` for
    vLLM), ``token_ids`` (ask vLLM-style servers for token ids:
    ``return_token_ids`` and ``return_tokens_as_token_ids``), prompt options as
    for ``HFAgent`` and ``actor``. ``tokenizer`` (optional) renders the prompt
    text written to trajectory records; without one the record holds the
    messages as JSON. ``api``: ``"chat"`` (the server renders the messages) or
    ``"completions"`` (prompts rendered and tokenized here with ``tokenizer``,
    completions returned as token ids; module docstring).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
        min_p: float | None = None,
        max_tokens: int = 512,
        seed: int | None = None,
        stop: Sequence[str] = ("</action>",),
        logprobs: bool = True,
        top_logprobs: int = 0,
        timeout: float = 60.0,
        deadline: float | None = None,
        max_response_bytes: int = 64 << 20,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
        token_ids: bool = False,
        prompt: PromptConfig | None = None,
        history: str | None = None,
        history_k: int | None = None,
        family: str | None = None,
        system_prompt: str | None = None,
        tool_listing: str | None = None,
        actor: str = "student",
        tokenizer: Any | None = None,
        api: str = "chat",
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', not {api!r}")
        if api == "completions" and tokenizer is None:
            raise ValueError("api='completions' renders prompts here: it needs a tokenizer")
        self.api = api
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if deadline is not None and deadline <= 0:
            raise ValueError("deadline must be positive (or None: 10 x timeout)")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be >= 1")
        if max_retries < 0 or concurrency < 1 or backoff < 0:
            raise ValueError("max_retries and backoff must be >= 0, concurrency >= 1")
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        self.api_key = api_key
        self.temperature, self.top_p, self.max_tokens = (
            float(temperature),
            float(top_p),
            int(max_tokens),
        )
        if top_k is not None and (int(top_k) != top_k or top_k < -1):
            raise ValueError(f"top_k must be an integer >= -1 (-1: no top-k), not {top_k!r}")
        if min_p is not None and not 0.0 <= min_p <= 1.0:
            raise ValueError(f"min_p must be between 0 and 1, not {min_p!r}")
        self.top_k = None if top_k is None else int(top_k)
        self.min_p = None if min_p is None else float(min_p)
        self.seed = seed
        self.stop = tuple(stop)
        self.want_logprobs, self.top_logprobs = bool(logprobs), int(top_logprobs)
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.deadline = (
            float(deadline) if deadline is not None else _DEADLINE_TIMEOUTS * self.timeout
        )
        self.max_response_bytes = int(max_response_bytes)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body or {})
        self.token_ids = bool(token_ids)
        self.prompt_config = (prompt or PromptConfig()).overridden(
            history=history,
            history_k=history_k,
            family=family,
            system_prompt=system_prompt,
            tool_listing=tool_listing,
        )
        self.actor = actor
        self.tokenizer = tokenizer
        self.prompts = (
            PromptTokens(tokenizer, self.prompt_config, ("openai", id(self)))
            if tokenizer is not None
            else None
        )
        self._model = model
        self._slots = EpisodeSlots(family=self.prompt_config.family)
        self._rng = random.Random(seed)
        self._scoring_method: str | None = None
        self.last_turns: list[AgentTurn] = []
        self.last_turn: AgentTurn | None = None

    env_kwargs: dict[str, Any] = {}

    # -- HTTP -------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model id sent with every request (asked from the server when not given)."""
        if self._model is None:
            reply = self._request("GET", "/models")
            data = reply.get("data") if isinstance(reply, dict) else None
            if (
                not data
                or not isinstance(data, list)
                or not isinstance(data[0], dict)
                or "id" not in data[0]
            ):
                raise ServerError(
                    f"{self.base_url}/models lists no model; pass model=... explicitly"
                )
            self._model = str(data[0]["id"])
        return self._model

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        return self._request_url(method, self.base_url + path, payload)

    def _request_url(self, method: str, url: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_problem, reached, attempts = "", False, 0
        deadline = time.monotonic() + self.deadline
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                delay *= 1 + 0.1 * self._rng.random()  # jitter spreads retries out
                if time.monotonic() + delay >= deadline:
                    break
                time.sleep(delay)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempts += 1
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            watchdog = _Watchdog(remaining)
            try:
                raw = self._fetch(request, watchdog)
                reached = True
            except urllib.error.HTTPError as error:
                reached = True
                message = _error_message(error)
                if error.code in _RETRY_STATUS and not _engine_dead(message):
                    last_problem = f"HTTP {error.code}: {message}"
                    continue
                # A refusal, or a vLLM engine that died (it never recovers): no retry.
                advice = _advice(error.code, message, payload)
                raise ServerError(
                    f"{method} {url} failed with HTTP {error.code}: "
                    + (message.rstrip(". ") + advice if advice else message),
                    error.code,
                ) from None
            except _ReplyTooLarge as error:
                raise ServerError(f"{method} {url}: {error}") from None
            except Exception as error:
                if watchdog.expired:
                    reached = True
                    last_problem = f"no complete reply within the {self.deadline:g} s deadline"
                    break
                if isinstance(error, TimeoutError) or (
                    isinstance(error, urllib.error.URLError)
                    and isinstance(error.reason, TimeoutError)
                ):
                    reached = True
                    last_problem = f"no answer within the {self.timeout:g} s timeout"
                elif isinstance(error, urllib.error.URLError):
                    last_problem = f"cannot connect ({error.reason})"
                elif isinstance(error, OSError | http.client.HTTPException):
                    last_problem = f"connection failed ({error})"  # reset mid-reply, broken pipe
                else:
                    raise
                continue
            finally:
                watchdog.cancel()
            try:
                return json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                snippet = raw[:120].decode("utf-8", "replace")
                last_problem = f"the reply is not valid JSON ({error}): {snippet!r}"
                continue
        kind = ServerError if reached else ServerUnreachable
        if not reached:
            last_problem += "; is the server running at this address?"
        raise kind(f"{method} {url} failed after {attempts} attempt(s): {last_problem}")

    def _fetch(self, request: urllib.request.Request, watchdog: _Watchdog) -> bytes:
        """The whole reply body, read as it comes (never more than ``max_response_bytes``)."""
        opener = urllib.request.build_opener(
            _WatchedHTTPHandler(watchdog), _WatchedHTTPSHandler(watchdog)
        )
        with opener.open(request, timeout=self.timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_response_bytes:
                raise _ReplyTooLarge(
                    f"the reply is {int(length)} bytes; the limit is max_response_bytes="
                    f"{self.max_response_bytes}"
                )
            chunks, size = [], 0
            while True:
                # read1: whatever has arrived, at most one read from the socket (read(n)
                # would wait for all n bytes, a byte at a time from a dripping server).
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise _ReplyTooLarge(
                        f"the reply is longer than max_response_bytes={self.max_response_bytes}"
                    )
                chunks.append(chunk)
        if watchdog.expired:  # the socket was shut down under us: the body is cut short
            raise TimeoutError("deadline")
        return b"".join(chunks)

    # -- the agent interface ------------------------------------------------------------

    def _episode_seed(self, state: EpisodeState, occurrence: int) -> int | None:
        if self.seed is None:
            return None
        return stable_seed(
            self.seed, state.info.get("task_id", state.task), occurrence, state.turns_taken
        )

    def take_turns(
        self, states: Sequence[EpisodeState], *, seeds: Sequence[int | None] | None = None
    ) -> list[AgentTurn]:
        """This agent's turn in each episode of ``states`` (not modified)."""
        states = list(states)
        seeds = list(seeds) if seeds is not None else [None] * len(states)
        model = self.model  # ask once, before the threads start
        jobs = [(state, seed, model) for state, seed in zip(states, seeds)]
        if len(jobs) == 1:
            return [self._turn(*jobs[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            return list(pool.map(lambda job: self._turn(*job), jobs))

    def _turn(self, state: EpisodeState, seed: int | None, model: str) -> AgentTurn:
        if self.api == "completions":
            return self._token_turn(state, seed, model)
        messages = build_messages(state, self.prompt_config)
        payload: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        self._add_sampling_extras(payload)
        tools = template_tools(state, self.prompt_config)
        if tools:
            payload["tools"] = tools
        elif self.stop and state.family != "tool":
            payload["stop"] = list(self.stop)
        if seed is not None:
            payload["seed"] = int(seed) & ((1 << 31) - 1)  # some servers take 32-bit seeds only
        if self.want_logprobs:
            payload["logprobs"] = True
            if self.top_logprobs:
                payload["top_logprobs"] = self.top_logprobs
        if self.token_ids:
            payload["return_token_ids"] = True
            payload["return_tokens_as_token_ids"] = True
        payload.update(self.extra_body)
        reply = self._request("POST", "/chat/completions", payload)
        choice = _first_choice(reply, self.base_url + "/chat/completions")
        message = choice.get("message")
        if not isinstance(message, dict):
            raise ServerError(f"{self.base_url}/chat/completions: the reply has no message")
        completion = message.get("content") or ""
        if not isinstance(completion, str):
            raise ServerError(f"{self.base_url}/chat/completions: message.content is not text")
        stop_reason = choice.get("stop_reason")
        if (
            isinstance(stop_reason, str)
            and stop_reason in self.stop
            and not completion.endswith(stop_reason)
        ):
            completion += stop_reason  # the server cut the stop string; the parser likes it back
        calls = message.get("tool_calls") or []
        if calls:
            completion = _with_tool_calls(completion, calls)
        parsed = (
            parse_tool_completion(completion)
            if state.family == "tool"
            else parse_action(completion)
        )
        logprobs, tokens, completion_ids = _read_logprobs(choice.get("logprobs"))
        if isinstance(choice.get("token_ids"), list):
            completion_ids = [int(x) for x in choice["token_ids"]]
        prompt_ids = reply.get("prompt_token_ids") or choice.get("prompt_token_ids")
        extra: dict[str, Any] = {"message": message} if calls else {}
        return AgentTurn(
            prompt=self._prompt_text(messages, tools),
            completion=completion,
            action=parsed.action,
            actor=self.actor,
            prompt_ids=[int(x) for x in prompt_ids] if isinstance(prompt_ids, list) else None,
            completion_ids=completion_ids,
            logprobs=logprobs,
            finish_reason=_finish_reason(choice),
            parsed=parsed.found,
            tokens=tokens,
            extra=extra,
        )

    def _add_sampling_extras(self, payload: dict[str, Any]) -> None:
        """Put ``top_k`` / ``min_p`` into a request when this agent was given them."""
        if self.top_k is not None:
            payload["top_k"] = self.top_k
        if self.min_p is not None:
            payload["min_p"] = self.min_p

    def _token_turn(self, state: EpisodeState, seed: int | None, model: str) -> AgentTurn:
        """One turn through ``/completions`` on token ids (``api="completions"``)."""
        assert self.prompts is not None
        text, prompt_ids = self.prompts.prompt_ids(state)
        payload: dict[str, Any] = {
            "model": model,
            "prompt": prompt_ids,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "logprobs": 0,
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": True,
            # Every token may be drawn, as in-process: without this, vLLM applies the model
            # folder's generation_config (Qwen3: top_k 20) to a field the client leaves out.
            "top_k": -1,
        }
        self._add_sampling_extras(payload)
        if self.stop and state.family != "tool":  # tool turns end at end of sequence
            payload["stop"] = list(self.stop)
            payload["include_stop_str_in_output"] = True
        if seed is not None:
            # The whole 63-bit seed (vLLM and tools/serve.py take 64-bit ints): the draw is
            # then the one an in-process model makes with the same seed.
            payload["seed"] = int(seed) & ((1 << 63) - 1)
        payload.update(self.extra_body)
        url = self.base_url + "/completions"
        choice = _first_choice(self._request("POST", "/completions", payload), url)
        block = choice.get("logprobs")
        values = block.get("token_logprobs") if isinstance(block, dict) else None
        tokens = block.get("tokens") if isinstance(block, dict) else None
        ids = choice.get("token_ids")
        if not isinstance(ids, list) and isinstance(tokens, list):
            ids = [_token_id(token) for token in tokens]
        if (
            not isinstance(ids, list)
            or not isinstance(values, list)
            or len(ids) != len(values)
            or not all(isinstance(x, int) for x in ids)
            or not all(isinstance(v, int | float) for v in values)
        ):
            raise ServerError(
                f"{url}: the reply lacks the completion's token ids and log-probs (the server "
                "must support return_token_ids or return_tokens_as_token_ids, as vLLM and "
                "tools/serve.py do)"
            )
        completion_ids = [int(x) for x in ids]
        completion = self.tokenizer.decode(completion_ids, skip_special_tokens=True)
        self.prompts.remember_completion(state, completion_ids, completion)
        parsed = (
            parse_tool_completion(completion)
            if state.family == "tool"
            else parse_action(completion)
        )
        return AgentTurn(
            prompt=text,
            completion=completion,
            action=parsed.action,
            actor=self.actor,
            prompt_ids=list(prompt_ids),
            completion_ids=completion_ids,
            logprobs=[float(v) for v in values],
            finish_reason=_finish_reason(choice),
            parsed=parsed.found,
        )

    def _prompt_text(self, messages: list[dict[str, Any]], tools: list | None) -> str:
        if self.tokenizer is not None:
            return render_prompt(
                self.tokenizer,
                messages,
                tools=tools,
                template_kwargs=self.prompt_config.template_kwargs,
            )
        return json.dumps(
            {"messages": messages, "tools": tools} if tools else {"messages": messages},
            ensure_ascii=False,
        )

    # -- scoring ---------------------------------------------------------------------------

    def logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per-token log-probs of each completion given its prompt, through the server.

        Needs a server that returns prompt log-probs (vLLM's ``prompt_logprobs``,
        or ``echo`` with ``logprobs`` on ``/completions``; ``tools/serve.py``
        has both); raises :class:`ScoringNotSupported` otherwise.
        """
        if len(prompt_ids) != len(completion_ids):
            raise ValueError("logprobs: prompt_ids and completion_ids differ in length")
        items = []
        for index, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids)):
            prompt, completion = [int(x) for x in prompt], [int(x) for x in completion]
            if not prompt:
                raise ValueError(f"logprobs: prompt_ids[{index}] is empty; scoring needs context")
            items.append((prompt, completion))
        model = self.model
        if not items:
            return []
        if len(items) == 1:
            return [self._score_one(*items[0], model)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(lambda item: self._score_one(*item, model), items))

    def logprobs_trajectory(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per-turn log-probs of one trajectory (see ``logprobs_trajectories``)."""
        return self.logprobs_trajectories([prompt_ids], [completion_ids])[0]

    def logprobs_trajectories(
        self,
        prompt_ids: Sequence[Sequence[Sequence[int]]],
        completion_ids: Sequence[Sequence[Sequence[int]]],
    ) -> list[list[list[float]]]:
        """Per-turn log-probs of each trajectory's completions, ``concurrency`` requests at once.

        Where a trajectory's prompts extend each other (each prompt starts with the
        previous prompt and completion), the whole trajectory is one request: its last
        prompt and completion, with every turn's completion read off the scored sequence.
        Other trajectories are scored turn by turn.
        """
        if len(prompt_ids) != len(completion_ids):
            raise ValueError("logprobs_trajectories: prompts and completions differ in length")
        jobs: list[tuple[int, list[int], list[tuple[int, int, int]]]] = []
        results: list[list[list[float]]] = []
        for t, (prompts, completions) in enumerate(zip(prompt_ids, completion_ids)):
            prompts = [[int(x) for x in p] for p in prompts]
            completions = [[int(x) for x in c] for c in completions]
            if len(prompts) != len(completions):
                raise ValueError(f"trajectory {t}: prompts and completions differ in length")
            if any(not p for p in prompts):
                raise ValueError(f"trajectory {t}: an empty prompt; scoring needs context")
            results.append([[] for _ in prompts])
            if _chained(prompts, completions):
                slices = [(k, len(p), len(c)) for k, (p, c) in enumerate(zip(prompts, completions))]
                jobs.append((t, prompts[-1] + completions[-1], slices))
            else:
                for k, (p, c) in enumerate(zip(prompts, completions)):
                    jobs.append((t, p + c, [(k, len(p), len(c))]))
        jobs = [job for job in jobs if any(length for _, _, length in job[2])]
        if not jobs:
            return results
        model = self.model

        def run(job: tuple[int, list[int], list[tuple[int, int, int]]]) -> None:
            t, sequence, slices = job
            values = self._score_sequence(sequence, model)
            for k, start, length in slices:
                results[t][k] = values[start : start + length]

        if len(jobs) == 1:
            run(jobs[0])
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
                list(pool.map(run, jobs))
        return results

    def check_tokenizer(self, texts: Sequence[str]) -> None:
        """Raise :class:`TokenizerMismatch` unless the server splits each of ``texts`` into
        the same token ids as this agent's ``tokenizer`` (through vLLM's ``/tokenize``, or
        the ``prompt_token_ids`` of a one-token completion where that is missing)."""
        if self.tokenizer is None:
            raise ValueError("check_tokenizer needs the agent's tokenizer")
        model = self.model
        for text in texts:
            local = list(self.tokenizer.encode(text, add_special_tokens=False))
            served = self._server_token_ids(text, model)
            if served != local:
                at = next(
                    (i for i, (a, b) in enumerate(zip(served, local)) if a != b),
                    min(len(served), len(local)),
                )
                raise TokenizerMismatch(
                    f"the server at {self.base_url} tokenizes differently from the local "
                    f"tokenizer: a probe prompt of {len(text)} characters is {len(served)} "
                    f"tokens there and {len(local)} here, first differing at token {at} "
                    f"(server {served[at : at + 3]}, here {local[at : at + 3]})"
                )

    def _server_token_ids(self, text: str, model: str) -> list[int]:
        """The server's token ids of ``text`` (no special tokens added)."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        payload = {"model": model, "prompt": text, "add_special_tokens": False}
        try:  # vLLM serves /tokenize beside /v1, not under it
            reply = self._request_url("POST", root + "/tokenize", payload)
        except ServerError as error:
            if error.status not in (404, 405):
                raise
            reply = None
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if isinstance(tokens, list) and all(isinstance(x, int) for x in tokens):
            return [int(x) for x in tokens]
        probe = {
            "model": model,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "return_token_ids": True,
            "add_special_tokens": False,
        }
        choice = _first_choice(self._request("POST", "/completions", probe), self.base_url)
        ids = choice.get("prompt_token_ids")
        if not isinstance(ids, list) or not all(isinstance(x, int) for x in ids):
            raise TokenizerMismatch(
                f"cannot check the tokenizer of the server at {self.base_url}: it offers neither "
                "/tokenize nor prompt_token_ids (return_token_ids); vLLM and tools/serve.py do"
            )
        return [int(x) for x in ids]

    def _score_one(self, prompt: list[int], completion: list[int], model: str) -> list[float]:
        if not completion:
            return []
        return self._score_sequence(prompt + completion, model)[len(prompt) :]

    def _score_sequence(self, sequence: list[int], model: str) -> list[float]:
        """Log-probs of every token of ``sequence`` given those before it (0.0 for the first)."""
        methods = [self._scoring_method] if self._scoring_method else ["prompt_logprobs", "echo"]
        problems = []
        for method in methods:
            try:
                values = self._score_with(method, sequence, model)
            except ScoringNotSupported as error:
                problems.append(str(error))
                continue
            except ServerError as error:
                if error.status in (400, 404, 422) and self._scoring_method is None:
                    problems.append(str(error))  # the server refused the extension field
                    continue
                raise
            self._scoring_method = method
            return values
        raise ScoringNotSupported(
            f"{self.base_url} cannot score given tokens: it returns neither vLLM's prompt_logprobs "
            f"nor echo+logprobs on /completions ({'; '.join(problems)}). Use vLLM or tools/serve.py "
            "for a teacher that scores."
        )

    def _score_with(self, method: str, sequence: list[int], model: str) -> list[float]:
        """Log-probs of sequence[1:] (a list as long as ``sequence``; the first is 0.0)."""
        url = self.base_url + "/completions"
        if method == "prompt_logprobs":
            payload = {
                "model": model,
                "prompt": sequence,
                "max_tokens": 1,
                "temperature": 0.0,
                "prompt_logprobs": 0,
            }
            choice = _first_choice(self._request("POST", "/completions", payload), url)
            entries = choice.get("prompt_logprobs")
            if not isinstance(entries, list):
                raise ScoringNotSupported("no prompt_logprobs in the reply")
            if len(entries) < len(sequence):
                raise ServerError(
                    f"{url}: prompt_logprobs has {len(entries)} entries for {len(sequence)} tokens"
                )
            values = [0.0]
            for position in range(1, len(sequence)):
                entry = entries[position]
                value = entry.get(str(sequence[position])) if isinstance(entry, dict) else None
                if isinstance(value, dict):
                    value = value.get("logprob")
                if not isinstance(value, int | float):
                    raise ServerError(
                        f"{url}: prompt_logprobs lacks token {sequence[position]} at position {position}"
                    )
                values.append(float(value))
            return values
        payload = {
            "model": model,
            "prompt": sequence,
            "max_tokens": 0,
            "echo": True,
            "logprobs": 0,
            "temperature": 0.0,
        }
        choice = _first_choice(self._request("POST", "/completions", payload), url)
        logprobs = choice.get("logprobs")
        token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
        if not isinstance(token_logprobs, list) or len(token_logprobs) < len(sequence):
            raise ScoringNotSupported("no echoed prompt log-probs in the reply")
        values = [0.0]
        for position in range(1, len(sequence)):
            value = token_logprobs[position]
            if not isinstance(value, int | float):
                raise ServerError(f"{url}: echoed log-prob missing at position {position}")
            values.append(float(value))
        return values


#: What vLLM answers (HTTP 500) to every request once its engine process has died.
_ENGINE_DEAD = ("EngineCore encountered an issue", "EngineDeadError", "engine dead")


def _engine_dead(message: str) -> bool:
    return any(marker in message for marker in _ENGINE_DEAD)


def _advice(status: int, message: str, payload: dict[str, Any] | None = None) -> str:
    """One sentence naming the fix for a failure whose cause is known, else ``""``."""
    if status == 400 and "enable-auto-tool-choice" in message:
        # A plain `vllm serve` parses no tool calls; the agent sends `tools` for tool envs.
        return (
            ". The server does not parse tool calls: start vLLM with"
            " `--enable-auto-tool-choice --tool-call-parser hermes` (Qwen3 and other"
            " Hermes-style models; docs/agents.md)"
        )
    if _engine_dead(message):
        # vLLM 0.32's CPU build: a seeded request whose prompt is prefilled in chunks
        # crashes the engine ("CPU Generator does not use offset") and the server exits.
        if payload is not None and "seed" in payload:
            return (
                ". The vLLM engine died and the server does not recover. On vLLM's CPU build"
                " a seeded request whose prompt is longer than --max-num-batched-tokens does"
                " this (`CPU Generator does not use offset` in the server's log): restart it"
                " with `--max-num-batched-tokens` at least as large as the longest prompt,"
                " e.g. 32768 (docs/agents.md)"
            )
        return (
            ". The vLLM engine died and the server does not recover: restart it (its log says why)"
        )
    return ""


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read(1 << 16).decode("utf-8", "replace")  # the message, not a flood
    except (OSError, http.client.HTTPException):
        return error.reason or ""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("message", body))
        if isinstance(data, dict) and "message" in data:
            return str(data["message"])
    except ValueError:
        pass
    return body[:300] or str(error.reason)


def _finish_reason(choice: dict[str, Any]) -> str | None:
    """The choice's finish reason in the trajectory schema's words: ``stop`` or ``length``.

    A server with a tool-call parser (vLLM's ``--tool-call-parser``) ends a turn whose
    calls it parsed with ``tool_calls``; generation stopped there as at any end of
    sequence, so the record says ``stop`` like an in-process model's would.
    """
    reason = choice.get("finish_reason")
    if reason in ("tool_calls", "function_call"):
        return "stop"
    return reason if isinstance(reason, str) else None


def _first_choice(reply: Any, url: str) -> dict[str, Any]:
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ServerError(f"{url}: the reply has no choices: {str(reply)[:200]}")
    return choices[0]


def _read_logprobs(block: Any) -> tuple[list[float] | None, list[str] | None, list[int] | None]:
    """(log-probs, token texts, token ids when sent as ``token_id:N``) of a chat choice."""
    content = block.get("content") if isinstance(block, dict) else None
    if not isinstance(content, list):
        return None, None, None
    values, tokens, ids = [], [], []
    for entry in content:
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), int | float):
            return None, None, None
        values.append(float(entry["logprob"]))
        token = str(entry.get("token", ""))
        tokens.append(token)
        if token.startswith(_TOKEN_ID_PREFIX) and token[len(_TOKEN_ID_PREFIX) :].isdigit():
            ids.append(int(token[len(_TOKEN_ID_PREFIX) :]))
    return values, tokens, ids if len(ids) == len(values) and ids else None


def _with_tool_calls(content: str, calls: list[Any]) -> str:
    """Structured tool calls written back as ``<tool_call>`` blocks the envs parse."""
    blocks = []
    for call in calls:
        function = call.get("function", call) if isinstance(call, dict) else {}
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                pass  # left as the string: the env reports the bad arguments
        body = json.dumps(
            {"name": function.get("name"), "arguments": arguments}, ensure_ascii=False
        )
        blocks.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(([content] if content else []) + blocks)


def _token_id(token: Any) -> int | None:
    """The id in a ``token_id:N`` token text (``return_tokens_as_token_ids``), else None."""
    if isinstance(token, str) and token.startswith(_TOKEN_ID_PREFIX):
        tail = token[len(_TOKEN_ID_PREFIX) :]
        return int(tail) if tail.isdigit() else None
    return None


def _chained(prompts: list[list[int]], completions: list[list[int]]) -> bool:
    """Whether each prompt starts with the previous prompt and completion."""
    for k in range(1, len(prompts)):
        so_far = prompts[k - 1] + completions[k - 1]
        if prompts[k][: len(so_far)] != so_far:
            return False
    return True
