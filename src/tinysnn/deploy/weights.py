"""The X→E weight table of the C runtime: packed dense rows, and (pruned) sparse rows.

Dense: row i holds the N codes c_w of input i in the smallest container, 4 codes per byte up to
2 bits, 2 per byte up to 4 bits, one byte up to 8 bits, ``uint16_t`` up to 16, ``uint32_t`` above.
A packed row of W words (N padded with zero codes to W·k) holds neuron p·W + j in bits p·8/k
upward of byte j (part p = 0 … k − 1), so each part unpacks into a contiguous run of neurons. W is
a whole number of 16-byte vectors: the runtime's neuron loop runs over a row's words, and GCC's
``-O2`` vectoriser only takes loops without a scalar epilogue.

Pruned (zero-weight synapses dropped): an input whose row has few non-zero codes stores them as
sparse entries (j ≪ B_w) | c_w in ``uint16_t`` (or ``uint32_t`` when index and code need more than
16 bits), when that takes fewer bytes than its dense row; an all-zero row stores nothing. Per input,
``tinysnn_dense_row[i]`` names its dense row (−1: sparse) and ``tinysnn_sparse_start[i … i+1]`` its
entries. Dropping zero codes changes no sum, so a pruned table gives the same spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: bytes of a vector register (SSE2, NEON): rows are padded to a whole number of them
VECTOR_BYTES = 16


def padded_words(words: int, word_bytes: int) -> int:
    """``words`` rounded up to a whole number of vectors."""
    per_vector = VECTOR_BYTES // word_bytes
    return -(-words // per_vector) * per_vector


@dataclass(frozen=True)
class Packing:
    """How dense codes are stored: ``per_word`` codes in one ``ctype`` word of ``word_bytes``."""

    ctype: str
    per_word: int
    word_bytes: int

    @classmethod
    def for_bits(cls, bits: int) -> "Packing":
        if bits <= 2:
            return cls("uint8_t", 4, 1)
        if bits <= 4:
            return cls("uint8_t", 2, 1)
        if bits <= 8:
            return cls("uint8_t", 1, 1)
        return cls("uint16_t", 1, 2) if bits <= 16 else cls("uint32_t", 1, 4)

    def words(self, n: int) -> int:
        """Words per row of n codes (padded to whole vectors)."""
        return padded_words(-(-n // self.per_word), self.word_bytes)

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """[I, N] codes → [I, W] words: neuron p·W + j in bits p·(8/per_word) upward of word j."""
        words = self.words(codes.shape[1])
        padded = np.zeros((codes.shape[0], words * self.per_word), dtype=np.uint32)
        padded[:, :codes.shape[1]] = codes
        if self.per_word == 1:
            return padded
        width = 8 * self.word_bytes // self.per_word
        parts = padded.reshape(codes.shape[0], self.per_word, words)
        return sum(parts[:, p, :] << np.uint32(p * width) for p in range(self.per_word)).astype(np.uint32)


@dataclass(frozen=True)
class WeightTable:
    """What model.c stores: dense rows, and for a pruned table the sparse entries and row descriptors."""

    packing: Packing
    dense: np.ndarray  # [rows, words]
    #: pruned tables only (None: every input has its dense row i)
    dense_row: np.ndarray | None  # int [I], −1 for sparse rows
    sparse_start: np.ndarray | None  # [I + 1]
    sparse: np.ndarray | None  # [entries]: (j << bits) | code
    entry_ctype: str
    bits: int

    @classmethod
    def build(cls, codes: np.ndarray, bits: int, prune: bool) -> "WeightTable":
        packing = Packing.for_bits(bits)
        n_inputs, n = codes.shape
        if not prune:
            return cls(packing, packing.pack(codes), None, None, None, "uint16_t", bits)
        index_bits = max(1, int(np.ceil(np.log2(n))))
        entry_ctype, entry_bytes = ("uint16_t", 2) if index_bits + bits <= 16 else ("uint32_t", 4)
        nonzero = codes != 0
        row_bytes = packing.words(n) * packing.word_bytes
        sparse_rows = nonzero.sum(1) * entry_bytes < row_bytes
        dense_row = np.full(n_inputs, -1, dtype=np.int64)
        dense_row[~sparse_rows] = np.arange(int((~sparse_rows).sum()))
        starts, entries = [0], []
        for i in range(n_inputs):
            if sparse_rows[i]:
                j = np.flatnonzero(nonzero[i])
                entries.append((j.astype(np.uint64) << np.uint64(bits)) | codes[i, j].astype(np.uint64))
            starts.append(starts[-1] + (int(nonzero[i].sum()) if sparse_rows[i] else 0))
        sparse = np.concatenate(entries) if entries else np.zeros(0, dtype=np.uint64)
        return cls(packing, packing.pack(codes[~sparse_rows]), dense_row, np.asarray(starts), sparse,
                   entry_ctype, bits)

    @property
    def pruned(self) -> bool:
        return self.dense_row is not None

    def nbytes(self) -> int:
        """Bytes of the tables (descriptors included)."""
        size = self.dense.size * self.packing.word_bytes
        if self.dense_row is not None and self.sparse_start is not None and self.sparse is not None:
            size += self.dense_row.size * 2 + self.sparse_start.size * 4
            size += self.sparse.size * (2 if self.entry_ctype == "uint16_t" else 4)
        return size
