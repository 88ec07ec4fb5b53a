"""Named random streams derived from one root seed with ``numpy.random.SeedSequence``.

Each purpose (arrivals, attributes, each pathway stage) has its own stream, so a change in one
stage does not shift the draws of another. Per-child draws are rows of a per-stage table
indexed by the referral number, so the same referral gets the same uniforms in every scenario
(common random numbers). No global random state is touched.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from types import FrameType
from typing import Any, overload

import attrs
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
    REFERRAL = 17  # a referral after the child's first (repeat or linked): per (child, number)
    AGE_DISPUTE = 18  # age disputes at the first referral
    MESA = 99


class DrawTable:
    """Uniform draws in rows: row ``i`` belongs to referral ``i``; filled in bulk blocks.

    Blocks are numpy arrays (8 bytes a draw); ``row`` hands back a compact ``array('d')``
    (8 bytes a draw, not a list's 32) whose items index as Python floats: per-child
    arithmetic on them is several times faster than on numpy scalars.
    """

    __slots__ = ("_block", "_blocks", "_rng", "width")

    def __init__(self, seed: np.random.SeedSequence, width: int, block: int = 4096) -> None:
        self._rng = np.random.default_rng(seed)
        self.width, self._block = width, block
        self._blocks: list[np.ndarray] = []

    def row(self, i: int) -> array[float]:
        b, r = divmod(i, self._block)
        blocks = self._blocks
        while b >= len(blocks):
            blocks.append(self._rng.random((self._block, self.width)))
        out = array("d")
        out.frombytes(blocks[b][r].tobytes())
        return out


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


def fresh_uniforms(streams: Streams, stream: Stream, n: int, *entity: int) -> array[float]:
    """``n`` uniforms keyed by (stream, *entity) alone: the draws of one occasion (a referral
    after a child's first, a clock reset, a long stay's later steps), the same in every
    scenario where that occasion happens, whatever happened to other children."""
    out = array("d")
    out.frombytes(np.random.default_rng(streams.seed(stream, *entity)).random(n).tobytes())
    return out


# --------------------------------------------------------------------------- the draw audit
# A site re-reads a slot it has read before, at another time, on purpose: the same latent
# draw asked again for the same event. Each entry is (module, function) with the reason.
REREADS: dict[tuple[str, str], str] = {
    ("disqualification", "considered"): (
        "whether the case is considered for disqualification: asked at referral (to route the "
        "case) and again at the RG decision under the rules then in force; one latent draw"
    ),
}


# mutation testing (docs/mutation.md) renames a function f to x_f__mutmut_orig or x_f__mutmut_N
_MUTMUT_NAME = re.compile(r"^x_(\w+?)__mutmut_\w+$")


@attrs.frozen
class Read:
    """One read of a uniform: which slot, where in the code, when (simulation day)."""

    key: tuple[Any, ...]  # (table, row..., slot)
    site: tuple[str, str, int]  # (module, function, line)
    day: float


@attrs.frozen
class Conflict:
    """A slot that drove two different events."""

    key: tuple[Any, ...]
    first: Read
    second: Read


class DrawAudit:
    """Debug mode of the draw tables: records every (table, row, slot) a stage reads.

    Two reads belong to the same event when they come from the same line of code at the same
    simulation time (a value read twice while deciding one thing), or from a site listed in
    ``REREADS``. Any other pair of reads of one slot is a conflict: one uniform driving two
    events, as when a restarted process replays the draws of the process before it.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.reads: dict[tuple[Any, ...], list[Read]] = {}
        self.n_reads = 0

    def wrap(self, values: Sequence[float], *table: Any) -> AuditedRow:
        return AuditedRow(self, values, tuple(table), 0)

    def read(self, key: tuple[Any, ...], frame: FrameType) -> None:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "").rsplit(".", 1)[-1]
        site = (module, _MUTMUT_NAME.sub(r"\1", code.co_name), frame.f_lineno)
        self.n_reads += 1
        self.reads.setdefault(key, []).append(Read(key, site, self._clock()))

    def conflicts(self) -> list[Conflict]:
        """Every slot read by two different events (first offending pair per slot)."""
        out: list[Conflict] = []
        for key, reads in self.reads.items():
            first = reads[0]
            for other in reads[1:]:
                if other.site == first.site and (
                    other.day == first.day or first.site[:2] in REREADS
                ):
                    continue
                out.append(Conflict(key, first, other))
                break
        return out


class AuditedRow(Sequence[float]):
    """A row of uniforms that tells the audit about every element read."""

    __slots__ = ("_audit", "_offset", "_table", "_values")

    def __init__(
        self, audit: DrawAudit, values: Sequence[float], table: tuple[Any, ...], offset: int
    ) -> None:
        self._audit, self._values, self._table, self._offset = audit, values, table, offset

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[float]:  # unpacking: each read is the caller's
        frame = sys._getframe(1)
        for i, value in enumerate(self._values):
            self._audit.read((*self._table, self._offset + i), frame)
            yield value

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> AuditedRow: ...
    def __getitem__(self, i: int | slice) -> float | AuditedRow:
        if isinstance(i, slice):
            start, _stop, step = i.indices(len(self._values))
            if step != 1:
                raise ValueError("audited rows support contiguous slices only")
            return AuditedRow(self._audit, self._values[i], self._table, self._offset + start)
        if i < 0:
            i += len(self._values)
        self._audit.read((*self._table, self._offset + i), sys._getframe(1))
        return self._values[i]
