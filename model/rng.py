"""Named random streams derived from one root seed with ``numpy.random.SeedSequence``.

Each purpose (arrivals, attributes, each pathway stage) has its own stream, so a change in one
stage does not shift the draws of another. Per-child draws are rows of a per-stage table
indexed by the referral number, so the same referral gets the same uniforms in every scenario
(common random numbers). No global random state is touched.
"""

from __future__ import annotations

from array import array
from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Every source of randomness. Numbers are permanent: add new ones, never renumber."""

    ARRIVALS = 1
    ATTRIBUTES = 2
    LOCAL_AUTHORITIES = 3
    RG = 4
    DISQUALIFICATION = 5
    CG = 6
    RECONSIDERATION = 7
    CARE = 8
    MISSING = 9
    GUARDIANSHIP = 10
    JUSTICE = 11
    LEAVE = 12
    TRANSITION = 13
    RETRAFFICKING = 14
    HOTELS = 15  # never-referred children in Home Office hotels
    CLOCK_RESETS = 16  # fresh hazard budgets after a clock has fired (per child)
    MESA = 99


class DrawTable:
    """Uniform draws in rows: row ``i`` belongs to referral ``i``; filled in bulk blocks.

    Blocks are numpy arrays (8 bytes a draw); ``row`` hands back a Python list because
    per-child arithmetic on floats is several times faster than on numpy scalars.
    """

    __slots__ = ("_block", "_blocks", "_rng", "width")

    def __init__(self, seed: np.random.SeedSequence, width: int, block: int = 4096) -> None:
        self._rng = np.random.default_rng(seed)
        self.width, self._block = width, block
        self._blocks: list[np.ndarray] = []

    def row(self, i: int) -> list[float]:
        b, r = divmod(i, self._block)
        blocks = self._blocks
        while b >= len(blocks):
            blocks.append(self._rng.random((self._block, self.width)))
        return blocks[b][r].tolist()


class StageDraws:
    """Per-referral rows of several stages' streams side by side, for one cheap fetch per
    referral. Each stage's columns come from its own generator, so its values are exactly
    those a separate ``DrawTable`` would give: the layout changes, the draws do not."""

    __slots__ = ("_block", "_blocks", "_rngs", "offsets")

    def __init__(
        self,
        streams: Streams,
        widths: dict[Stream, int],
        entity: tuple[int, ...] = (),
        block: int = 4096,
    ) -> None:
        self._rngs = [
            (np.random.default_rng(streams.seed(s, *entity)), w) for s, w in widths.items()
        ]
        self.offsets: dict[Stream, tuple[int, int]] = {}
        pos = 0
        for stream, width in widths.items():
            self.offsets[stream] = (pos, pos + width)
            pos += width
        self._block = block
        self._blocks: list[np.ndarray] = []

    def row(self, i: int) -> array[float]:
        """Row ``i`` as a compact ``array('d')``: a third of a list's memory, as fast to index."""
        b, r = divmod(i, self._block)
        blocks = self._blocks
        while b >= len(blocks):
            blocks.append(np.hstack([g.random((self._block, w)) for g, w in self._rngs]))
        out = array("d")
        out.frombytes(blocks[b][r].tobytes())
        return out


class Streams:
    """Independent streams for one replicate of one run."""

    def __init__(self, root_seed: int, replicate: int) -> None:
        self.root_seed, self.replicate = int(root_seed), int(replicate)
        self._shared: dict[Stream, np.random.Generator] = {}

    def seed(self, stream: Stream, *entity: int) -> np.random.SeedSequence:
        """Seed for (replicate, stream, *entity): distinct, reproducible, non-overlapping."""
        return np.random.SeedSequence(
            self.root_seed, spawn_key=(self.replicate, int(stream), *entity)
        )

    def structural_seed(self, stream: Stream) -> np.random.SeedSequence:
        """Seed shared by all replicates (e.g. the synthetic local authorities)."""
        return np.random.SeedSequence(self.root_seed, spawn_key=(2**31, int(stream)))

    def rng(self, stream: Stream) -> np.random.Generator:
        if stream not in self._shared:
            self._shared[stream] = np.random.default_rng(self.seed(stream))
        return self._shared[stream]

    def table(self, stream: Stream, width: int) -> DrawTable:
        """Per-referral uniforms for one stage: ``width`` slots per referral."""
        return DrawTable(self.seed(stream), width)
