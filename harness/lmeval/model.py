"""The embedded offline model (SmolLM2-135M, harness.local_model) as an lm-eval backend: ``m2bench-default``.

lm-eval has no plugin entry point for models, so run it through this module, which registers the
backend and then hands over to lm-eval's own command line:

    python -m harness.lmeval.model --model m2bench-default --include_path tasks/lm_eval --tasks m2_medqa --limit 5

Generation sends the prompt as one user chat message (the same as Inspect's ``m2bench/default``).
For real models use lm-eval's own backends (``--model hf``, ``vllm``, ``local-chat-completions``).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness.local_model import LocalModel


@register_model("m2bench-default")
class EmbeddedLM(LM):
    def __init__(self, max_gen_toks: int = 256, **_: Any) -> None:
        super().__init__()
        self.max_gen_toks = int(max_gen_toks)
        self.lm = LocalModel.shared()
        self._last: tuple[tuple[int, ...], Any] | None = None  # (ids, last-token logprobs) of the latest forward pass

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        self._last = None  # multiple-choice options share one context
        return [self._loglikelihood(*req.args) for req in requests]

    def _logprobs(self, ids: list[int], n: int):
        """Log-probabilities of the last ``n`` tokens of ``ids`` (one forward pass; a one-token
        continuation of the previous context reuses that context's pass)."""
        torch = self.lm.torch
        if n == 1 and self._last is not None and self._last[0] == tuple(ids[:-1]):
            return self._last[1]
        with self.lm.lock, torch.no_grad():
            logits = self.lm.model(input_ids=torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits[-n - 1 :], dim=-1)
        self._last = (tuple(ids), logprobs[-1:])
        return logprobs[:-1]

    def _loglikelihood(self, context: str, continuation: str) -> tuple[float, bool]:
        torch, tok = self.lm.torch, self.lm.tokenizer
        # split at the whitespace boundary, as lm-eval's hf backend does
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = tok.encode(context + continuation, add_special_tokens=False)
        ctx = tok.encode(context, add_special_tokens=False)
        cont = whole[len(ctx) :] or whole[-1:]
        ids = (ctx + cont)[-self.lm.max_context :]
        if len(cont) == 1 and (self._last is None or self._last[0] != tuple(ids[:-1])):
            self._logprobs(ids[:-1], 0)  # the context's pass, kept for the other options
        logprobs = self._logprobs(ids, len(cont))
        target = torch.tensor(cont)
        total = float(logprobs.gather(1, target[:, None]).sum())
        greedy = bool((logprobs.argmax(-1) == target).all())
        return total, greedy

    def loglikelihood_rolling(self, requests) -> list[float]:
        raise NotImplementedError("m2bench-default does not compute rolling log-likelihoods (perplexity tasks)")

    def generate_until(self, requests) -> list[str]:
        out = []
        for req in requests:
            context, kwargs = req.args
            max_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
            text = self.lm.generate([{"role": "user", "content": context}], max_new, float(kwargs.get("temperature") or 0.0)).text
            for stop in kwargs.get("until") or []:
                if stop and stop in text:
                    text = text.split(stop)[0]
            out.append(text)
        return out


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
