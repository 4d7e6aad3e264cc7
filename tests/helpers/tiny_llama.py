"""A tiny random Llama model and word-level tokenizer, shaped like the embedded model (grouped-query
attention, tied embeddings, chat template), for fast tests of its loading and decoding code."""

from __future__ import annotations

from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
WORDS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "user", "assistant", "system"] + [f"w{i}" for i in range(90)]


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def tiny_model(seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # weights that make every part count: norm weights away from 1, and query and
        # key weights large enough for sharp attention (a wrong rotary embedding or head grouping shows)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif p.dim() == 2:
                p.normal_(0.0, (3.0 if "q_proj" in name or "k_proj" in name else 1.0) / p.shape[1] ** 0.5)
    return model.eval()


GGUF_MATRICES = {  # transformers' parameter -> llama.cpp's tensor name, per layer
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def llama_cpp_permute(rows: Any, n_head: int) -> Any:
    """The row order llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) gives the
    query and key matrices."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def quantise_like_gguf(model: Any) -> dict[str, tuple[Any, str]]:
    """Rounds the model's matrices in place to what a GGUF file of it would hold (Q4_1; the tied
    embedding Q8_0, as in the embedded model's file) and returns that file's blocks by tensor name,
    as uint8 rows in the file's row order (gguf's own quantiser; no code of ours)."""
    import numpy as np
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    config = model.config
    blocks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() != 2:
                continue
            kind = GGMLQuantizationType.Q8_0 if name == "model.embed_tokens.weight" else GGMLQuantizationType.Q4_1
            rows = quantize(p.numpy().astype(np.float32), kind)
            p.copy_(torch.from_numpy(dequantize(rows, kind).reshape(p.shape)))
            if name == "model.embed_tokens.weight":
                gguf_name = "token_embd.weight"
            else:
                layer, part = name.removeprefix("model.layers.").removesuffix(".weight").split(".", 1)
                gguf_name = f"blk.{layer}.{GGUF_MATRICES[part]}.weight"
                if part in ("self_attn.q_proj", "self_attn.k_proj"):
                    heads = config.num_attention_heads if part == "self_attn.q_proj" else config.num_key_value_heads
                    rows = llama_cpp_permute(rows, heads)
            blocks[gguf_name] = (torch.from_numpy(np.ascontiguousarray(rows)), kind.name)
    return blocks
