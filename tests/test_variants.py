from __future__ import annotations

import gzip
import math
import random

import pytest
from conftest import DATA, ROOT, write_fasta

from glm.errors import InputError
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variant_writer import vcf_info_name, write_variants
from glm.io.variants import Variant
from glm.scoring.windows import reference_windows, window_fraction_n

MITOMAP_CONFIRMED = ROOT / "data" / "mitomap_confirmed_mutations.vcf.gz"
VCF_HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
random.seed(7)
SEQUENCE = "".join(random.choice("ACGT") for _ in range(200))


@pytest.fixture
def genome(tmp_path) -> Genome:
    """chr1 (200 random bases), contig "2", chrM, and a 10-base contig "short"."""
    records = {"chr1": SEQUENCE, "2": "ACGTACGTAC" * 3, "chrM": "GATCACAGGT", "short": "TTGCAAGCTA"}
    return Genome(write_fasta(tmp_path / "genome.fa", records))


@pytest.fixture(scope="module")
def mt_genome() -> Genome:
    return Genome(DATA / "MT-human.fa")


def write_vcf(path, records: list[str], header: str = VCF_HEADER):
    path.write_text(header + "".join(record + "\n" for record in records))
    return path


def record(chrom: str, pos: int, ref: str, alt: str, info: str = ".", id: str = ".") -> str:  # noqa: A002 - the VCF column
    return f"{chrom}\t{pos}\t{id}\t{ref}\t{alt}\t.\tPASS\t{info}"


# ---------------------------------------------------------------------------------------------
# Reading


def test_mitomap_confirmed_reads_with_alias_and_every_ref_matches(mt_genome) -> None:
    with gzip.open(MITOMAP_CONFIRMED, "rt") as handle:
        data = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]
    expected_alts = sum(len(cells[4].split(",")) for cells in data)
    variants = read_variants(MITOMAP_CONFIRMED, mt_genome, aliases={"MT": "MT_human"})
    assert len(data) == 117
    assert len(variants) == expected_alts
    assert len({variant.line for variant in variants}) == 117
    sequence = mt_genome.sequence("MT_human")
    for variant, cells in zip(variants, data):
        assert (variant.chrom, variant.contig, variant.status) == ("MT", "MT_human", "")
        assert variant.pos == int(cells[1]) - 1
        assert sequence[variant.pos : variant.pos + len(variant.ref)] == variant.ref == cells[3]
    m3243 = [variant for variant in variants if variant.fields.get("Allele") == "m.3243A>G"]
    assert len(m3243) == 1 and (m3243[0].pos, m3243[0].ref, m3243[0].alt) == (3242, "A", "G")
    assert m3243[0].fields["FILTER"] == "PASS" and m3243[0].fields["Locus"] == "MT-TL1"
    assert [variant.kind for variant in variants].count("MNV") == 1  # m.8993TG>CA
    assert "##contig=<ID=MT,length=16569>" in variants.header_lines
    with pytest.raises(InputError, match=r"contig 'MT' is not in the genome.*MT_human"):
        read_variants(MITOMAP_CONFIRMED, mt_genome)


def test_vcf_pos_1_is_position_0_and_last_base_works(tmp_path, mt_genome) -> None:
    sequence = mt_genome.sequence("MT_human")
    last = len(sequence)
    path = write_vcf(
        tmp_path / "ends.vcf", [record("MT_human", 1, sequence[0], "T"), record("MT_human", last, sequence[-1], "A")]
    )
    first, final = read_variants(path, mt_genome)
    assert (first.pos, first.ref) == (0, "G") and sequence[0] == "G"
    assert (final.pos, final.ref, final.line) == (last - 1, sequence[-1], 4)


def test_multiallelic_split_with_per_allele_info_and_flags(tmp_path, genome) -> None:
    header = (
        "##fileformat=VCFv4.2\n"
        '##INFO=<ID=AF,Number=A,Type=Float,Description="allele frequency">\n'
        '##INFO=<ID=DB,Number=0,Type=Flag,Description="in dbSNP">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    )
    ref = SEQUENCE[9]
    alts = [base for base in "ACGT" if base != ref][:2]
    line = f"chr1\t10\trs1\t{ref.lower()}\t{alts[0]},{alts[1].lower()},<DEL>\t50\tPASS\tAF=0.1,0.2,0.3;DB;DP=7\tGT\t0/1"
    variants = read_variants(write_vcf(tmp_path / "multi.vcf", [line], header), genome)
    assert [variant.alt for variant in variants] == [alts[0], alts[1], "<DEL>"]
    assert {variant.line for variant in variants} == {5} and {variant.id for variant in variants} == {"rs1"}
    assert [variant.fields["AF"] for variant in variants] == ["0.1", "0.2", "0.3"]
    assert variants[0].fields == {"QUAL": "50", "FILTER": "PASS", "AF": "0.1", "DB": "true", "DP": "7"}
    assert [variant.status for variant in variants] == ["", "", "symbolic allele <DEL> not supported"]
    assert [variant.kind for variant in variants] == ["SNV", "SNV", "unsupported"]
    assert variants[0].ref == ref  # uppercased


def test_contig_names_reconciled_by_chr_prefix_and_aliases(tmp_path, genome) -> None:
    rows = [("1", 5, SEQUENCE[4], "A"), ("chr2", 2, "C", "T"), ("M", 1, "G", "A"), ("MT", 3, "T", "C")]
    variants = read_variants(rows, genome, aliases={"MT": "chrM"})
    assert [variant.contig for variant in variants] == ["chr1", "2", "chrM", "chrM"]
    assert [variant.chrom for variant in variants] == ["1", "chr2", "M", "MT"]
    assert [variant.line for variant in variants] == [0, 1, 2, 3]
    with pytest.raises(InputError, match=r"aliases: 'MT' maps to 'chrMT'"):
        read_variants(rows, genome, aliases={"MT": "chrMT"})


def test_unknown_contig_lists_available_contigs(tmp_path, genome) -> None:
    path = write_vcf(tmp_path / "in.vcf", [record("chr1", 3, SEQUENCE[2], "A"), record("chr9", 3, "A", "C")])
    with pytest.raises(InputError, match=r"in\.vcf:4: CHROM: contig 'chr9' is not in the genome.*chr1, 2, chrM, short"):
        read_variants(path, genome)
    many = Genome(write_fasta(tmp_path / "many.fa", {f"c{i}": "ACGT" for i in range(12)}))
    with pytest.raises(InputError, match=r"first 10 of 12\): c0, c1, .*c9; ") as error:
        read_variants([("x", 1, "A", "C")], many)
    assert "c10" not in str(error.value)


def test_ref_mismatch_error_counts_and_first_examples_skip_keeps_them(tmp_path, genome) -> None:
    wrong = {"A": "C", "C": "G", "G": "T", "T": "A"}
    positions = [3, 8, 20, 40, 41]
    records = [record("chr1", 1, SEQUENCE[0], "N")]  # the only row that matches
    # ALT differs from the (wrong) REF: a row whose ALT equals its REF has that status instead
    records += [record("chr1", pos, wrong[SEQUENCE[pos - 1]], wrong[wrong[SEQUENCE[pos - 1]]]) for pos in positions]
    path = write_vcf(tmp_path / "bad_ref.vcf", records)
    with pytest.raises(InputError) as error:
        read_variants(path, genome)
    message = str(error.value)
    assert message.startswith(f"{path}:4: REF: 5 of 6 variants do not match the genome")
    assert f"{path}:4 chr1:3 REF '{wrong[SEQUENCE[2]]}' but genome has '{SEQUENCE[2]}'" in message
    assert f"{path}:6 chr1:20 " in message and f"{path}:7" not in message  # first three only

    variants = read_variants(path, genome, on_ref_mismatch="skip")
    assert len(variants) == 6 and variants[0].status == ""
    assert [variant.status for variant in variants[1:]] == [
        f"REF mismatch: genome has {SEQUENCE[p - 1]!r}" for p in positions
    ]


def test_ref_check_n_in_genome_mismatches_and_soft_mask_matches(tmp_path) -> None:
    genome = Genome(write_fasta(tmp_path / "g.fa", {"c": "ACgtNNAC"}))
    assert [v.status for v in read_variants([("c", 3, "GT", "G"), ("c", 5, "N", "A")], genome)] == ["", ""]
    with pytest.raises(InputError, match=r"1 of 1 variants .*c:5 REF 'A' but genome has 'N'"):
        read_variants([("c", 5, "A", "G")], genome)


def test_symbolic_breakend_and_star_alleles_get_a_status(tmp_path, genome) -> None:
    base = SEQUENCE[4]
    alts = ["<DEL>", "]chr1:5]" + base, "*", "<INS:ME>", "."]
    path = write_vcf(tmp_path / "sv.vcf", [record("chr1", 5, base, alt) for alt in alts])
    variants = read_variants(path, genome)
    assert [variant.status for variant in variants] == [
        "symbolic allele <DEL> not supported",
        "breakend alleles not supported",
        "ALT '*' (overlapping deletion) not supported",
        "symbolic allele <INS:ME> not supported",
        "no ALT allele ('.'): nothing to score",
    ]
    assert {variant.kind for variant in variants} == {"unsupported"}
    with pytest.raises(InputError, match=r"sv\.vcf:3: ALT: cannot build a scoring window: symbolic allele <DEL>"):
        reference_windows(variants[0], genome, window=20, k=1)


@pytest.mark.parametrize(
    "lines,pattern",
    [
        ([record("chr1", "12x", "A", "C")], r"bad\.vcf:3: POS: expected an integer, got '12x'"),
        ([record("chr1", 0, "A", "C")], r"bad\.vcf:3: POS: must be at least 1"),
        (["chr1\t5\t.\tA\tC"], r"bad\.vcf:3: columns: expected 8 tab-separated columns .*found 5"),
        ([record("chr1", 5, "A", "CX")], r"bad\.vcf:3: ALT: invalid base 'X' in 'CX'"),
        ([record("chr1", 5, "R", "C")], r"bad\.vcf:3: REF: invalid base 'R'"),
        ([record("chr1", 5, "", "C")], r"bad\.vcf:3: REF: empty allele"),
        ([record("chr1", 5, "A", "C,")], r"bad\.vcf:3: ALT: empty allele"),
        ([record("chr1", 201, "A", "C")], r"bad\.vcf:3: POS: 201 is past the end of contig 'chr1' \(length 200\)"),
        ([record("chr1", 199, "AAA", "C")], r"bad\.vcf:3: REF: 'AAA' at POS 199 extends past the end .*length 200"),
        ([], r"bad\.vcf: no variants"),
    ],
)
def test_malformed_vcf_lines_name_file_line_and_field(tmp_path, genome, lines, pattern) -> None:
    with pytest.raises(InputError, match=pattern):
        read_variants(write_vcf(tmp_path / "bad.vcf", lines), genome)


@pytest.mark.parametrize(
    "content,pattern",
    [
        ("", r"x: empty file"),
        ("\n\n", r"x: empty file"),
        ("##fileformat=VCFv4.2\nchr1\t5\t.\tA\tC\t.\t.\t.\n", r"x:2: header: no #CHROM header"),
        ("#CHROM\tPOS\tREF\tALT\n", r"x:1: header: expected the tab-separated columns #CHROM POS ID REF ALT"),
        ("chr1\t5\tA\tC\n", r"x:1: header: missing column\(s\) chrom, pos, ref, alt"),
        ("chrom\tpos\tref\tvariant\nchr1\t5\tA\tC\n", r"x:1: header: missing column\(s\) alt"),
        ("chrom,pos,ref,alt\n", r"x: no variants"),
        ("chrom\tpos\tref\talt\nchr1\t5\tA\n", r"x:2: columns: expected 4 tab-separated columns .*line 1\), found 3"),
        ("chr,position,REF,Alt\n1,five,A,C\n", r"x:2: POS: expected an integer, got 'five'"),
    ],
)
def test_malformed_files(tmp_path, genome, content, pattern) -> None:
    path = tmp_path / "x"
    path.write_text(content)
    with pytest.raises(InputError, match=pattern):
        read_variants(path, genome)


def test_format_from_content_tsv_csv_with_extra_columns(tmp_path, genome) -> None:
    ref = SEQUENCE[11]
    tsv = tmp_path / "looks_like.vcf"  # the name says VCF; the content is a table
    tsv.write_text(f"Chromosome\tPosition\tgene\tREF\tALT\tlabel\r\nchr1\t12\tBRCA1\t{ref}\tA\t1\r\n")
    compressed = tmp_path / "table.txt"
    compressed.write_bytes(gzip.compress(tsv.read_bytes()))
    csv = tmp_path / "v.csv"
    csv.write_text(f'#chr,pos,ref,alt,id,note\nchr1,12,{ref},A,v1,"a, quoted note"\n2,4,T,TT,,\n')
    for path in (tsv, compressed):
        (variant,) = read_variants(path, genome)
        assert (variant.contig, variant.pos, variant.ref, variant.alt, variant.line) == ("chr1", 11, ref, "A", 2)
        assert variant.fields == {"gene": "BRCA1", "label": "1"}
    first, second = read_variants(csv, genome)
    assert (first.id, first.fields) == ("v1", {"note": "a, quoted note"})
    assert (second.id, second.kind, second.fields) == (".", "insertion", {"note": ""})
    vcf_named_txt = write_vcf(tmp_path / "calls.txt", [record("chr1", 12, ref, "A")])
    assert read_variants(vcf_named_txt, genome)[0].fields["FILTER"] == "PASS"


def test_python_dicts_and_tuples(genome) -> None:
    rows = [
        {"CHROM": "chr1", "pos": 3, "ref": SEQUENCE[2], "alt": "A", "id": "a", "label": 1},
        {"chrom": "2", "position": "4", "ref": "TA", "alt": "T"},
    ]
    first, second = read_variants(rows, genome)
    assert (first.pos, first.id, first.fields, first.source) == (2, "a", {"label": "1"}, "<python>")
    assert (second.pos, second.kind, second.line) == (3, "deletion", 1)
    (variant,) = read_variants([("chr1", 1, SEQUENCE[0], "C", "x")], genome)
    assert variant.fields == {"column5": "x"}
    with pytest.raises(InputError, match=r"<python>:1: missing key\(s\) alt"):
        read_variants([rows[0], {"chrom": "chr1", "pos": 3, "ref": "A"}], genome)
    with pytest.raises(InputError, match=r"<python>: no variants"):
        read_variants([], genome)
    with pytest.raises(InputError, match=r"on_ref_mismatch must be one of error, skip, got .ignore."):
        read_variants(rows, genome, on_ref_mismatch="ignore")


def test_kind() -> None:
    def kind(ref: str, alt: str) -> str:
        return Variant("c", 0, ref, alt).kind

    assert [kind("A", "G"), kind("AC", "GT"), kind("A", "AT"), kind("AT", "A")] == [
        "SNV",
        "MNV",
        "insertion",
        "deletion",
    ]
    assert [kind("ACG", "TT"), kind("AT", "T"), kind("TA", "TCGA"), kind("A", "<DEL>")] == [
        "complex",
        "deletion",
        "insertion",
        "unsupported",
    ]


# ---------------------------------------------------------------------------------------------
# Writing and reading back


def scored_variants(tmp_path, genome):
    header = (
        "##fileformat=VCFv4.2\n"
        '##INFO=<ID=AF,Number=A,Type=Float,Description="allele frequency">\n'
        '##INFO=<ID=DB,Number=0,Type=Flag,Description="in dbSNP">\n' + VCF_HEADER.split("\n", 1)[1]
    )
    ref = SEQUENCE[19]
    alts = [base for base in "ACGT" if base != ref]
    lines = [
        record("chr1", 20, ref, ",".join(alts), "AF=0.1,0.2,0.3;DB;NOTE=a%3Bb c", "rs7"),
        record("2", 5, "A", "AGG", "AF=0.5"),
        record("chrM", 1, "G", "<DEL>"),
    ]
    variants = read_variants(write_vcf(tmp_path / "in.vcf", lines, header), genome)
    scores = {"llr": [-1.2345678e-3, 2.5, float("nan"), 3.0e7, float("nan")], "cosine": [0.1, 0.2, 0.3, 0.4, 0.5]}
    return variants, scores


@pytest.mark.parametrize("suffix", [".tsv", ".vcf", ".vcf.gz"])
def test_written_files_read_back_to_same_variants_and_scores(tmp_path, genome, suffix) -> None:
    variants, scores = scored_variants(tmp_path, genome)
    assert [variant.line for variant in variants] == [5, 5, 5, 6, 7]
    assert variants[0].fields["NOTE"] == "a;b c"  # percent-decoded
    out = write_variants(variants, scores, tmp_path / f"out{suffix}")
    assert (out.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".vcf.gz")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no temporary left
    again = read_variants(out, genome)

    def core(variant: Variant) -> tuple:
        return (variant.chrom, variant.contig, variant.pos, variant.ref, variant.alt, variant.id, variant.status)

    assert [core(variant) for variant in again] == [core(variant) for variant in variants]
    assert len({variant.line for variant in again}) == 5  # the multi-allelic line is written one ALT per line
    names = {"llr": "llr", "cosine": "cosine"} if suffix == ".tsv" else {"llr": "GLM_LLR", "cosine": "GLM_COSINE"}
    for name, column in names.items():
        for expected, variant in zip(scores[name], again):
            text = variant.fields[column]
            if math.isnan(expected):
                assert text == ("nan" if suffix == ".tsv" else ".")
            else:
                assert float(text) == pytest.approx(expected, rel=1e-6)
    for before, after in zip(variants, again):
        for key in ("AF", "NOTE"):
            assert (after.fields.get(key) or None) == before.fields.get(key)  # a TSV writes "" for absent
    assert again[0].fields["DB"] == "true" and again[0].fields["AF"] == "0.1"
    if suffix == ".tsv":
        assert out.read_text().splitlines()[0].split("\t") == (
            ["chrom", "pos", "id", "ref", "alt", "QUAL", "FILTER", "AF", "DB", "NOTE", "llr", "cosine", "status"]
        )
    else:
        text = gzip.decompress(out.read_bytes()).decode() if suffix == ".vcf.gz" else out.read_text()
        assert '##INFO=<ID=GLM_LLR,Number=1,Type=Float,Description="glm score llr">' in text
        assert "\tAF=0.2;DB;NOTE=a%3Bb c;GLM_LLR=2.5;GLM_COSINE=0.2\n" in text
        assert "GLM_STATUS=symbolic allele <DEL> not supported" in text


def test_mitomap_round_trip_through_vcf_gz_keeps_info(tmp_path, mt_genome) -> None:
    variants = read_variants(MITOMAP_CONFIRMED, mt_genome, aliases={"MT": "MT_human"})
    scores = {"GLM_LLR": [-(index + 1) / 7 for index in range(len(variants))]}
    out = write_variants(variants, scores, tmp_path / "scored.vcf.gz")
    again = read_variants(out, mt_genome, aliases={"MT": "MT_human"})
    assert [(v.pos, v.ref, v.alt) for v in again] == [(v.pos, v.ref, v.alt) for v in variants]
    assert [{k: x for k, x in v.fields.items() if k != "GLM_LLR"} for v in again] == [v.fields for v in variants]
    assert [float(v.fields["GLM_LLR"]) for v in again] == pytest.approx(scores["GLM_LLR"], rel=1e-6)
    assert "##contig=<ID=MT,length=16569>" in again.header_lines
    assert vcf_info_name("llr") == "GLM_LLR" and vcf_info_name("GLM_LLR") == "GLM_LLR"


def test_failed_write_leaves_no_file_and_bad_suffix(tmp_path, genome) -> None:
    variants, _ = scored_variants(tmp_path, genome)
    out = tmp_path / "scores.tsv"
    out.write_text("previous result\n")
    with pytest.raises(ValueError):
        write_variants(variants, {"llr": [1.0, 2.0, "oops", 4.0, 5.0]}, out)
    assert out.read_text() == "previous result\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["genome.fa", "genome.fa.fai", "in.vcf", "scores.tsv"]
    with pytest.raises(
        InputError, match=r"out\.csv: output: unsupported file suffix; use one of \.tsv, \.vcf, \.vcf\.gz"
    ):
        write_variants(variants, None, tmp_path / "out.csv")
    with pytest.raises(ValueError, match="has 2 values for 5 variants"):
        write_variants(variants, {"llr": [1.0, 2.0]}, tmp_path / "o.tsv")


# ---------------------------------------------------------------------------------------------
# Scoring windows


def expected_alt_window(genome: Genome, variant: Variant, start: int, window: int) -> str:
    """Independent oracle: genome before the variant + ALT + genome after REF, cut to the window."""
    offset = variant.pos - start
    after = variant.pos + len(variant.ref)
    tail = window - offset - len(variant.alt)
    return (
        genome.fetch(variant.contig, start, variant.pos)
        + variant.alt
        + genome.fetch(variant.contig, after, after + tail)
    )


@pytest.mark.parametrize("k", [1, 3, 6])
def test_windows_invariants_everywhere_on_the_contig(genome, k) -> None:
    window = 48
    for pos in range(0, 200, 3):
        ref = SEQUENCE[pos : pos + 4]
        snv, mnv = Variant("chr1", pos, ref[0], "N"), Variant("chr1", pos, ref[:2], "NN")
        deletion, insertion = Variant("chr1", pos, ref, ref[0]), Variant("chr1", pos, ref[0], ref[0] + "ACGT")
        for variant in (snv, mnv, deletion, insertion):
            if pos + len(variant.ref) > 200:
                continue
            variant.contig = "chr1"
            ref_window, alt_window, offset = reference_windows(variant, genome, window, k)
            start = pos - offset
            assert len(ref_window) == len(alt_window) == window
            assert ref_window[:offset] == alt_window[:offset]
            assert ref_window[offset : offset + len(variant.ref)] == variant.ref
            assert alt_window[offset : offset + len(variant.alt)] == variant.alt
            assert ref_window == genome.fetch("chr1", start, start + window)
            assert alt_window == expected_alt_window(genome, variant, start, window)
            if pos + len(variant.alt) <= 200:  # only an insertion at the very end may reach past the contig
                assert 0 <= start <= 200 - window and "N" not in ref_window
            if window <= pos <= 200 - window:  # away from the ends: k-mer phase and roughly centred
                assert offset % k == 0
                assert abs(offset - (window - max(len(variant.ref), len(variant.alt))) // 2) < k


def test_windows_at_position_1_and_last_base_stay_inside(genome) -> None:
    first = Variant("chr1", 0, SEQUENCE[0], "N", contig="chr1")
    ref_window, alt_window, offset = reference_windows(first, genome, window=32, k=3)
    assert (ref_window, offset) == (SEQUENCE[:32], 0) and alt_window == first.alt + SEQUENCE[1:32]
    last = Variant("chr1", 199, SEQUENCE[199], "A", contig="chr1")
    ref_window, alt_window, offset = reference_windows(last, genome, window=32, k=1)
    assert (ref_window, offset) == (SEQUENCE[-32:], 31) and alt_window == SEQUENCE[-32:-1] + "A"
    # the last base at k=3: the window cannot both stay inside and put the offset in phase; inside wins
    assert reference_windows(last, genome, window=32, k=3)[0] == SEQUENCE[-32:]
    near_start = Variant("chr1", 4, SEQUENCE[4], "A", contig="chr1")
    ref_window, _, offset = reference_windows(near_start, genome, window=32, k=3)
    assert (offset % 3, ref_window) == (0, SEQUENCE[1:33])  # shifted by one base to keep the phase


def test_short_contig_is_padded_with_n(genome) -> None:
    variant = Variant("short", 4, "A", "G", contig="short")
    ref_window, alt_window, offset = reference_windows(variant, genome, window=30, k=1)
    assert ref_window.strip("N") == "TTGCAAGCTA" and window_fraction_n(ref_window) == pytest.approx(20 / 30)
    assert ref_window[offset] == "A" and alt_window == ref_window[:offset] + "G" + ref_window[offset + 1 :]
    assert offset == 14 and ref_window == "N" * 10 + "TTGCAAGCTA" + "N" * 10


def test_deletion_extends_and_insertion_trims_the_alt_window(genome) -> None:
    deletion = Variant("chr1", 100, SEQUENCE[100:104], SEQUENCE[100], contig="chr1")
    ref_window, alt_window, offset = reference_windows(deletion, genome, window=40, k=1)
    start = 100 - offset
    assert ref_window == SEQUENCE[start : start + 40]
    assert alt_window == SEQUENCE[start:101] + SEQUENCE[104 : start + 43]  # three following genome bases appended
    assert alt_window[-3:] == SEQUENCE[start + 40 : start + 43]
    insertion = Variant("chr1", 100, SEQUENCE[100], SEQUENCE[100] + "GGG", contig="chr1")
    ref_window, alt_window, offset = reference_windows(insertion, genome, window=40, k=1)
    start = 100 - offset
    assert alt_window == SEQUENCE[start:101] + "GGG" + SEQUENCE[101 : start + 37]  # three bases trimmed on the right
    # a deletion of the contig's last bases: the extension runs past the end and is N
    end_deletion = Variant("chr1", 196, SEQUENCE[196:], SEQUENCE[196], contig="chr1")
    ref_window, alt_window, offset = reference_windows(end_deletion, genome, window=40, k=1)
    assert ref_window == SEQUENCE[-40:] and alt_window == SEQUENCE[-40:-3] + "NNN"
    # an insertion at the last base: the window reaches past the end just enough to hold the ALT
    end_insertion = Variant("chr1", 199, SEQUENCE[199], SEQUENCE[199] + "CC", contig="chr1")
    ref_window, alt_window, offset = reference_windows(end_insertion, genome, window=40, k=1)
    assert (offset, ref_window) == (37, SEQUENCE[-38:] + "NN") and alt_window == SEQUENCE[-38:] + "CC"


def test_indel_longer_than_window_is_an_error(tmp_path, genome) -> None:
    path = write_vcf(tmp_path / "long.vcf", [record("chr1", 50, SEQUENCE[49], SEQUENCE[49] + "A" * 30)])
    (variant,) = read_variants(path, genome)
    assert reference_windows(variant, genome, window=31, k=1)[2] == 0
    with pytest.raises(InputError, match=r"long\.vcf:3: ALT: indel longer than the scoring window"):
        reference_windows(variant, genome, window=30, k=1)


def test_window_fraction_n() -> None:
    assert window_fraction_n("ACGT") == 0.0
    assert window_fraction_n("NNnA") == 0.75
    assert window_fraction_n("") == 0.0


def test_grch38_contig_spellings_are_matched(tmp_path) -> None:
    from glm.io.variants import contig_key

    assert {contig_key(name) for name in ("chrM", "MT", "chrMT", "M")} == {"mt"}
    assert contig_key("chrUn_KI270302v1") == contig_key("KI270302.1") == "ki270302.1"
    assert contig_key("chr1_KI270706v1_random") == "ki270706.1" and contig_key("chr6_GL000251v2_alt") == "gl000251.2"
    records = {"chr1": "ACGT" * 5, "chrM": "GATC" * 5, "chrUn_KI270302v1": "TTTT" * 5, "chr6_GL000251v2_alt": "CCCC"}
    genome = Genome(write_fasta(tmp_path / "g.fa", records))
    rows = [("1", 1, "A", "C"), ("MT", 2, "A", "C"), ("KI270302.1", 3, "T", "C"), ("GL000251.2", 1, "C", "A")]
    assert [variant.contig for variant in read_variants(rows, genome)] == list(records)
    with pytest.raises(InputError, match=r"<python>:0: CHROM: contig 'chrX' is not in the genome"):
        read_variants([("chrX", 1, "A", "C")], genome)
