"""Bad input, as a new user hands it to every subcommand: one line (file, line, field), status 2,
no traceback, nothing left behind. One table; the cases accepted on purpose check their result."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
import lzma
import pickle
import shutil
import typing
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA, ROOT, write_fasta

from glm.arguments import ConfigOptions, annotation_parts
from glm.commands import COMMANDS, main

MODEL = ROOT / "tests" / "data" / "model_format1"  # k = 2, context 64
GENOME = DATA / "phiX174.fa"
CONTIG = "NC_001422.1"  # phiX174: 5,386 bases; base 1 is G, bases 1-3 GAG
HAS_GPU = torch.cuda.is_available()

VCF_HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def vcf(*rows: str) -> str:
    return VCF_HEADER + "".join(row + "\n" for row in rows)


def gz_truncated(text: str) -> bytes:
    data = gzip.compress(text.encode())
    return data[: len(data) // 2]


def gz_corrupt(text: str) -> bytes:
    data = bytearray(gzip.compress(text.encode()))
    middle = len(data) // 2
    data[middle : middle + 8] = b"\xff" * 8
    return bytes(data)


def model_copy(tmp: Path, change: Callable[[Path], None]) -> Path:
    """A copy of the test model directory with one thing broken."""
    copy = tmp / "broken_model"
    shutil.copytree(MODEL, copy)
    change(copy)
    return copy


def edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        change(config)
        (directory / "config.json").write_text(json.dumps(config))

    return edit


def text_model_files(directory: str) -> dict[str, str | bytes]:
    """The test model's weights under a char tokenizer of the same vocabulary size: a text model."""
    files = {f"{directory}/{name}": (MODEL / name).read_bytes() for name in ("config.json", "model.safetensors")}
    tokenizer = {"kind": "char", "alphabet": "abcdefghijklmnopqrst", "vocab_size": 23}
    return {**files, f"{directory}/tokenizer.json": json.dumps(tokenizer)}


def variant_head_files(directory: str) -> dict[str, str | bytes]:
    """A logistic variant head on the five scores, as fit-head saves one (head.json + head.safetensors)."""
    from safetensors.numpy import save

    from glm.scoring.heads import FEATURE_SCORES

    arrays = {"mean": np.zeros(5), "scale": np.ones(5), "coef": np.ones((1, 5)), "intercept": np.zeros(1)}
    meta = {"format_version": 1, "kind": "logistic", "classes": ["0", "1"], "feature_names": FEATURE_SCORES}
    meta["info"] = {"task": "variant", "window": 20, "layer": -1, "model_fingerprint": "checked after the settings"}
    return {f"{directory}/head.json": json.dumps(meta), f"{directory}/head.safetensors": save(arrays)}


def model_files(changed: dict[str, str | bytes]) -> dict[str, str | bytes]:
    """The test model's files under m/, some of them replaced."""
    files: dict[str, str | bytes] = {f"m/{path.name}": path.read_bytes() for path in MODEL.iterdir()}
    return {**files, **{f"m/{name}": content for name, content in changed.items()}}


def config_with(**changes: object) -> str:
    return json.dumps({**json.loads((MODEL / "config.json").read_text()), **changes})


def nan_weights() -> bytes:
    from safetensors.torch import load_file, save

    state = load_file(MODEL / "model.safetensors")
    state["embedding.weight"][0, 0] = float("nan")
    return save(state)


def probe_head(
    classes: tuple[str, ...] | None = ("a", "b"), info: dict | None = None, **fields: object
) -> dict[str, str | bytes]:
    """A logistic head directory h/ on one feature (head.json built here: a field may be left out or changed)."""
    import numpy as np
    from safetensors.numpy import save

    arrays = {"mean": np.zeros(1), "scale": np.ones(1), "coef": np.zeros((1, 1)), "intercept": np.zeros(1)}
    meta = {
        "kind": "logistic",
        "feature_names": ["f0"],
        "info": {"features": {"kind": "kmer", "k": 1}} if info is None else info,
    }
    meta |= {"classes": list(classes)} if classes is not None else {}
    return {"h/head.json": json.dumps(meta | fields), "h/head.safetensors": save(arrays)}


LONG_FASTA = ">long\n" + "ACGT" * 50_000 + "\n"  # one 200 kb line
GOOD_FASTA = ">a\n" + "ACGTTGCAAC" * 30 + "\n"
MANY_FASTA = "".join(f">r{i}\n" + "ACGTTGCAAC" * 30 + "\n" for i in range(100))
RUN_CONFIG = "model:\n  width: 64\ndata:\n  k: 3\n"  # a run's config.yaml: the defaults but these

# name: (input files {name: text or bytes}, argv (with {tmp} and {model} filled in), expected fragment)
CASES: dict[str, tuple[dict[str, str | bytes], list[str], str]] = {
    # ---- FASTA, through eval and pretrain
    "fasta empty": ({"x.fa": ""}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa: empty file"),
    "fasta only headers": ({"x.fa": ">a\n>b\n"}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa:1: sequence: record 'a' has no bases"),
    "fasta duplicate names": (
        {"x.fa": ">a\nACGT\n>a\nACGT\n"},
        ["eval", "{model}", "{tmp}/x.fa"],
        "x.fa:3: header: duplicate record name 'a'",
    ),
    "fasta no name": ({"x.fa": ">\nACGT\n"}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa:1: header: record has no name"),
    "fasta text before header": ({"x.fa": "hello\n>a\nACGT\n"}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa:1: expected a FASTA header"),
    "fasta digits": ({"x.fa": ">a\nACGT\nAC1T\n"}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa:3: sequence: invalid character '1'"),
    "fasta protein": ({"x.fa": ">p\nMKLVQE\n"}, ["eval", "{model}", "{tmp}/x.fa"], "invalid character 'L' in record 'p'"),
    "fasta truncated gzip": (
        {"x.fa.gz": gz_truncated(MANY_FASTA)},
        ["eval", "{model}", "{tmp}/x.fa.gz"],
        "x.fa.gz: not a complete gzip file (truncated",
    ),
    "fasta corrupt gzip": (
        {"x.fa.gz": gz_corrupt(MANY_FASTA)},
        ["eval", "{model}", "{tmp}/x.fa.gz"],
        "x.fa.gz: not a complete gzip file (corrupt",
    ),
    "fasta binary": ({"x.fa": bytes(range(256)) * 4}, ["eval", "{model}", "{tmp}/x.fa"], "expected a FASTA header"),
    "fasta directory": ({"d/x.fa": GOOD_FASTA}, ["eval", "{model}", "{tmp}/d"], "d: is a directory, expected a file"),
    "fasta missing": ({}, ["eval", "{model}", "{tmp}/none.fa"], "none.fa: no such file"),
    "pretrain only N": ({"x.fa": ">n\n" + "N" * 500 + "\n"}, ["pretrain", "{tmp}/x.fa", "--out", "{tmp}/run", "--quiet"], "no usable records (every record is only N)"),
    "pretrain too short": ({"x.fa": ">a\nACGTAC\n"}, ["pretrain", "{tmp}/x.fa", "--out", "{tmp}/run", "--quiet"], "too short to train"),
    "pretrain truncated gzip": (
        {"x.fa.gz": gz_truncated(MANY_FASTA)},
        ["pretrain", "{tmp}/x.fa.gz", "--out", "{tmp}/run", "--quiet"],
        "not a complete gzip file",
    ),
    "pretrain text as DNA": ({"x.txt": "To be or not to be\n"}, ["pretrain", "{tmp}/x.txt", "--out", "{tmp}/run"], "expected a FASTA header line"),
    # ---- variants, through score
    "vcf REF mismatch": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tT\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: REF: 1 of 1 variants do not match the genome"),
    "vcf unknown contig": ({"v.vcf": vcf("chr9\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: CHROM: contig 'chr9' is not in the genome"),
    "vcf POS 0": ({"v.vcf": vcf(f"{CONTIG}\t0\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: POS: must be at least 1"),
    "vcf negative POS": ({"v.vcf": vcf(f"{CONTIG}\t-4\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: POS: must be at least 1"),
    "vcf text POS": ({"v.vcf": vcf(f"{CONTIG}\tten\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: POS: expected an integer, got 'ten'"),
    "vcf past the end": ({"v.vcf": vcf(f"{CONTIG}\t9999\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: POS: 9999 is past the end of contig"),
    "vcf bad ALT base": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tX\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: ALT: invalid base 'X'"),
    "vcf columns": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:3: columns: expected 8 tab-separated columns"),
    "vcf malformed header": ({"v.vcf": "##fileformat=VCFv4.2\n#CHROM\tPOSITION\tREF\n"}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf:2: header: expected the tab-separated columns"),
    "vcf empty": ({"v.vcf": ""}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "v.vcf: empty file"),
    "vcf truncated gzip": ({"v.vcf.gz": gz_truncated(vcf(*[f"{CONTIG}\t1\t.\tG\tA\t.\t.\t."] * 2000))}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf.gz", "--out", "{tmp}/o.tsv"], "v.vcf.gz: not a complete gzip file"),
    "tsv missing column": ({"v.tsv": "chrom\tpos\tref\n" + f"{CONTIG}\t1\tG\n"}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--out", "{tmp}/o.tsv"], "v.tsv:1: header: missing column(s) alt"),
    "tsv ragged row": ({"v.tsv": "chrom\tpos\tref\talt\n" + f"{CONTIG}\t1\tG\n"}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--out", "{tmp}/o.tsv"], "v.tsv:2: columns: expected 4 tab-separated columns"),
    "genome truncated gzip": ({"g.fa.gz": gz_truncated(f">{CONTIG}\n" + "ACGT" * 20 + "\n" + MANY_FASTA), "v.vcf": vcf(f"{CONTIG}\t1\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", "{tmp}/g.fa.gz", "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "g.fa.gz: not a complete gzip file"),
    "alias malformed": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--alias", "MT"], "--alias: expected NAME=CONTIG"),
    "score window too small": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--window", "1"], "window: 1 bases does not fit this model"),
    "score head not a head": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t."), "h/x.txt": "x"}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--head", "{tmp}/h"], "not a glm head directory: head.json is missing"),
    # ---- configs, through pretrain --config
    "config unknown key": ({"c.yaml": "model:\n  widht: 3\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "unknown key model.widht (did you mean model.width?)"),
    "config wrong type": ({"c.yaml": "model:\n  width: wide\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "model.width: expected int, got 'wide'"),
    "config zero batch": ({"c.yaml": "train:\n  batch_size: 0\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "train.batch_size must be at least 1, got 0"),
    "config negative layers": ({"c.yaml": "model:\n  n_layers: -1\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "model.n_layers must be at least 1, got -1"),
    "config heads do not divide": ({"c.yaml": "model:\n  width: 100\n  n_heads: 3\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "must be a multiple of model.n_heads"),
    "config k 0": ({"c.yaml": "data:\n  k: 0\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "data.k must be between 1 and 8, got 0"),
    "config k 9": ({"c.yaml": "data:\n  k: 9\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "data.k must be between 1 and 8, got 9"),
    "config dropout 5": ({"c.yaml": "model:\n  dropout: 5\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "model.dropout must be in [0, 1), got 5"),
    "config not yaml": ({"c.yaml": "model: [1, 2\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "c.yaml:2: not valid YAML"),
    "config a list": ({"c.yaml": "- 1\n- 2\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "top level: expected a mapping, got list"),
    "config preset typo": ({}, ["pretrain", str(GENOME), "--config", "tinny", "--out", "{tmp}/run"], "no preset named 'tinny'"),
    "config a folder": ({"cfg/notes.txt": "x"}, ["pretrain", str(GENOME), "--config", "{tmp}/cfg", "--out", "{tmp}/run"], "cfg: is a directory; --config takes a preset name or a YAML file"),
    "threads zero": ({}, ["--threads", "0", "eval", "{model}", str(GENOME)], "--threads: must be at least 1, got 0"),
    # ---- model directories, through eval
    "model missing file": ({}, ["eval", "{broken:tokenizer}", str(GENOME)], "not a glm model directory: tokenizer.json is missing"),
    "model truncated weights": ({}, ["eval", "{broken:truncated}", str(GENOME)], "model.safetensors: not a valid safetensors file"),
    "model pickle as weights": ({}, ["eval", "{broken:pickle}", str(GENOME)], "model.safetensors: not a valid safetensors file"),
    "model shapes differ": ({}, ["eval", "{broken:width}", str(GENOME)], "model.safetensors: weights do not match config.json"),
    "model no model section": ({}, ["eval", "{broken:nosection}", str(GENOME)], "config.json: model: missing"),
    "model width text": ({}, ["eval", "{broken:widthtext}", str(GENOME)], "config.json: model.width: expected int, got 'abc'"),
    "model config not json": ({}, ["eval", "{broken:json}", str(GENOME)], "config.json:1: not valid JSON"),
    "model a ckpt file": ({"last.ckpt": b"PK\x03\x04 not a model"}, ["eval", "{tmp}/last.ckpt", str(GENOME)], "last.ckpt: is a file; expected a glm model directory"),
    "model missing dir": ({}, ["eval", "{tmp}/nothing", str(GENOME)], "nothing: no such model directory"),
    # ---- command-line values
    "devices 0": ({}, ["pretrain", str(GENOME), "--devices", "0", "--out", "{tmp}/run"], "train.devices must be at least 1"),
    "devices many": ({}, ["pretrain", str(GENOME), "--devices", "many", "--out", "{tmp}/run"], "train.devices: expected auto, a count"),
    "devices -2": ({}, ["pretrain", str(GENOME), "--devices", "-2", "--out", "{tmp}/run"], "train.devices: expected auto, a count"),
    "max-time garbage": ({}, ["pretrain", str(GENOME), "--max-time", "soon", "--out", "{tmp}/run"], "train.max_time: expected e.g. 90s"),
    "max-time 0": ({}, ["pretrain", str(GENOME), "--max-time", "0", "--out", "{tmp}/run"], "train.max_time must be above 0"),
    "muon with fsdp": ({}, ["pretrain", str(GENOME), "--optimizer", "muon", "--strategy", "fsdp", "--out", "{tmp}/run"], "train.optimizer muon needs whole weight matrices"),
    "logit-cap -1": ({}, ["pretrain", str(GENOME), "--logit-cap", "-1", "--out", "{tmp}/run"], "argument --logit-cap: must be at least 0, got -1"),
    "decay-fraction 0": ({}, ["pretrain", str(GENOME), "--schedule", "wsd", "--decay-fraction", "0", "--out", "{tmp}/run"], "argument --decay-fraction: must be in (0, 1], got 0"),
    "genome name for an untagged model": ({}, ["eval", "{model}", str(GENOME), "--genome-name", "human"], "genome name 'human': this model was trained without genome tokens"),
    "workers -1": ({}, ["pretrain", str(GENOME), "--workers", "-1", "--out", "{tmp}/run"], "argument --workers: must be at least 0, got -1"),
    "pretrain seed -1": ({}, ["pretrain", str(GENOME), "--seed", "-1", "--out", "{tmp}/run"], "argument --seed: must be at least 0, got -1"),
    "pretrain out is a file": ({"taken": "x"}, ["pretrain", str(GENOME), "--out", "{tmp}/taken"], "taken: output: is a file; give a directory"),
    "score out is a directory": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t."), "o/x": "x"}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o"], "output: is a directory; give a file name"),
    "score out unwritable": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "/proc/glm-out.tsv"], "output: cannot write in /proc"),
    "score out suffix": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.bed"], "output: unsupported file suffix"),
    "embed out unwritable": ({"x.fa": GOOD_FASTA}, ["embed", "{model}", "--input", "{tmp}/x.fa", "--out", "/proc/glm-emb.npy"], "output: cannot write in /proc"),
    "to-fasta out unwritable": ({"x.fa": GOOD_FASTA}, ["to-fasta", "--input", "{tmp}/x.fa", "--out", "/proc/glm.fa"], "output: cannot write in /proc"),
    "region reversed": ({}, ["mutagenesis", "{model}", "--genome", str(GENOME), "--region", f"{CONTIG}:200-100", "--out", "{tmp}/mu"], "must lie within 1-5386"),
    "region malformed": ({}, ["mutagenesis", "{model}", "--genome", str(GENOME), "--region", f"{CONTIG}:abc", "--out", "{tmp}/mu"], "expected CONTIG:START-END"),
    "region unknown contig": ({}, ["mutagenesis", "{model}", "--genome", str(GENOME), "--region", "chr1:1-10", "--out", "{tmp}/mu"], "unknown contig 'chr1'"),
    "device tpu": ({}, ["eval", "{model}", str(GENOME), "--device", "tpu"], "device: 'tpu' is not a device name"),
    "embed batch 0": ({"x.fa": GOOD_FASTA}, ["embed", "{model}", "--input", "{tmp}/x.fa", "--out", "{tmp}/e.npy", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    "folds 1": ({"t.csv": "sequence,label\nACGT,a\nCCGG,b\n"}, ["fit-classifier", "--features", "kmer", "--train", "{tmp}/t.csv", "--out", "{tmp}/c", "--folds", "1"], "argument --folds: must be at least 2, got 1"),
    # ---- generation
    "prompt empty": ({}, ["generate", "{model}", "--prompt", ""], "prompt: empty"),
    "prompt not DNA": ({}, ["generate", "{model}", "--prompt", "AC!T"], "prompt: sequence: invalid base '!'"),
    "prompt shorter than k": ({}, ["generate", "{model}", "--prompt", "A"], "prompt: at least k=2 bases are needed"),
    "temperature negative": ({}, ["generate", "{model}", "--prompt", "ACGT", "--temperature", "-1"], "temperature must be at least 0"),
    "top-p 0": ({}, ["generate", "{model}", "--prompt", "ACGT", "--top-p", "0"], "top_p must be in (0, 1], got 0.0"),
    "top-p 1.5": ({}, ["generate", "{model}", "--prompt", "ACGT", "--top-p", "1.5"], "top_p must be in (0, 1], got 1.5"),
    "top-k 0": ({}, ["generate", "{model}", "--prompt", "ACGT", "--top-k", "0"], "top_k must be at least 1, got 0"),
    "top-k -3": ({}, ["generate", "{model}", "--prompt", "ACGT", "--top-k", "-3"], "top_k must be at least 1, got -3"),
    "max-new-tokens -5": ({}, ["generate", "{model}", "--prompt", "ACGT", "--max-new-tokens", "-5"], "max_new_tokens must be at least 1"),
    "max-bases -5": ({}, ["generate", "{model}", "--prompt", "ACGT", "--max-bases", "-5"], "max_bases must be at least 1"),
    "num-samples 0": ({}, ["generate", "{model}", "--prompt", "ACGT", "--num-samples", "0"], "argument --num-samples: must be at least 1"),
    # ---- sequence sets and classifiers
    "table without sequence column": ({"t.csv": "seq,label\nACGT,a\n"}, ["embed", "{model}", "--input", "{tmp}/t.csv", "--out", "{tmp}/e.npy"], "t.csv:1: header: no 'sequence' column"),
    "table without labels": ({"t.csv": "sequence\nACGT\nCCGG\n"}, ["fit-classifier", "--features", "kmer", "--train", "{tmp}/t.csv", "--out", "{tmp}/c"], "no labels"),
    "table bad base": ({"t.csv": "sequence,label\nACXT,a\n"}, ["embed", "{model}", "--input", "{tmp}/t.csv", "--out", "{tmp}/e.npy"], "t.csv:2: sequence: invalid character 'X'"),
    "classifier needs a model": ({"t.csv": "sequence,label\nACGT,a\nCCGG,b\n"}, ["fit-classifier", "--train", "{tmp}/t.csv", "--out", "{tmp}/c"], "give a MODEL directory"),
    "classify not a classifier": ({"x.fa": GOOD_FASTA, "h/x": "x"}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "not a classifier directory"),
    "fit-head missing label column": ({"v.tsv": f"chrom\tpos\tref\talt\n{CONTIG}\t2\tA\tC\n"}, ["fit-head", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--label", "label", "--out", "{tmp}/h"], "v.tsv:2: label column 'label': missing or empty"),
    # round three: facade, combinations, scoring
    "fit-head text model": ({**text_model_files("text"), "v.tsv": f"chrom\tpos\tref\talt\tlabel\n{CONTIG}\t2\tA\tC\t1\n"}, ["fit-head", "{tmp}/text", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--label", "label", "--out", "{tmp}/h"], "a variant head needs a DNA model (k-mer tokenizer); this model reads chars"),
    "score text model": ({**text_model_files("text"), "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{tmp}/text", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "variant scoring needs a DNA model (k-mer tokenizer); this model reads chars"),
    "eval text model on a FASTA": (text_model_files("text"), ["eval", "{tmp}/text", str(GENOME)], "bits per base of a FASTA needs a DNA model (k-mer tokenizer); this model reads chars"),
    "fit-head NaN label": ({"v.tsv": f"chrom\tpos\tref\talt\tlabel\n{CONTIG}\t2\tA\tC\t1\n{CONTIG}\t3\tG\tT\t0\n{CONTIG}\t4\tT\tA\tNaN\n"}, ["fit-head", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--label", "label", "--out", "{tmp}/h"], "v.tsv:4: label column 'label': missing value 'NaN'"),
    "fit-head NA group": ({"v.tsv": f"chrom\tpos\tref\talt\tlabel\tgene\n{CONTIG}\t2\tA\tC\t1\tA\n{CONTIG}\t3\tG\tT\t0\tNA\n"}, ["fit-head", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.tsv", "--label", "label", "--group", "gene", "--out", "{tmp}/h"], "v.tsv:3: group column 'gene': missing value 'NA'"),
    "finetune too few rows for a dev split": ({"t.csv": "sequence,label\n" + "ACGTACGT,a\nTTGCAACG,b\n" * 3}, ["fit-classifier", "{model}", "--finetune", "--train", "{tmp}/t.csv", "--test", "{tmp}/t.csv", "--out", "{tmp}/c", "--quiet"], "6 of 2 classes (smallest 'a': 3); that needs at least 11 sequences and 2 of each class; give a dev set (--dev)"),
    "manifest weight inf": ({"c.tsv": f"path\tweight\n{GENOME}\tinf\n"}, ["pretrain", "--corpus", "{tmp}/c.tsv", "--out", "{tmp}/run", "--quiet"], "c.tsv:2: weight: must be a finite number above 0, got inf"),
    "head with --strands forward": ({**variant_head_files("h"), "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--head", "{tmp}/h", "--strands", "forward"], "strands: a head reads the scores of both strands, got 'forward'"),
    "head with another --window": ({**variant_head_files("h"), "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--head", "{tmp}/h", "--window", "30"], "window: this head was fitted with 20-base windows, got 30"),
    "regions empty BED": ({"r.bed": "", "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--regions", "{tmp}/r.bed"], "r.bed: BED: no regions in this file"),
    "regions BED of comments": ({"r.bed": "track name=x\n# nothing\n\n", "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--regions", "{tmp}/r.bed"], "r.bed: BED: no regions in this file"),
    "generate seed past 64 bits": ({}, ["generate", "{model}", "--prompt", "ACGT", "--seed", str(2**64)], f"seed must be in [0, 1.84467e+19), got {2**64}"),
    "regions unknown contig": ({"r.bed": "chr9\t0\t10\n", "v.vcf": vcf(f"{CONTIG}\t2\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--regions", "{tmp}/r.bed"], "r.bed:1: BED: contig 'chr9' is not in the genome"),
    # round three: files glm reads
    "tokenizer.json a list": (model_files({"tokenizer.json": "[]"}), ["eval", "{tmp}/m", str(GENOME)], "tokenizer.json: top level: expected an object, got a list of 0"),
    "tokenizer.json without k": (model_files({"tokenizer.json": '{"kind": "kmer", "stride": 2}'}), ["eval", "{tmp}/m", str(GENOME)], "tokenizer.json: k: missing"),
    "tokenizer.json k text": (model_files({"tokenizer.json": '{"kind": "kmer", "k": "2", "stride": 2}'}), ["eval", "{tmp}/m", str(GENOME)], "tokenizer.json: k: expected an integer, got '2'"),
    "model from a newer glm": (model_files({"config.json": config_with(format_version=99)}), ["eval", "{tmp}/m", str(GENOME)], "config.json: format_version: 99: made by a newer glm (this one reads up to 1); upgrade glm"),
    "model NaN weights": (model_files({"model.safetensors": nan_weights()}), ["eval", "{tmp}/m", str(GENOME)], "model.safetensors: weights: tensor 'embedding.weight' holds NaN or infinite values"),
    "head.json without classes": ({**probe_head(classes=None), "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "head.json: classes: missing"),
    "head.json one class": ({**probe_head(classes=("a",)), "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "head.json: classes: expected at least 2 entries, got 1"),
    "classify a fit-head directory": ({**probe_head(info={"task": "variant", "window": 64, "layer": -1}), "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "head.json: a variant head (fit-head's: use it with score --head), not a sequence classifier"),
    "classify head without features": ({**probe_head(info={}), "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "head.json: info.features: missing"),
    "finetuned.json empty object": ({"h/finetuned.json": "{}", "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/p.tsv"], "finetuned.json: classes: missing"),
    "score head from a newer glm": ({**probe_head(format_version=7), "v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv", "--head", "{tmp}/h"], "head.json: format_version: 7: made by a newer glm"),
    "metrics.csv extra cells": ({"run/logs/version_0/metrics.csv": "epoch,step,train/bits_per_base\n0,0,2.0\n0,1,1.9,7\n"}, ["plot", "{tmp}/run", "--out", "{tmp}/c.png"], "metrics.csv:3: expected 3 comma-separated cells, found 4"),
    "config UTF-16": ({"c.yaml": "model:\n  width: 32\n".encode("utf-16")}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "c.yaml: is UTF-16 text; glm reads UTF-8 (or ASCII): save it as UTF-8"),
    "config duplicate key": ({"c.yaml": "model:\n  width: 32\nmodel:\n  n_layers: 2\n"}, ["pretrain", str(GENOME), "--config", "{tmp}/c.yaml", "--out", "{tmp}/run"], "c.yaml:3: not valid YAML (key 'model' given twice, first at line 1)"),
    "fasta bzip2": ({"x.fa.bz2": bz2.compress(GOOD_FASTA.encode())}, ["eval", "{model}", "{tmp}/x.fa.bz2"], "x.fa.bz2: is bzip2-compressed; glm reads plain or gzip/BGZF files: decompress it with bunzip2"),
    "genome xz": ({"g.fa.xz": lzma.compress(GOOD_FASTA.encode()), "v.vcf": vcf("a\t1\t.\tA\tC\t.\t.\t.")}, ["score", "{model}", "--genome", "{tmp}/g.fa.xz", "--variants", "{tmp}/v.vcf", "--out", "{tmp}/o.tsv"], "g.fa.xz: is xz-compressed; glm reads plain or gzip/BGZF files: decompress it with unxz"),
    "table zip": ({"t.zip": b"PK\x03\x04" + b"\0" * 40}, ["embed", "{model}", "--input", "{tmp}/t.zip", "--out", "{tmp}/e.npy"], "t.zip: is zip-compressed; glm reads plain or gzip/BGZF files: decompress it with unzip"),
    "fasta a device": ({}, ["eval", "{model}", "/dev/null"], "/dev/null: is not a regular file (a FIFO, socket or device); give a file"),
    "fai lists only some records": ({"g.fa": ">a\nACGTACGTAC\n>b\nGGGGCCCCAA\n", "g.fa.fai": "a\t10\t3\t10\t11\n"}, ["eval", "{model}", "{tmp}/g.fa"], "g.fa.fai:1: index: the FASTA holds bases or records it does not list after 'a'"),
    "eval only IUPAC codes": ({"x.fa": ">a\nNNRYKMSWNN\n"}, ["eval", "{model}", "{tmp}/x.fa"], "x.fa: has no A/C/G/T bases to score (only N or other IUPAC codes)"),
    "score out is its input": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/v.vcf"], "v.vcf: output: is also an input; write the output elsewhere"),
    "embed names table is its input": ({"e.names.tsv": "name,sequence\na,ACGT\n"}, ["embed", "{model}", "--input", "{tmp}/e.names.tsv", "--out", "{tmp}/e.npy"], "e.names.tsv: output: is also an input"),
    "score out in the model directory": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t."), **model_files({})}, ["score", "{tmp}/m", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/m/config.json"], "config.json: output: is a file of the input directory"),
    "to-fasta name with a space": ({"t.csv": "name,sequence\na b,ACGT\n"}, ["to-fasta", "--input", "{tmp}/t.csv", "--out", "{tmp}/o.fa"], "t.csv:2: name: record name 'a b' holds white space"),
    "to-fasta empty name": ({"t.csv": "name,sequence\nx,ACGT\n ,ACGT\n"}, ["to-fasta", "--input", "{tmp}/t.csv", "--out", "{tmp}/o.fa"], "t.csv:3: name: record has no name"),
    "to-fasta duplicate name": ({"t.csv": "name,sequence\nx,ACGT\nx,ACGT\n"}, ["to-fasta", "--input", "{tmp}/t.csv", "--out", "{tmp}/o.fa"], "t.csv:3: name: duplicate record name 'x' (first at"),
    # round three: resume, launchers
    "resume another width": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume", "--width", "32"], "run: --resume: the run has model.width 64, --width asks for 32. A resumed run keeps its model, data and optimisation (config.yaml): drop --width, or start a new run with another --out"),
    "resume another preset": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume", "--config", "small"], "model.width 64, --config small has 512"),
    "resume another k": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume", "--k", "2"], "the run has data.k 3, --k asks for 2"),
    "resume another optimizer": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume", "--optimizer", "muon"], "train.optimizer 'adamw', --optimizer asks for 'muon'"),
    "resume another batch size": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume", "--batch-size", "4"], "train.batch_size 32, --batch-size asks for 4"),
    "resume before the first checkpoint": ({"run/config.yaml": RUN_CONFIG}, ["pretrain", str(GENOME), "--out", "{tmp}/run", "--resume"], "no checkpoints/last.ckpt to resume from (a run stopped before its first checkpoint starts again without --resume)"),
    "num-nodes without a launcher": ({}, ["pretrain", str(GENOME), "--num-nodes", "2", "--out", "{tmp}/run"], "--num-nodes 2: no launcher started this run on the other nodes"),
}  # fmt: skip

BROKEN_MODELS: dict[str, Callable[[Path], None]] = {
    "tokenizer": lambda d: (d / "tokenizer.json").unlink(),
    "truncated": lambda d: (d / "model.safetensors").write_bytes((MODEL / "model.safetensors").read_bytes()[:4000]),
    "pickle": lambda d: (d / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]})),
    "width": edit_config(lambda c: c["model"].update(width=64)),
    "nosection": edit_config(lambda c: c.pop("model")),
    "widthtext": edit_config(lambda c: c["model"].update(width="abc")),
    "json": lambda d: (d / "config.json").write_text("{not json"),
}


def fill(argument: str, tmp: Path) -> str:
    if argument.startswith("{broken:"):
        return str(model_copy(tmp, BROKEN_MODELS[argument[len("{broken:") : -1]]))
    return argument.replace("{tmp}", str(tmp)).replace("{model}", str(MODEL))


def files_under(directory: Path) -> set[Path]:
    """Every file, except FASTA indexes: built beside an input on first use (as samtools does), complete."""
    return {path for path in directory.rglob("*") if path.is_file() and path.suffix not in (".fai", ".gzi")}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_status_2_and_leaves_nothing(case: str, tmp_path: Path, capsys) -> None:
    inputs, argv, expected = CASES[case]
    for name, content in inputs.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = [fill(argument, tmp_path) for argument in argv]
    before = files_under(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last
    assert [line for line in err.splitlines() if line.startswith("error")] == [last]
    assert files_under(tmp_path) == before, "an output (or a partial one) was left behind"


@pytest.mark.skipif(HAS_GPU, reason="the machine has a GPU")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["eval", str(MODEL), str(GENOME), "--device", "cuda"],
            "device: 'cuda' is not available (this machine: no GPU",
        ),
        (
            ["pretrain", str(GENOME), "--accelerator", "gpu", "--out", "{tmp}/run"],
            "--accelerator gpu: this machine has no GPU",
        ),
    ],
)
def test_asking_for_a_gpu_on_a_machine_without_one(argv: list[str], expected: str, tmp_path: Path, capsys) -> None:
    code, _, err = run([fill(argument, tmp_path) for argument in argv], capsys)
    assert code == 2 and expected in err.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_accepted_on_purpose_crlf_lowercase_u_spaces_and_long_lines(tmp_path: Path) -> None:
    """Windows line endings, soft-masked bases, U as T, spaces inside lines and a 200 kb line all read as DNA."""
    import glm
    from glm.io.fasta import read_fasta

    plain = write_fasta(tmp_path / "plain.fa", {"a": "ACGTTGCA" * 20})
    odd = tmp_path / "odd.fa"
    odd.write_bytes(b">a\r\nacgu ugca" + b" ACGTTGCA" * 19 + b"\r\n")
    assert next(read_fasta(odd)).sequence.upper().replace("U", "T") == "ACGTTGCA" * 20
    lm = glm.load(MODEL, device="cpu")
    assert lm.evaluate(odd, progress=False)[0][2] == pytest.approx(lm.evaluate(plain, progress=False)[0][2])
    long = tmp_path / "long.fa"
    long.write_text(LONG_FASTA)
    assert lm.evaluate(long, progress=False)[0][1] == 200_000


def test_symbolic_breakend_star_alleles_lowercase_ref_and_n_alt_are_reported_not_fatal(tmp_path: Path) -> None:
    import glm

    rows = [
        f"{CONTIG}\t2\t.\tA\t<DEL>\t.\t.\t.",
        f"{CONTIG}\t3\t.\tG\tG]{CONTIG}:100]\t.\t.\t.",
        f"{CONTIG}\t4\t.\tT\t*\t.\t.\t.",
        f"{CONTIG}\t5\t.\tt\tC\t.\t.\t.",  # lowercase REF: uppercased
        f"{CONTIG}\t6\t.\tT\tN\t.\t.\t.",  # N in ALT: a base the model cannot see, scored as such
    ]
    (tmp_path / "v.vcf").write_text(vcf(*rows))
    scores = glm.load(MODEL, device="cpu").score_variants(tmp_path / "v.vcf", GENOME)
    statuses = [variant.status for variant in scores.variants]
    assert "symbolic allele <DEL> not supported" in statuses[0]
    assert statuses[1] == "breakend alleles not supported" and "overlapping deletion" in statuses[2]
    assert statuses[3:] == ["", ""] and scores.variants[3].ref == "T"
    assert all(value == value for value in scores["llr"][3:])  # scored: not NaN


def option_cases() -> list[tuple[str, list[str], str]]:
    """For every subcommand and option (its own, and those generated from config and settings fields): a
    value of the wrong type, a choice that does not exist, a number outside the option's range. Each must
    be refused by the parser with status 2."""
    cases = []
    for function in COMMANDS:
        name = function.command[0]
        hints = typing.get_type_hints(function, include_extras=True)
        for parameter, hint in hints.items():
            kind, meta = annotation_parts(hint)
            if isinstance(meta, ConfigOptions):
                for flag, field_kind, bounds in generated_options(meta.config):
                    cases += broken_values(name, flag, field_kind, bounds)
            elif parameter != "return" and hasattr(meta, "text"):
                cases += broken_values(name, f"--{parameter.replace('_', '-')}", kind, meta.bounds)
    return cases


def generated_options(config: type) -> list[tuple[str, typing.Any, str | None]]:
    """(flag, type, bounds) of each command-line field of a config dataclass and of its nested ones."""
    hints = typing.get_type_hints(config)
    options = []
    for field in dataclasses.fields(config):
        if dataclasses.is_dataclass(hints[field.name]):
            options += generated_options(hints[field.name])
        elif field.metadata.get("cli"):
            flag = f"--{(field.metadata['flag'] or field.name).replace('_', '-')}"
            options.append((flag, hints[field.name], field.metadata["bounds"]))
    return options


def broken_values(command: str, flag: str, kind: typing.Any, bounds: str | None) -> list[tuple[str, list[str], str]]:
    """The broken values of one option and the start of the parser's message refusing each."""
    from glm.fields import Bounds

    base = typing.get_args(kind)[0] if typing.get_origin(kind) in (typing.Union, type(int | None)) else kind
    if typing.get_origin(base) is list:
        base = typing.get_args(base)[0]
    cases = []
    if base in (int, float):
        cases.append((command, [flag, "many"], f"argument {flag}: invalid {base.__name__} value"))
    if typing.get_origin(base) is typing.Literal:
        cases.append((command, [flag, "nonsense"], f"argument {flag}: invalid choice"))
    if bounds:
        cases.append((command, [flag, str(int(Bounds.parse(bounds).low) - 1)], f"argument {flag}: must be"))
    return cases


@pytest.mark.parametrize(("command", "option", "expected"), option_cases())
def test_every_option_of_every_command_refuses_a_broken_value(
    command: str, option: list[str], expected: str, capsys
) -> None:
    code, _, err = run([command, *option], capsys)
    assert code == 2 and "Traceback" not in err
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_option_cases_cover_every_command() -> None:
    commands = {command for command, _, _ in option_cases()}
    assert commands >= {"pretrain", "generate", "score", "mutagenesis", "fit-head", "embed", "layers", "fit-classifier"}
    assert len(CASES) >= 80
