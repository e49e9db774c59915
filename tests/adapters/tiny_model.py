"""A tiny causal LM and tokenizer built from scratch: random weights, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Answer the question in a few words, using only the notes.",
    "Notes: user: I adopted a beagle and named him Zorblat! Question: What is my dog's name?",
    "Answer: I don't know. The garden club meets on Tuesdays. We moved to Porto.",
]


def build_tiny_model(folder: Path, layers: int = 2, hidden: int = 64, heads: int = 4,
                     kv_heads: int = 2, intermediate: int | None = None) -> Path:
    """Write a Llama-architecture model to `folder` (default: a few hundred thousand
    parameters; the GPU benchmark asks for about 1B)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>",
                                        pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=core.get_vocab_size(), hidden_size=hidden,
                         intermediate_size=intermediate or hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=16384, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
