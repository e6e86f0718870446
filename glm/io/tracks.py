"""Genome-browser track files: bigWig (through pyBigWig, an optional extra) or bedGraph, one file per track.

Values arrive in pieces (contig, first base, (bases, tracks) float32 with NaN where a base has no
value) in the order of the genome's contigs and by position; a base without a value gets no
interval (it is absent, not 0). bedGraph files start with a UCSC track line naming the track and
describing it (the model included); a bigWig has no place for text, so beside the bigWig files a
`STEM.tracks.txt` holds the same track lines (with bigDataUrl) for a browser's custom tracks.
Every file is written atomically (glm.io.files.atomic_file): a failed run leaves none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from glm.errors import InputError
from glm.io.files import atomic_file
from glm.io.paths import check_output

TRACK_NAMES = {  # the tracks of each method of glm.scoring.tracks, in column order
    "logprob": ("logp_A", "logp_C", "logp_G", "logp_T", "logp_ref"),
    "llr": ("llr_A", "llr_C", "llr_G", "llr_T", "llr_mean"),
}
BIGWIG_SUFFIXES = (".bw", ".bigwig")
BEDGRAPH_SUFFIXES = (".bedgraph", ".bg")
INSTALL = 'bigWig output needs pyBigWig: pip install "glm[tracks]" (or pip install pyBigWig); .bedGraph needs nothing'


def track_format(out: str | Path) -> str:
    """ "bigwig" or "bedgraph", from the suffix of `out` (case-insensitive); an InputError for others."""
    suffix = Path(out).suffix.lower()
    if suffix in BIGWIG_SUFFIXES:
        return "bigwig"
    if suffix in BEDGRAPH_SUFFIXES:
        return "bedgraph"
    known = ", ".join(BIGWIG_SUFFIXES + BEDGRAPH_SUFFIXES)
    raise InputError(f"--out: {Path(out).name!r} is not a track file; end it in one of {known}")


def track_paths(out: str | Path, names: Sequence[str]) -> list[Path]:
    """The file of each track: `out` itself for one track, else OUT_STEM.NAME.SUFFIX beside it."""
    out = Path(out)
    if len(names) == 1:
        return [out]
    return [out.with_name(f"{out.stem}.{name}{out.suffix}") for name in names]


def track_outputs(out: str | Path) -> list[Path]:
    """Every file `glm track --out OUT` may write, whichever method: the tracks, their track lines, the figure."""
    out = Path(out)
    names = [name for names in TRACK_NAMES.values() for name in names]
    return [out, *track_paths(out, names), track_lines_path(out), out.with_suffix(".png")]


def track_lines_path(out: str | Path) -> Path:
    """OUT_STEM.tracks.txt: the track lines of bigWig files (a bigWig has no header for text)."""
    return Path(out).with_name(Path(out).stem + ".tracks.txt")


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """[first, last) runs of finite values."""
    finite = np.concatenate([[False], np.isfinite(values), [False]])
    edges = np.flatnonzero(np.diff(finite.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _track_line(kind: str, name: str, description: str, extra: str = "") -> str:
    clean = description.replace('"', "'")
    return f'track type={kind} name="{name}" description="{clean}"{extra}\n'


class TrackWriter:
    """Writes the tracks of `names` to their files (track_paths) as pieces arrive; `close()` finishes them.

    lengths: every contig of the genome and its length (a bigWig's header); descriptions: one line
    per track, the model named in it. Use as a context manager: files appear only on success.
    """

    def __init__(
        self,
        out: str | Path,
        names: Sequence[str],
        descriptions: Mapping[str, str],
        lengths: Mapping[str, int],
    ):
        self.kind = track_format(out)
        self.paths = track_paths(out, names)
        self.names = list(names)
        self.intervals = 0  # bases with a value in some track
        if self.kind == "bigwig":
            try:
                import pyBigWig  # optional: the `tracks` extra
            except ImportError:
                raise InputError(INSTALL) from None
            self._pybigwig: Any = pyBigWig
        for path in self.paths:
            check_output(path)
        self._stack = contextlib.ExitStack()
        self._files: list[Any] = []
        self._descriptions = [descriptions[name] for name in names]
        self._lengths = dict(lengths)
        self._sidecar = track_lines_path(out) if self.kind == "bigwig" else None

    def __enter__(self) -> TrackWriter:
        partials = [self._stack.enter_context(atomic_file(path)) for path in self.paths]
        for partial, name, description in zip(partials, self.names, self._descriptions):
            if self.kind == "bigwig":
                handle = self._pybigwig.open(str(partial), "w")
                handle.addHeader(list(self._lengths.items()))
            else:
                handle = open(partial, "w")
                handle.write(_track_line("bedGraph", name, description))
            self._files.append(handle)
        return self

    def add(self, contig: str, start: int, values: np.ndarray) -> None:
        """Bases [start, start + len(values)) of a contig: (bases, tracks) values, NaN for no value."""
        assert values.shape[1] == len(self.names)
        self.intervals += int(np.isfinite(values).any(axis=1).sum())
        for column, handle in enumerate(self._files):
            track = values[:, column].astype(np.float32)
            for first, last in _runs(track):
                if self.kind == "bigwig":
                    handle.addEntries(contig, start + first, values=track[first:last], span=1, step=1)
                else:
                    _write_bedgraph(handle, contig, start + first, track[first:last])

    def __exit__(self, error_type: Any, *rest: Any) -> None:
        for handle in self._files:
            handle.close()
        if error_type is None and self._sidecar is not None:
            with atomic_file(self._sidecar) as partial:
                partial.write_text(self._bigwig_lines())
        self._stack.__exit__(error_type, *rest)

    def _bigwig_lines(self) -> str:
        return "".join(
            _track_line("bigWig", name, description, f" bigDataUrl={path.name}")
            for name, description, path in zip(self.names, self._descriptions, self.paths)
        )

    @property
    def written(self) -> list[Path]:
        """The files this writer makes (the track files, then the bigWig track lines)."""
        return self.paths + ([self._sidecar] if self._sidecar is not None else [])


def _write_bedgraph(handle: IO[str], contig: str, start: int, values: np.ndarray) -> None:
    """One line per base: CONTIG START END VALUE (0-based, half-open), the float32 written exactly (%.9g)."""
    lines = [
        f"{contig}\t{start + offset}\t{start + offset + 1}\t{value:.9g}\n"
        for offset, value in enumerate(values.tolist())
    ]
    handle.writelines(lines)
