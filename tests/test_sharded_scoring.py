"""Scoring and tracks on several processes: the same bytes as one process, parts joined in order, kill and resume."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from Bio import bgzf
from conftest import DATA, ROOT
from test_scoring import make_lm

import cli
import glm.scoring.tracks
from glm.errors import InputError, Stopped
from glm.io.files import read_json
from glm.io.genome import Genome
from glm.io.shards import PartsFolder, SingleProcess
from glm.io.tabix import BGZF_EOF, read_tabix_index
from glm.io.variant_readers import read_variants
from glm.model.checkpoint import export_model

MITOMAP = DATA / "mitomap_confirmed_mutations.vcf.gz"  # 117 variants, sorted: 12 chunks of 10
MT = DATA / "MT-human.fa"

# Runs cli.main as `python scoring_cli.py score ...`; Lightning starts rank 1 by running the same
# command again. Each process logs the chunks it scores; with GLM_TEST_HANG=N a process stops
# (sleeps until killed) before its N+1-th chunk, so a test can kill the run mid-way.
WRAPPER = """
import os, sys, time
sys.path.insert(0, {root!r})
import cli, glm.scoring.stream

score_chunk = glm.scoring.stream.score_chunk
scored = []

def logged(model, tokenizer, chunk, genome, plan):
    if len(scored) == int(os.environ.get("GLM_TEST_HANG", "-1")):
        time.sleep(600)
    scored.append(chunk[0].pos)
    with open(os.path.join({log!r}, "pid%d" % os.getpid()), "a") as log:
        log.write("%d\\n" % chunk[0].pos)
    return score_chunk(model, tokenizer, chunk, genome, plan)

glm.scoring.stream.score_chunk = logged
sys.exit(cli.main())
"""

# The same for `python track_cli.py track ...`, logging each piece's start and cutting the regions
# into pieces of TRACK_PIECE bases (the command's are 65,536: a region of a few pieces would be long).
TRACK_WRAPPER = """
import functools, os, sys, time
sys.path.insert(0, {root!r})
import cli, glm.scoring.tracks as tracks

track_piece = tracks.track_piece
computed = []

def logged(model, tokenizer, genome, span, method, plan):
    if len(computed) == int(os.environ.get("GLM_TEST_HANG", "-1")):
        time.sleep(600)
    computed.append(span)
    with open(os.path.join({log!r}, "pid%d" % os.getpid()), "a") as log:
        log.write("%d\\n" % span[1])
    return track_piece(model, tokenizer, genome, span, method, plan)

tracks.track_piece = logged
tracks.write_tracks = functools.partial(tracks.write_tracks, piece={piece})
sys.exit(cli.main())
"""
TRACK_PIECE = 64  # MT_human:101-400 is 6 pieces: 100-128, 128-192, ..., 320-384, 384-400

# One thread per process: two ranks with two threads each on a busy machine wait on each other.
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    lm = make_lm()
    return export_model(tmp_path_factory.mktemp("model") / "model", lm.model, lm.tokenizer)


def score_args(model_dir: Path, out: Path) -> list[str]:
    return [
        *("score", str(model_dir), "--genome", str(MT), "--variants", str(MITOMAP), "--alias", "MT=MT_human"),
        *("--out", str(out), "--chunk-size", "10", "--method", "llr", "--method", "embedding", "--quiet"),
        *("--device", "cpu"),
    ]


def wrapper(tmp_path: Path, template: str = WRAPPER) -> tuple[Path, Path]:
    """(the wrapper script, the folder of its per-process logs)."""
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    script = tmp_path / "scoring_cli.py"
    script.write_text(template.format(root=str(ROOT), log=str(log), piece=TRACK_PIECE))
    return script, log


def chunks_scored(log: Path) -> dict[str, list[int]]:
    """Per process: the first position of each chunk it scored."""
    return {path.name: [int(line) for line in path.read_text().split()] for path in sorted(log.iterdir())}


def run(script: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=dict(ENV, **env), cwd=cwd
    )


def test_two_processes_write_the_bytes_of_one(model_dir, tmp_path, capsys) -> None:
    one = tmp_path / "one.vcf.gz"
    assert cli.main(score_args(model_dir, one)) == 0
    assert "117 of 117 variants scored" in capsys.readouterr().out
    script, log = wrapper(tmp_path)
    two = tmp_path / "two.vcf.gz"
    finished = run(script, [*score_args(model_dir, two), "--devices", "2"], tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "117 of 117 variants scored" in finished.stdout and f"index -> {two}.tbi" in finished.stdout

    starts = chunks_scored(log)
    assert len(starts) == 2 and sorted(len(chunks) for chunks in starts.values()) == [6, 6]  # 12 chunks, 2 ranks
    assert two.read_bytes() == one.read_bytes()
    assert Path(f"{two}.tbi").read_bytes() == Path(f"{one}.tbi").read_bytes()
    assert not Path(f"{two}.parts").exists() and not Path(f"{one}.parts").exists()

    # One BGZF block for the header and one a chunk (each of 10 rows fits one), then the EOF block.
    with open(two, "rb") as handle:
        blocks = list(bgzf.BgzfBlocks(handle))
    assert len(blocks) == 1 + 12 + 1 and two.read_bytes().endswith(BGZF_EOF)
    rows = read_variants(two, Genome(MT), {"MT": "MT_human"})
    assert len(rows) == 117 and all("GLM_LLR" in row.fields and "GLM_EMBEDDING_L2" in row.fields for row in rows)
    index = read_tabix_index(Path(f"{two}.tbi"), two.stat().st_size)
    assert index.names == ["MT"]


@pytest.mark.needs_tool("tabix")
def test_the_joined_file_answers_tabix_region_queries(model_dir, tmp_path) -> None:
    out = tmp_path / "scored.vcf.gz"
    assert cli.main(score_args(model_dir, out)) == 0
    region = subprocess.run(["tabix", str(out), "MT:3000-9000"], capture_output=True, text=True, check=True)
    positions = [int(line.split("\t")[1]) for line in region.stdout.splitlines()]
    every = [variant.pos + 1 for variant in read_variants(out, Genome(MT), {"MT": "MT_human"})]
    assert positions == [pos for pos in every if 3000 <= pos <= 9000] and len(positions) > 20


def test_mutagenesis_table_on_two_processes_equals_one(model_dir, tmp_path, capsys) -> None:
    args = ["mutagenesis", str(model_dir), "--genome", str(MT), "--region", "MT_human:101-130", "--quiet"]
    args += ["--chunk-size", "25", "--batch-size", "4", "--device", "cpu"]
    assert cli.main([*args, "--out", str(tmp_path / "one")]) == 0
    assert "90 of 90 variants scored" in capsys.readouterr().out
    script, log = wrapper(tmp_path)
    finished = run(script, [*args, "--out", str(tmp_path / "two"), "--devices", "2"], tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert sorted(len(chunks) for chunks in chunks_scored(log).values()) == [2, 2]  # 4 chunks of 25, 25, 25, 15
    assert (tmp_path / "two.tsv").read_bytes() == (tmp_path / "one.tsv").read_bytes()
    assert (tmp_path / "two.png").stat().st_size > 10_000

    # The in-memory table of the library, written at the same chunk size: the same bytes again.
    lm = make_lm()
    lm.mutagenesis(MT, "MT_human:101-130", chunk_size=25, batch_size=4).write(tmp_path / "memory.tsv")
    assert (tmp_path / "memory.tsv").read_bytes() == (tmp_path / "one.tsv").read_bytes()


def killed_after_four_parts(script: Path, args: list[str], cwd: Path, parts: Path, suffix: str) -> None:
    """Run `script args --devices 2` (each rank does 2 shards, then waits: GLM_TEST_HANG) and kill -9
    both ranks at once once 4 parts ending in `suffix` are finished."""
    victim = subprocess.Popen(
        [sys.executable, str(script), *args, "--devices", "2"],
        cwd=cwd,
        env=dict(ENV, GLM_TEST_HANG="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: both ranks are killed at once
    )
    deadline = time.monotonic() + 300
    while len(list(parts.glob(f"shard-*.{suffix}"))) < 4 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()


def test_a_run_killed_mid_way_resumes_to_the_same_bytes(model_dir, tmp_path, capsys) -> None:
    straight = tmp_path / "straight.vcf.gz"
    assert cli.main(score_args(model_dir, straight)) == 0
    capsys.readouterr()
    script, log = wrapper(tmp_path)
    out = tmp_path / "killed.vcf.gz"
    parts = Path(f"{out}.parts")
    killed_after_four_parts(script, score_args(model_dir, out), tmp_path, parts, "rows.jsonl")
    assert sorted(path.name for path in parts.glob("shard-*.rows.jsonl")) == [
        f"shard-{number:07d}.rows.jsonl" for number in range(4)
    ]
    assert not out.exists()
    (parts / ".shard-0000004.rows.jsonl.partial-1.jsonl").write_text("[")  # what a kill mid-write leaves

    for path in log.iterdir():
        path.unlink()
    resumed = run(script, [*score_args(model_dir, out), "--resume"], tmp_path)  # now on one process
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "117 of 117 variants scored" in resumed.stdout
    assert [len(chunks) for chunks in chunks_scored(log).values()] == [8]  # the 4 finished chunks were kept
    assert out.read_bytes() == straight.read_bytes()
    assert Path(f"{out}.tbi").read_bytes() == Path(f"{straight}.tbi").read_bytes()
    assert not parts.exists()


def test_resume_refuses_parts_made_from_something_else(tmp_path) -> None:
    out = tmp_path / "out.tsv"
    identity = {"input": ["a.vcf", 10, 1], "model": "abc", "options": {"window": 64}}
    folder = PartsFolder(out, identity, SingleProcess(), resume=False)
    folder.compute(range(3), ".txt", lambda number, _, path: path.write_text(str(number)))
    assert read_json(folder.path / "manifest.json") == identity

    kept = PartsFolder(out, identity, SingleProcess(), resume=True)
    done: list[int] = []
    kept.compute(range(5), ".txt", lambda number, _, path: done.append(number) or path.write_text(str(number)))
    assert done == [3, 4]  # 0-2 were finished

    with pytest.raises(InputError, match=r"out\.tsv\.parts: --resume: .*different model, options;"):
        PartsFolder(out, {**identity, "model": "xyz", "options": {"window": 32}}, SingleProcess(), resume=True)
    fresh = PartsFolder(out, {**identity, "model": "xyz"}, SingleProcess(), resume=False)  # starts over
    assert [path.name for path in fresh.path.iterdir()] == ["manifest.json"]


def test_shards_are_dealt_to_ranks_in_turn(tmp_path) -> None:
    """Rank r of w computes shards r, r + w, ...; together the ranks compute each shard once."""
    done: dict[int, list[int]] = {}
    for rank in range(3):
        ranks = SingleProcess(rank=rank, world_size=3)
        folder = PartsFolder(tmp_path / f"out{rank}.tsv", {}, ranks, resume=False)
        if rank:
            folder.path.mkdir()  # rank 0 makes the folder; here each rank has its own
        mine = done.setdefault(rank, [])
        count = folder.compute(range(8), ".txt", lambda number, _, path, mine=mine: mine.append(number))
        assert count == 8
    assert done == {0: [0, 3, 6], 1: [1, 4, 7], 2: [2, 5]}


def track_args(model_dir: Path, out: Path) -> list[str]:
    return [
        *("track", str(model_dir), "--genome", str(MT), "--regions", "MT_human:101-400", "--out", str(out)),
        *("--quiet", "--device", "cpu"),
    ]


def track_files(out: Path) -> dict[str, bytes]:
    """Every file a track run wrote beside `out`, by its name without the stem."""
    return {path.name.removeprefix(out.stem): path.read_bytes() for path in sorted(out.parent.glob(f"{out.stem}.*"))}


@pytest.fixture
def pieces_of_64(monkeypatch) -> None:
    """The track command of this process cuts its regions into pieces of TRACK_PIECE bases."""
    pieces = functools.partial(glm.scoring.tracks.write_tracks, piece=TRACK_PIECE)
    monkeypatch.setattr(glm.scoring.tracks, "write_tracks", pieces)


@pytest.mark.parametrize("suffix", [".bw", ".bedGraph"])
def test_track_on_two_processes_writes_the_bytes_of_one(model_dir, tmp_path, capsys, pieces_of_64, suffix) -> None:
    one = tmp_path / "one" / f"mt{suffix}"
    assert cli.main(track_args(model_dir, one)) == 0
    assert "300 of 300 bases of MT_human:101-400 scored" in capsys.readouterr().out
    script, log = wrapper(tmp_path, TRACK_WRAPPER)
    two = tmp_path / "two" / f"mt{suffix}"
    finished = run(script, [*track_args(model_dir, two), "--devices", "2"], tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "300 of 300 bases" in finished.stdout and f"-> {two.parent / 'mt.logp_ref'}{suffix}" in finished.stdout

    starts = chunks_scored(log)  # the pieces each process computed, dealt in turn
    assert sorted(starts.values()) == [[100, 192, 320], [128, 256, 384]]
    written = track_files(two)
    expected = [f".{name}{suffix}" for name in ("logp_A", "logp_C", "logp_G", "logp_T", "logp_ref")]
    assert sorted(written) == sorted(expected + ([".tracks.txt"] if suffix == ".bw" else []))
    assert written == track_files(one)
    assert not Path(f"{two}.parts").exists() and not Path(f"{one}.parts").exists()
    if suffix == ".bedGraph":  # a value for each of the 300 bases, read back from the joined pieces
        lines = written[".logp_ref.bedGraph"].decode().splitlines()
        assert [line.split("\t")[1] for line in lines[1:]] == [str(position) for position in range(100, 400)]
        assert len({line.split("\t")[3] for line in lines[1:]}) > 100


def test_a_track_killed_mid_way_resumes_to_the_same_bytes(model_dir, tmp_path, capsys, pieces_of_64) -> None:
    straight = tmp_path / "straight" / "mt.bw"
    assert cli.main(track_args(model_dir, straight)) == 0
    capsys.readouterr()
    script, log = wrapper(tmp_path, TRACK_WRAPPER)
    out = tmp_path / "killed" / "mt.bw"
    parts = Path(f"{out}.parts")
    killed_after_four_parts(script, track_args(model_dir, out), tmp_path, parts, "npy")
    assert sorted(path.name for path in parts.glob("shard-*.npy")) == [f"shard-{n:07d}.npy" for n in range(4)]
    assert not list(out.parent.glob("mt.*.bw"))

    for path in log.iterdir():
        path.unlink()
    resumed = run(script, [*track_args(model_dir, out), "--resume"], tmp_path)  # now on one process
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "300 of 300 bases" in resumed.stdout
    assert list(chunks_scored(log).values()) == [[320, 384]]  # the 4 finished pieces were kept
    assert track_files(out) == track_files(straight)
    assert not parts.exists()


def test_a_stopped_track_keeps_its_pieces_for_the_same_command(
    model_dir, tmp_path, capsys, monkeypatch, pieces_of_64
) -> None:
    """SIGTERM mid-track says how to resume; a resume with other options is refused, the same one finishes."""
    straight = tmp_path / "straight" / "mt.bedGraph"
    assert cli.main(track_args(model_dir, straight)) == 0
    original, computed = glm.scoring.tracks.track_piece, []

    def stopping(model, tokenizer, genome, span, method, plan):  # a scheduler's SIGTERM during the third piece
        if len(computed) == 2 and os.environ.get("GLM_TEST_STOP"):
            raise Stopped(signal.SIGTERM)
        computed.append(span[1])
        return original(model, tokenizer, genome, span, method, plan)

    monkeypatch.setattr(glm.scoring.tracks, "track_piece", stopping)
    monkeypatch.setattr(
        glm.scoring.tracks, "write_tracks", functools.partial(glm.scoring.tracks.write_tracks, piece=64)
    )
    out = tmp_path / "stopped" / "mt.bedGraph"
    parts = Path(f"{out}.parts")
    monkeypatch.setenv("GLM_TEST_STOP", "1")
    capsys.readouterr()
    assert cli.main(track_args(model_dir, out)) == 143
    error = capsys.readouterr().err
    assert (
        f"terminated (SIGTERM) with the finished shards kept in {parts}; rerun the same command with --resume" in error
    )
    assert sorted(path.name for path in parts.glob("shard-*.npy")) == ["shard-0000000.npy", "shard-0000001.npy"]
    monkeypatch.delenv("GLM_TEST_STOP")

    assert cli.main([*track_args(model_dir, out), "--resume", "--strands", "forward"]) == 2
    assert "--resume: these parts were made with a different options" in capsys.readouterr().err
    assert cli.main([*track_args(model_dir, out), "--resume", "--regions", "MT_human:101-500"]) == 2
    assert "different regions" in capsys.readouterr().err
    computed.clear()
    assert cli.main([*track_args(model_dir, out), "--resume"]) == 0
    assert computed == [192, 256, 320, 384]
    assert track_files(out) == track_files(straight)
