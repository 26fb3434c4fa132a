"""Any Hugging Face ``transformers`` causal LM as an agent, student or teacher.

``HFAgent`` (``agents.hf.agent``):

* **acts** (``act``, ``act_batch``): builds each env's prompt (``agents.prompts``),
  generates for all of them in one left-padded batch with a KV cache, stops a
  row at ``</action>`` or end of sequence, and parses the action
  (``agents.parsing``). Sampling is seeded per row from (seed, task, episode,
  turn), so an episode's actions do not depend on which other episodes share
  its batch;
* **records** every turn (``last_turn`` / ``last_turns``: an ``AgentTurn``
  with prompt and completion token ids and the completion's per-token
  log-probs at temperature 1);
* **ranks** instead of generating when ``mode="rank"``: every admissible
  action is scored by its log-likelihood after the prompt (all candidates in
  batched passes over one cached prompt prefix) and the best is taken;
* **scores** given completions (``logprobs``), as a teacher must, in batches
  whose composition and padding do not change the result; and whole
  trajectories in one forward pass where consecutive prompts extend each
  other (``logprobs_trajectory``).

One module per job: ``agent`` (the agent interface), ``generation`` (sampling),
``scoring`` (log-probs of given tokens), ``ranking`` (admissible actions) and
``model`` (the transformers model, its forward arguments and KV cache).

``HFAgent.from_pretrained(name_or_path)`` loads a model and tokenizer by hub
name or local folder (downloading is the user's business: offline runs need
the weights on disk); ``HFAgent(model=..., tokenizer=...)`` wraps a loaded pair.
"""

from __future__ import annotations

from agents.hf.agent import HFAgent
from agents.hf.generation import Generation, SamplingParams

__all__ = ["Generation", "HFAgent", "SamplingParams"]
