"""Genome tokens: one token per genome (or manifest group) that starts every window of a tagged model.

A model trained with `--genome-tokens` (data.genome_tokens) sees, at position 0 of every training
and validation window, the token of the genome the window comes from; so one model conditions on
the species. At inference the same token takes the place of the leading SEP (log-likelihoods,
embeddings, variant windows) or starts the prompt (generation), chosen by `genome_name`.

Ids: the tokenizer's vocabulary is unchanged; tag i is id `tokenizer.vocab_size + i`, so the
model's vocabulary is the tokenizer's plus one id per tag, and an untagged model keeps identical
ids. A tag is only ever an input at position 0, never a target, so it adds nothing to losses,
log-likelihoods or bits per base. The names (in id order) and which genome uses which tag are
stored in the model directory's config.json under "genome_tokens"; a directory without that key
is an untagged model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glm.errors import InputError
from glm.io.schema import Fields


@dataclass(frozen=True)
class GenomeTags:
    """The tag vocabulary of a tagged model: names in id order, the first id, and genome -> tag."""

    names: tuple[str, ...]  # tag names, id order
    first_id: int  # the id of names[0]: the tokenizer's vocab_size
    genomes: Mapping[str, str] = field(default_factory=dict)  # genome name -> tag name (a group's genomes share it)

    @classmethod
    def build(cls, tag_of_genome: Mapping[str, str], first_id: int) -> GenomeTags:
        """Tags for genomes named in `tag_of_genome` (genome -> its tag), numbered in order of first use."""
        names = tuple(dict.fromkeys(tag_of_genome.values()))
        return cls(names, first_id, dict(tag_of_genome))

    def knows(self, name: str) -> bool:
        """Whether `name` is a tag or a genome of the run that trained the model."""
        return self.genomes.get(name, name) in self.names

    def id_of(self, name: str) -> int:
        """The token id of a tag name or of a genome the model was trained on; an InputError naming the known ones."""
        if not self.knows(name):
            others = sorted(set(self.genomes) - set(self.names))
            also = f" (or a genome of its groups: {', '.join(others)})" if others else ""
            raise InputError(
                f"genome name {name!r} is not one this model was trained with; known: {', '.join(self.names)}{also}"
            )
        return self.first_id + self.names.index(self.genomes.get(name, name))

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "first_id": self.first_id, "genomes": dict(self.genomes)}

    @classmethod
    def from_dict(cls, values: Any, source: str | Path) -> GenomeTags:
        """Read back `to_dict()` output (config.json's "genome_tokens"), checked field by field."""
        fields = Fields(values, source, "genome_tokens.")
        names = fields.strings("names", at_least=1)
        first_id = fields.integer("first_id", minimum=0)
        genomes = fields.object("genomes", {})
        return cls(tuple(names), first_id, {genome: genomes.string(genome) for genome in genomes.values})


def genome_token(tags: GenomeTags | None, genome_name: str | None) -> int | None:
    """The token id that starts every window for `genome_name`; None for an untagged model.

    A tagged model needs a name (there is no untagged default: it never saw a window without a
    tag); an untagged model refuses one, so a name is never silently ignored.
    """
    if tags is None:
        if genome_name is not None:
            raise InputError(
                f"genome name {genome_name!r}: this model was trained without genome tokens "
                "(pretrain --genome-tokens); leave the genome name out"
            )
        return None
    if genome_name is None:
        raise InputError(
            "this model was trained with genome tokens: give a genome name (genome_name=, --genome-name) "
            f"among {', '.join(tags.names)}"
        )
    return tags.id_of(genome_name)


def tag_names(genomes: Sequence[str], groups: Sequence[str | None]) -> dict[str, str]:
    """genome name -> tag name: its manifest group when it has one, else its own name."""
    return {name: group or name for name, group in zip(genomes, groups)}
