"""A tiny random-weight chat model built locally, so tests exercise the real loading and
generation code without any download. Its output is random: assert on plumbing, not wording.
"""

from __future__ import annotations

from pathlib import Path

from personalization.models import RegisteredModel

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if not loop.last or not continue_final_message %}{{ '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TRAINING_TEXT = [
    "The user likes vegetarian food and cooks at home on weekends.",
    "I am a nurse working night shifts in a small hospital.",
    "Write a short poem about the sea, please.",
    '[{"attribute": "is a teacher", "reason": "mentions grading", "confidence": 0.8, "evidence_turns": [0]}]',
    "Answer: YES. Answer: NO. makes_sense maybe doesnt_make_sense 1 2 3 4 5",
    "system user assistant: How do I plan a trip to Japan on a budget?",
]


def build_tiny_chat_model(target: Path) -> Path:
    """Save a ~0.3 MB Llama with a byte-level BPE tokenizer and a ChatML template in `target`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(target)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # Larger than the usual 0.02 so greedy decoding wanders through the vocabulary instead of
        # repeating one token: outputs are random words, not blank, like a real (bad) model's.
        initializer_range=0.5,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id
    )
    model.save_pretrained(target)
    return target


def register_tiny_model(name: str, path: Path) -> RegisteredModel:
    """A RegisteredModel row pointing at a folder made by build_tiny_chat_model (needs the db)."""
    row, _ = RegisteredModel.objects.update_or_create(
        name=name,
        defaults={
            "backend": RegisteredModel.Backend.HF_LOCAL,
            "model_id": str(path),
            "revision": "tiny-test-model",
            "server": "",
            "default_params": {"max_new_tokens": 16, "batch_size": 4},
        },
    )
    return row
