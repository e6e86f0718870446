"""Bad input through the Python API: every public GenomicLM method and glm.load check each argument against
its annotation before any work (glm.errors.typed_methods), then the library checks the ranges it declares.
A wrong type is an InputTypeError (an InputError and a TypeError) naming the method and the argument."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pytest
from conftest import DATA, ROOT

import glm
from glm.api import GenomicLM
from glm.errors import InputError, InputTypeError, check_type
from glm.heads.probes import Head
from glm.model.checkpoint import model_fingerprint
from glm.scoring.heads import FEATURE_SCORES

MODEL = ROOT / "tests" / "data" / "model_format1"  # k = 2, context 64, 2 layers
GENOME = DATA / "phiX174.fa"
CONTIG = "NC_001422.1"  # phiX174: bases 2-6 are AGTTT
VCF = f"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n{CONTIG}\t2\t.\tA\tC\t.\t.\t.\n"


@pytest.fixture(scope="module")
def lm() -> GenomicLM:
    return glm.load(MODEL, device="cpu", threads=1)


@pytest.fixture
def variants(tmp_path: Path) -> Path:
    path = tmp_path / "v.vcf"
    path.write_text(VCF)
    return path


# The examples, and their kin: (call, the exception, the start of its message)
Call = Callable[[GenomicLM, Path], Any]
EXAMPLES: dict[str, tuple[Call, type[Exception], str]] = {
    "load None": (lambda lm, v: glm.load(None), InputTypeError, "load: directory: expected str or Path, got None"),
    "load threads text": (lambda lm, v: glm.load(MODEL, threads="2"), InputTypeError, "load: threads: expected int or None, got str '2'"),
    "log_likelihood int": (lambda lm, v: lm.log_likelihood(12345), InputTypeError, "GenomicLM.log_likelihood: sequences: expected str or a sequence of str, got int 12345"),
    "log_likelihood bytes": (lambda lm, v: lm.log_likelihood(b"ACGT"), InputTypeError, "GenomicLM.log_likelihood: sequences: expected str or a sequence of str, got bytes b'ACGT'"),
    "log_likelihood list with an int": (lambda lm, v: lm.log_likelihood(["ACGT", 5]), InputTypeError, "sequences: expected str or a sequence of str, got list ['ACGT', 5]"),
    "embed int": (lambda lm, v: lm.embed(12), InputTypeError, "GenomicLM.embed: sequences: expected str or a sequence of str, got int 12"),
    "embed layer last": (lambda lm, v: lm.embed("ACGT", layer="last"), InputTypeError, "GenomicLM.embed: layer: expected int, got str 'last'"),
    "embed layer True": (lambda lm, v: lm.embed("ACGT", layer=True), InputTypeError, "GenomicLM.embed: layer: expected int, got bool True"),
    "embed pooling median": (lambda lm, v: lm.embed("ACGT", pooling="median"), InputError, "GenomicLM.embed: pooling must be one of mean, max, last, got 'median'"),
    "embed pooling 1": (lambda lm, v: lm.embed("ACGT", pooling=1), InputTypeError, "GenomicLM.embed: pooling: expected one of 'mean', 'max', 'last', got int 1"),
    "generate temperature hot": (lambda lm, v: lm.generate("ACGT", temperature="hot"), InputTypeError, "GenomicLM.generate: temperature: expected float, got str 'hot'"),
    "generate top_k 2.5": (lambda lm, v: lm.generate("ACGT", top_k=2.5), InputTypeError, "GenomicLM.generate: top_k: expected int or None, got float 2.5"),
    "generate_stream prompt list": (lambda lm, v: lm.generate_stream(["ACGT"]), InputTypeError, "GenomicLM.generate_stream: prompt: expected str, got list"),
    "score_variants aliases text": (lambda lm, v: lm.score_variants(v, GENOME, aliases="1=chr1"), InputTypeError, "GenomicLM.score_variants: aliases: expected a mapping of str to str or None, got str '1=chr1'"),
    "score_variants aliases to ints": (lambda lm, v: lm.score_variants(v, GENOME, aliases={"1": 1}), InputTypeError, "aliases: expected a mapping of str to str or None"),
    "score_variants genome int": (lambda lm, v: lm.score_variants(v, 7), InputTypeError, "GenomicLM.score_variants: genome: expected str or a path (os.PathLike) or Genome, got int 7"),
    "score_variants head int": (lambda lm, v: lm.score_variants(v, GENOME, head=3), InputTypeError, "GenomicLM.score_variants: head: expected VariantHead or str or a path (os.PathLike) or None, got int 3"),
    "score_file regions of pairs": (lambda lm, v: lm.score_file(v, GENOME, v.parent / "o.tsv", regions=[(CONTIG, 1)]), InputTypeError, "GenomicLM.score_file: regions: expected a sequence of tuple (str, int, int)"),
    "score_file regions one string": (lambda lm, v: lm.score_file(v, GENOME, v.parent / "o.tsv", regions=f"{CONTIG}:1-10"), InputTypeError, "regions: expected a sequence of tuple (str, int, int), got str"),
    "mutagenesis region tuple": (lambda lm, v: lm.mutagenesis(GENOME, (CONTIG, 1, 10)), InputTypeError, "GenomicLM.mutagenesis: region: expected str, got tuple"),
    "evaluate progress text": (lambda lm, v: lm.evaluate(GENOME, progress="no"), InputTypeError, "GenomicLM.evaluate: progress: expected bool, got str 'no'"),
    # right types, out of range: the library's own range checks, reached with values they can compare
    "load threads 0": (lambda lm, v: glm.load(MODEL, threads=0), InputError, "threads must be at least 1, got 0"),
    "generate temperature nan": (lambda lm, v: lm.generate("ACGT", temperature=float("nan")), InputError, "temperature must be at least 0, got nan"),
    "generate top_p inf": (lambda lm, v: lm.generate("ACGT", top_p=float("inf")), InputError, "top_p must be in (0, 1], got inf"),
    "generate max_new_tokens 0": (lambda lm, v: lm.generate("ACGT", max_new_tokens=0), InputError, "max_new_tokens must be at least 1, got 0"),
    "generate seed -1": (lambda lm, v: lm.generate("ACGT", seed=-1), InputError, "seed must be in [0, 1.84467e+19), got -1"),
    "embed layer 99": (lambda lm, v: lm.embed("ACGT", layer=99), InputError, "layer must be in [-3, 2] for this model, got 99"),
    "score_variants batch_size 0": (lambda lm, v: lm.score_variants(v, GENOME, batch_size=0), InputError, "batch_size must be at least 1, got 0"),
    "score_variants chunk_size 0": (lambda lm, v: lm.score_variants(v, GENOME, chunk_size=0), InputError, "chunk_size must be at least 1, got 0"),
    "score_variants strands reverse": (lambda lm, v: lm.score_variants(v, GENOME, strands="reverse"), InputError, "GenomicLM.score_variants: strands must be one of forward, both, got 'reverse'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(EXAMPLES))
def test_the_examples_name_the_argument(case: str, lm: GenomicLM, variants: Path) -> None:
    call, exception, message = EXAMPLES[case]
    with pytest.raises(exception) as raised:
        call(lm, variants)
    assert str(raised.value).startswith(message) or message in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (variants.parent / "o.tsv").exists()


def test_a_wrong_type_is_both_an_input_error_and_a_type_error(lm: GenomicLM) -> None:
    with pytest.raises(TypeError):
        lm.embed(12)
    with pytest.raises(InputError):
        lm.embed(12)


# A valid value for each required parameter of the public methods (a method added later with another
# one fails test_every_required_parameter_has_a_valid_value until it is named here).
VALID: dict[str, Callable[[Path], Any]] = {
    "directory": lambda tmp: MODEL,
    "sequences": lambda tmp: "ACGTACGT",
    "sequence": lambda tmp: "ACGTACGT",
    "prompt": lambda tmp: "ACGT",
    "fasta": lambda tmp: GENOME,
    "genome": lambda tmp: GENOME,
    "variants": lambda tmp: (tmp / "v.vcf").write_text(VCF) and tmp / "v.vcf",
    "out": lambda tmp: tmp / "o.tsv",
    "region": lambda tmp: f"{CONTIG}:1-10",
}


def public_methods() -> dict[str, Callable[..., Any]]:
    """The functions `glm` exports (load, use_threads) and every public method of GenomicLM (properties take
    no arguments)."""
    methods: dict[str, Callable[..., Any]] = {"load": glm.load, "use_threads": glm.use_threads}
    for name, attribute in vars(GenomicLM).items():
        if not name.startswith("_") and not isinstance(attribute, property):
            methods[f"GenomicLM.{name}"] = getattr(GenomicLM, name)
    return methods


def parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(function).parameters.values() if p.name not in ("self", "cls")]


ARGUMENTS = [(method, p.name) for method, function in public_methods().items() for p in parameters(function)]


class Wrong:
    """A value of a type no parameter takes."""


def test_the_sweep_covers_every_public_method() -> None:
    covered = {method for method, _ in ARGUMENTS}
    assert covered >= {"load", "use_threads", "GenomicLM.load", "GenomicLM.log_likelihood", "GenomicLM.embed"}
    assert covered >= {f"GenomicLM.{name}" for name in ("evaluate", "score_variants", "score_file", "mutagenesis")}
    assert len(ARGUMENTS) >= 60


def test_every_required_parameter_has_a_valid_value() -> None:
    required = {p.name for function in public_methods().values() for p in parameters(function) if p.default is p.empty}
    assert required <= set(VALID), f"add a valid value for {sorted(required - set(VALID))} to VALID"


@pytest.mark.parametrize(("method", "parameter"), ARGUMENTS)
def test_every_argument_of_every_public_method_refuses_a_wrong_type(
    method: str, parameter: str, lm: GenomicLM, tmp_path: Path
) -> None:
    function = getattr(lm, method.removeprefix("GenomicLM.")) if "." in method else getattr(glm, method)
    arguments = {p.name: VALID[p.name](tmp_path) for p in parameters(function) if p.default is p.empty}
    arguments[parameter] = Wrong()
    with pytest.raises(InputTypeError, match=rf"^{method}: {parameter}: expected .+, got Wrong <"):
        function(**arguments)
    assert not (tmp_path / "o.tsv").exists()


def test_accepted_on_purpose_numpy_values_paths_tuples_and_ints_for_floats(lm: GenomicLM, variants: Path) -> None:
    """Values of the annotated kind though not its plainest spelling give the same results."""
    sequences = ["ACGTTGCAAC" * 4, "GGCATTACGA" * 3]
    expected = lm.log_likelihood(sequences)
    assert lm.log_likelihood(np.array(sequences)) == expected
    assert lm.log_likelihood(tuple(sequences)) == expected
    assert np.array_equal(lm.embed(sequences[0], layer=np.int64(1)), lm.embed(sequences[0], layer=1))
    assert lm.generate("ACGT", 8, temperature=1, seed=np.int32(3)) == lm.generate("ACGT", 8, temperature=1.0, seed=3)
    plain = lm.score_variants(str(variants), str(GENOME), method="llr")
    other = lm.score_variants(variants, Path(GENOME), method=("llr",), aliases={"phiX": CONTIG}, chunk_size=np.int64(5))
    assert other["llr"][0] == plain["llr"][0] and plain["llr"][0] == plain["llr"][0]  # equal, and not NaN
    assert repr(glm.load(Path(MODEL), device="cpu")) == repr(lm)


def test_alt_equal_to_ref_is_reported_not_scored(lm: GenomicLM, tmp_path: Path, capsys) -> None:
    """Like a symbolic or `*` allele: a status and no score, beside the other rows (scored as usual)."""
    from glm.commands import main

    rows = [{"chrom": CONTIG, "pos": 2, "ref": "A", "alt": alt} for alt in ("C", "A", "a")]
    scores = lm.score_variants(rows, GENOME)
    same = "ALT equals REF: not a variant, nothing to score"
    assert [variant.status for variant in scores.variants] == ["", same, same]
    assert np.isfinite(scores["llr"][0]) and np.isnan(scores["llr"][1:]).all()
    (tmp_path / "v.vcf").write_text(VCF + f"{CONTIG}\t3\t.\tG\tG\t.\t.\t.\n")
    argv = ["score", str(MODEL), "--genome", str(GENOME), "--variants", str(tmp_path / "v.vcf"), "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "o.tsv")]) == 0
    assert "1 of 2 variants scored" in capsys.readouterr().out
    assert (tmp_path / "o.tsv").read_text().splitlines()[-1].endswith(same)


def fake_head(lm: GenomicLM, layer: int = -1) -> Head:
    """A logistic head on the five scores, fitted (as it were) on this model with 20-base windows."""
    arrays = {"mean": np.zeros(5), "scale": np.ones(5), "coef": np.ones((1, 5)), "intercept": np.zeros(1)}
    info = {"task": "variant", "window": 20, "layer": layer, "model_fingerprint": model_fingerprint(lm.model)}
    return Head("logistic", ["0", "1"], list(FEATURE_SCORES), arrays, info)


def test_a_head_refuses_other_strands_and_layers_and_accepts_its_own(lm: GenomicLM, variants: Path) -> None:
    head = fake_head(lm)
    with pytest.raises(InputError, match="strands: a head reads the scores of both strands, got 'forward'"):
        lm.score_variants(variants, GENOME, head=head, strands="forward")
    with pytest.raises(InputError, match="layer: this head was fitted on layer -1, got 1"):
        lm.score_variants(variants, GENOME, head=head, layer=1)
    same = lm.score_variants(variants, GENOME, head=head, layer=2, strands="both")  # layer 2 is the final (-1)
    assert same["head_probability"][0] == lm.score_variants(variants, GENOME, head=head)["head_probability"][0]
    assert 0 < same["head_probability"][0] < 1


class Untyped(Protocol):
    """A Protocol isinstance cannot check: its arguments are taken as they come."""

    name: str


@pytest.mark.parametrize(
    ("value", "hint", "accepted"),
    [
        (3, int, True),
        (np.uint8(3), int, True),
        (True, int, False),  # a bool is an int to Python, never to an option
        (3, float, True),
        (np.float32(0.5), float | None, True),
        ("3", float, False),
        (("a", 1, 2), tuple[str, int, int], True),
        (("a", 1), tuple[str, int, int], False),
        ((1, 2, 3), tuple[int, ...], True),
        ((1, "2"), tuple[int, ...], False),
        (["a", "b"], Sequence[str], True),
        ("ab", Sequence[str], False),  # a string is not a sequence of strings here
        ({"a": "b"}, Sequence[str], False),
        ({"a": "b"}, Mapping[str, str], True),
        ({"a": 1}, Mapping[str, str], False),
        (iter([1]), Iterable[Any], True),
        (object(), Untyped, True),
        (Path("x"), os.PathLike[str], True),
        ("x", os.PathLike[str], False),
        ("both", Literal["forward", "both"], True),
        (None, int | None, True),
        (None, int, False),
    ],
)
def test_check_type_reads_the_annotation(value: Any, hint: Any, accepted: bool) -> None:
    if accepted:
        check_type("x", value, hint)
    else:
        with pytest.raises(InputTypeError, match=r"^x: expected "):
            check_type("x", value, hint)
