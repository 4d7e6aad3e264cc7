"""The embedded model's decoder (harness.local_model) against transformers' own Llama forward pass and
generate(), on a tiny random Llama of the same shape family; and LocalModel's calls on top of it."""

from __future__ import annotations

import json

import pytest
import torch

from harness import local_model, local_weights
from harness.local_model import LocalModel, _Decoder
from harness.tools.embedded_bench import transformers_greedy
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=1)


@pytest.fixture
def decoder(model):
    return _Decoder(model.config, {name: t.detach() for name, t in model.state_dict().items()})


def reference_logits(model, ids: list[int]):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def close_at_fp16(got, want) -> bool:
    """Equal up to float16 rounding of the weight matrices (relative error ~1e-3), far below what a
    wrong rotary pairing, norm weight or head grouping would cause (order 1)."""
    return float((got - want).abs().max()) <= 1e-2 * float(want.abs().max())


IDS = [1, 3, 9, 17, 25, 33, 41, 49, 57, 65, 73, 81, 2, 1, 4]


def test_prompt_logits_match_transformers(model, decoder):
    assert close_at_fp16(decoder.forward(IDS, 0, all_logits=True), reference_logits(model, IDS))
    assert close_at_fp16(decoder.forward(IDS, 0), reference_logits(model, IDS)[-1])


def test_one_token_steps_and_chunks_continue_the_cache(model, decoder):
    whole = decoder.forward(IDS, 0, all_logits=True)
    decoder.forward(IDS[:5], 0)
    chunk = decoder.forward(IDS[5:9], 5, all_logits=True)  # a chunk after cached positions (masked attention)
    assert torch.allclose(chunk, whole[5:9], atol=1e-4, rtol=1e-4)
    for position in range(9, len(IDS)):  # then one token at a time (the single-token step)
        assert torch.allclose(decoder.forward([IDS[position]], position), whole[position], atol=1e-4, rtol=1e-4)
    # rewinding: positions past the new start are simply overwritten
    decoder.forward([7, 8, 9], 3)
    assert torch.allclose(decoder.forward(IDS[3:], 3, all_logits=True), whole[3:], atol=1e-4, rtol=1e-4)


def test_the_cache_grows_past_its_first_block_and_keeps_what_it_held(model, decoder):
    decoder.forward(IDS, 0)
    first = decoder.capacity
    ids = [(7 * i) % 90 + 6 for i in range(first + 3)]
    whole = reference_logits(model, ids)
    decoder.forward(ids[: first - 2], 0)
    for position in range(first - 2, len(ids)):  # one token at a time across the block's end
        assert close_at_fp16(decoder.forward([ids[position]], position), whole[position])
    assert decoder.capacity > first


@pytest.fixture
def tiny_lm(monkeypatch, tmp_path, model):
    """LocalModel on the tiny model (standing in for the GGUF's de-quantisation), cached in a private folder
    (the shared weights cache is keyed by the real GGUF, which the tiny model must never stand in for)."""
    monkeypatch.setenv(local_weights.MODEL_CACHE_ENV, str(tmp_path / "weights"))
    monkeypatch.setattr(local_weights, "load_gguf", lambda folder=None: (tiny_tokenizer(), model))
    monkeypatch.setattr(local_weights, "block_table", lambda gguf: {})  # the real file's blocks are not the tiny model's
    return LocalModel()


MESSAGES = [{"role": "user", "content": "w10 w11 w12 w13"}]


def test_greedy_generation_matches_transformers_generate(tiny_lm, model):
    ids = tiny_lm._prompt_ids(MESSAGES, 20)
    want = transformers_greedy(model, ids, 20, tiny_lm.tokenizer.eos_token_id)
    got = tiny_lm.generate(MESSAGES, max_new_tokens=20)
    assert got.input_tokens == len(ids) and got.output_tokens == len(want)
    assert got.text == tiny_lm.tokenizer.decode(want, skip_special_tokens=True)


def test_sampling_is_seeded_and_leaves_the_global_generator_alone(tiny_lm):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = tiny_lm.generate(MESSAGES, max_new_tokens=15, temperature=1.5, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert tiny_lm.generate(MESSAGES, max_new_tokens=15, temperature=1.5, seed=7) == first
    texts = {tiny_lm.generate(MESSAGES, max_new_tokens=15, temperature=1.5, seed=s).text for s in range(6)}
    assert len(texts) > 1  # the seed matters


def test_generate_stops_at_the_token_budget(tiny_lm):
    assert tiny_lm.generate(MESSAGES, max_new_tokens=3).output_tokens <= 3
    assert tiny_lm.generate(MESSAGES, max_new_tokens=0).output_tokens == 0


SCHEMA = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "criteria_met": {"type": "boolean"},
        "tool": {"enum": ["lookup", "order_test", "refer"]},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def test_generate_json_always_parses_and_matches_the_schema(tiny_lm):
    for n in range(3):
        gen = tiny_lm.generate_json([{"role": "user", "content": f"w{20 + n} w30 w31"}], SCHEMA)
        value = json.loads(gen.text)
        assert list(value) == list(SCHEMA["properties"])
        assert isinstance(value["explanation"], str) and isinstance(value["criteria_met"], bool)
        assert value["tool"] in SCHEMA["properties"]["tool"]["enum"] and isinstance(value["count"], int)
        assert isinstance(value["tags"], list) and all(isinstance(t, str) for t in value["tags"])
        assert gen.output_tokens == tiny_lm.count_tokens(gen.text)


def test_the_float32_model_is_loaded_only_when_asked_for(tiny_lm, model):
    assert tiny_lm.model is model  # from the de-quantisation (here: the tiny model)
    cached = LocalModel()  # now from the cache folder: the transformers model is built on first use
    assert cached.weights_source == "cache" and cached._weights._model is None
    with torch.no_grad():
        assert torch.equal(cached.model(input_ids=torch.tensor([IDS])).logits, model(input_ids=torch.tensor([IDS])).logits)


def test_decoder_refuses_what_it_does_not_implement(model):
    config = model.config.__class__(**{**model.config.to_dict(), "attention_bias": True})
    with pytest.raises(local_model.M2BenchError):
        _Decoder(config, {})


def test_prompts_reuse_shared_blocks_with_bit_identical_results(model, decoder):
    block = local_model.PROMPT_BLOCK
    base = [(5 * i) % 90 + 6 for i in range(2 * block + 10)]
    other = base[: block + 5] + [7] * (block + 20)  # shares one whole block and a few tokens with base
    fresh = _Decoder(model.config, {name: t.detach() for name, t in model.state_dict().items()})
    want = fresh.prompt(other)

    decoder.prompt(base)
    computed = []
    real_forward = decoder.forward
    decoder.forward = lambda ids, start, all_logits=False: computed.append(start) or real_forward(ids, start, all_logits)
    got = decoder.prompt(other)
    assert computed == [block, 2 * block]  # the first block came from the previous prompt
    assert torch.equal(got, want)  # ...and changed nothing, bit for bit
    assert close_at_fp16(got, reference_logits(model, other)[-1])

    computed.clear()  # the same prompt again: only its last block is computed (its logits are the answer)
    assert torch.equal(decoder.prompt(other), want) and computed == [2 * block]
    computed.clear()  # a prompt that differs in the first block recomputes everything
    assert close_at_fp16(decoder.prompt([9] + other[1:]), reference_logits(model, [9] + other[1:])[-1])
    assert computed == [0, block, 2 * block]


def test_generate_json_feeds_the_model_exactly_the_prompt_and_the_json_written(tiny_lm, monkeypatch):
    """The cache holds the prompt followed by the tokens of each piece of JSON written, in order:
    no generated token that the written value replaced (strings and numbers), no piece twice."""
    decoder, writer_class = tiny_lm.decoder, local_model._JsonWriter
    cache: list[int] = []
    real_prompt, real_forward = decoder.prompt, decoder.forward

    def record(ids, start):
        del cache[start:]
        cache.extend(ids)

    def prompt(ids):
        record(ids, 0)
        return real_prompt(ids)

    def forward(ids, start, all_logits=False):
        if not all_logits:  # option scoring looks ahead and rewinds
            record(ids, start)
        return real_forward(ids, start, all_logits)

    monkeypatch.setattr(decoder, "prompt", prompt)
    monkeypatch.setattr(decoder, "forward", forward)
    pieces: list[str] = []
    writers = []
    real_write, real_replace, real_init = writer_class._write, writer_class._replace_generated, writer_class.__init__
    monkeypatch.setattr(writer_class, "__init__", lambda self, *a: real_init(self, *a) or writers.append(self))
    monkeypatch.setattr(writer_class, "_write", lambda self, text: pieces.append(text) or real_write(self, text))
    monkeypatch.setattr(
        writer_class,
        "_replace_generated",
        lambda self, start, fed, text: pieces.append(text) or real_replace(self, start, fed, text),
    )
    messages = [{"role": "user", "content": "w20 w30 w31"}]
    gen = tiny_lm.generate_json(messages, SCHEMA)
    assert "".join(pieces) == gen.text
    writer = writers[0]
    expected = tiny_lm._prompt_ids(messages, 1024) + [
        t for p in pieces for t in tiny_lm.tokenizer.encode(p, add_special_tokens=False)
    ]
    assert cache[: writer.length] + writer.pending == expected
