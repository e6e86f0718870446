"""The subcommands: one typed function each (models, variants, sequences); glm.arguments makes the parser.

    glm pretrain data/lambda_virus.fa          # the console command pip installs; the same as python cli.py
    python cli.py pretrain data/lambda_virus.fa
    python cli.py plot runs/lambda_virus                   # redraws runs/lambda_virus/curves.png
    python cli.py eval runs/lambda_virus/model data/phiX174.fa
    python cli.py pretrain data/tinyshakespeare.txt --config text
    python cli.py generate runs/tinyshakespeare/model --prompt "ROMEO:" --num-samples 2
    python cli.py export-hf runs/lambda_virus/model lambda-glm    # a transformers directory (pip install "glm[hf]")
    python cli.py score runs/MT-human/model --genome data/MT-human.fa \\
        --variants data/mitomap_confirmed_mutations.vcf.gz --alias MT=MT_human --out scores.vcf.gz
    python cli.py mutagenesis runs/MT-human/model --genome data/MT-human.fa --region MT_human:3230-3304 --out mt_tl1
    python cli.py track runs/MT-human/model --genome data/MT-human.fa --regions MT_human:3001-4000 --out mt.bw
    python cli.py fit-head runs/MT-human/model --genome data/MT-human.fa --variants data/mitomap_labelled.tsv \\
        --alias MT=MT_human --label label --group block --out heads/mitomap
    python cli.py embed runs/lambda_virus/model --input seqs.fa --out emb.npy
    python cli.py fit-classifier runs/x/model --train train.csv --dev dev.csv --test test.csv --out heads/x
    python cli.py classify heads/x --input new.fa --out preds.tsv

`--threads N` (before or after the command) sets the CPU threads; without it glm.threads chooses them.
Bad input prints one line (`error: file:line: field: problem`) and exits with status 2. Ctrl-C
(SIGINT) and SIGTERM (a scheduler's time limit, an eviction) stop a command with one line and status
130 or 143, its partial outputs removed; pretrain first saves a checkpoint to resume from
(glm.training.signals). Commands import what they need when they run, so `eval` or `score` never
load Lightning.
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from glm.arguments import build_parser
from glm.commands import models, sequences, tracks, variants
from glm.commands.options import Threads
from glm.errors import InputError, Stopped, raise_stopped, signal_handlers
from glm.threads import use_threads
from glm.version import __version__

COMMANDS = [
    models.pretrain,
    models.plot,
    models.evaluate,
    models.generate,
    models.export_hf,
    variants.score,
    variants.mutagenesis,
    variants.fit_head,
    tracks.track,
    sequences.embed,
    sequences.layers,
    sequences.fit_classifier,
    sequences.classify,
    sequences.to_fasta,
]


def main(argv: list[str] | None = None, prog: str = "glm") -> int:
    """Run one subcommand; 0 on success, 2 on bad input (one line on stderr), 130 when interrupted (Ctrl-C),
    143 when terminated (SIGTERM: raised as Stopped where the command is, so its cleanups run).

    This is also the `glm` console command (pyproject.toml [project.scripts]).
    """
    try:
        parser = build_parser(
            COMMANDS, prog, "glm: genomic language models.", version=f"glm {__version__}", shared={"threads": Threads}
        )
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a value argparse refused (its one-line error is printed)
        return int(exit_.code or 0)
    try:
        use_threads(args.threads)  # before the command, so that its first torch op runs with them
        with signal_handlers({signal.SIGTERM: raise_stopped}), warnings.catch_warnings():
            warnings.showwarning = _one_line_notes(warnings.showwarning)
            args.run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:
        print(stop, file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _one_line_notes(show: Callable[..., None]) -> Callable[..., None]:
    """`warnings.showwarning` for a command: glm's own notes (a skipped record, a rebuilt cache) as one
    line, `note: MESSAGE`, not Python's two (the message, then the source line); others as `show` does."""
    package = Path(__file__).resolve().parent.parent

    def note(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not Path(filename).resolve().is_relative_to(package):
            show(message, category, filename, lineno, file, line)
            return
        print(f"note: {message}", file=sys.stderr if file is None else file)

    return note
