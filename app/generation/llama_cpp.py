"""A GGUF model through llama-cpp-python (the packaged generators; MMKB_GENERATOR_BACKEND=llama-cpp)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from app.generation.base import Messages
from app.generation.multimodal import text_only
from app.idle_cores import allowed_cpus, free_cores
from app.registry import ModelNotAvailable

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage


class LlamaCppGenerator:
    """A GGUF model through llama-cpp-python, greedy.

    llama-cpp-python keeps the KV cache of the last prompt (+ answer) and, for the next one,
    re-evaluates only the tokens after their longest common token prefix. Every answer
    prompt starts with the same system message, so ``warm()`` evaluates it once at load and
    the first question pays only for its sources and question (later ones reuse it anyway):
    1.1 s less to the first token for the 0.5B, 2.6 s for the 1.5B, for 1.4 / 2.9 s at load,
    which pays when the generator is loaded before the first question is asked.
    ``count_tokens`` / ``prompt_tokens`` count with the model's own tokenizer, so a prompt
    builder can keep the prompt within ``n_ctx - max_new_tokens`` (see ``sources_that_fit``).
    """

    # The packaged GGUF models read text; llama.cpp's own image path needs a separate mmproj file.
    supports_images = False

    def __init__(
        self,
        gguf_path: Path,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        prompt_lookup: int = 0,
        n_batch: int = 512,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotAvailable(
                "the llama-cpp backend needs llama-cpp-python: `pip install llama-cpp-python` (compiles; a few minutes)"
            ) from exc
        if not gguf_path.is_file():
            raise ModelNotAvailable(f"MMKB_GENERATOR_PATH={gguf_path} is not a GGUF file")
        self.name = f"llama-cpp:{gguf_path.name}"
        draft = None
        if prompt_lookup > 0:
            # Prompt-lookup decoding: the next tokens are guessed by finding the last 1-2 tokens
            # earlier in the prompt (answers copy from their sources) and verified in one batch.
            # Greedy output is unchanged but for near-ties (batched arithmetic); every position's
            # logits are kept (n_ctx x vocab floats). Slower on 2 CPU cores: see the README.
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            draft = LlamaPromptLookupDecoding(num_pred_tokens=prompt_lookup)
        # The same threads for the prompt and for decoding (llama-cpp-python's default: all cores
        # for the prompt, half for decoding). ggml's threads meet at a barrier after every op, so
        # one descheduled thread stalls the rest: on the loaded 2-core VM, 1 thread read an
        # ~800-token prompt in 12.9 s vs 25.0 s with 2, and decoded 21 vs 4.8 tokens/s (0.5B,
        # interleaved A/B); with the cores free, 2 threads answered in half the time of 1. So by
        # default each answer takes one thread per core that other processes leave free
        # (app.idle_cores); MMKB_GENERATOR_THREADS fixes the number instead.
        self.fixed_threads = n_threads if n_threads and n_threads > 0 else None
        self.max_threads = len(allowed_cpus())
        threads = self.fixed_threads or max(1, self.max_threads // 2)
        self.threads_used = threads  # of the last answer; benchmarks report it
        # n_gpu_layers=-1 offloads everything when llama-cpp-python was built with CUDA; a no-op on CPU builds.
        self.model = Llama(
            model_path=str(gguf_path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=-1,
            draft_model=draft,
            # Verifying drafts needs every position's logits; llama-cpp-python 0.3.36 turns that on
            # for a draft model but sizes its logits buffer by this flag (n_batch rows without it,
            # which a prompt longer than n_batch overflows), so say it outright.
            logits_all=draft is not None,
            verbose=False,
        )
        self.n_ctx = self.model.n_ctx()
        self._formatter = _chat_formatter(self.model)
        self._lock = threading.Lock()

    def threads_now(self) -> int:
        """Threads for the next prompt: the fixed setting, else one per free core (at least one)."""
        if self.fixed_threads is not None:
            return self.fixed_threads
        free = free_cores()
        return max(1, min(self.max_threads, free if free is not None else self.max_threads // 2))

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        with self._lock:
            threads = self.threads_now()
            # llama-cpp-python fixes the threads when it creates the context and has no public
            # setter; its context wrapper's set_n_threads is llama.cpp's llama_set_n_threads.
            self.model._ctx.set_n_threads(threads, threads)
            self.threads_used = threads
            # text_only gives role/content string messages; with stream=True the result is an iterator
            # of chunk dicts, which llama-cpp-python's return type (no overload on stream) does not say.
            chunks = cast(
                Iterator[dict[str, Any]],
                self.model.create_chat_completion(
                    messages=cast("list[ChatCompletionRequestMessage]", text_only(messages)),
                    max_tokens=max_new_tokens,
                    temperature=0.0,
                    stream=True,
                ),
            )
            for part in chunks:
                delta = part["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield delta

    def warm(self, system_prompt: str | None = None) -> int:
        """Evaluates a chat of just ``system_prompt`` (default: the answer prompt's) so that its
        KV cache is in place for the first question. Returns the tokens now cached."""
        if system_prompt is None:
            from app.generation.prompting import SYSTEM_PROMPT

            system_prompt = SYSTEM_PROMPT
        chat: list[ChatCompletionRequestMessage] = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": ""},
        ]
        with self._lock:
            # One sampled token, never evaluated: the cache holds exactly the formatted prompt, and
            # the next prompt keeps its common prefix (system message + the user turn's header).
            self.model.create_chat_completion(messages=chat, max_tokens=1, temperature=0.0)
            return self.model.n_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as it is tokenized inside a prompt (no BOS; special tokens parsed)."""
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, messages: Messages) -> int:
        """Tokens of the whole chat prompt (chat template included) that ``stream`` would evaluate."""
        ids = self.prompt_token_ids(messages)
        if ids is not None:
            return len(ids)
        # A GGUF without a chat template of its own: content plus a few tokens of role markup each.
        return sum(self.count_tokens(str(m.get("content") or "")) + 5 for m in text_only(messages)) + 3

    def prompt_token_ids(self, messages: Messages) -> list[int] | None:
        """The prompt's token ids as the GGUF's chat template makes them; None without a template."""
        if self._formatter is None:
            return None
        formatted = self._formatter(messages=text_only(messages))
        return self.model.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)

    def prompt_budget(self, max_new_tokens: int) -> int:
        """Prompt tokens that leave room for ``max_new_tokens`` of answer in the context window."""
        return self.n_ctx - max_new_tokens


def _chat_formatter(model):
    """The formatter create_chat_completion uses when the GGUF carries a chat template (all the
    packaged models), else None. Used only to count prompt tokens: stream() formats through
    llama-cpp-python itself, so a mismatch could only make the count approximate."""
    template = model.metadata.get("tokenizer.chat_template")
    if not template or model.chat_handler is not None or model.chat_format != "chat_template.default":
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def text(token: int) -> str:
        return model.detokenize([token], special=True).decode("utf-8", "replace") if token != -1 else ""

    return Jinja2ChatFormatter(template=template, eos_token=text(model.token_eos()), bos_token=text(model.token_bos()))
