"""The facade's explicit options stay the library's: the same defaults, none missing, each documented."""

from __future__ import annotations

import inspect

import pytest

from glm.api import GenomicLM
from glm.errors import keyword_options
from glm.model.generation import generate_pieces
from glm.scoring.plan import make_plan

LEFT_OUT = {"keep_delta", "genome_tags"}  # features for heads (variant_features); the facade passes its own tags
# facade method -> (the library function declaring its options, the options it leaves out on purpose)
FACADE = {
    "score_variants": (make_plan, LEFT_OUT),
    "score_file": (make_plan, LEFT_OUT),
    "mutagenesis": (make_plan, LEFT_OUT | {"aliases", "on_ref_mismatch"}),  # its variants come from the genome
    "generate": (generate_pieces, set()),
    "generate_stream": (generate_pieces, set()),
}
MODEL_DEFAULTS = {"batch_size"}  # None on the facade: the model's own batch_size


@pytest.mark.parametrize("name", FACADE)
def test_facade_options_are_the_library_options_with_its_defaults(name: str) -> None:
    library, left_out = FACADE[name]
    facade = inspect.signature(getattr(GenomicLM, name)).parameters
    declared = inspect.signature(library).parameters
    for option in keyword_options(library):
        if option in left_out:
            assert option not in facade, (name, option)
            continue
        assert option in facade, f"GenomicLM.{name} does not expose {option}"
        default = None if option in MODEL_DEFAULTS else declared[option].default
        assert facade[option].default == default, (name, option)


@pytest.mark.parametrize("name", FACADE)
def test_every_facade_option_is_documented(name: str) -> None:
    """In the method's docstring or in the one it points to (score_variants, generate)."""
    method = getattr(GenomicLM, name)
    main = GenomicLM.score_variants if FACADE[name][0] is make_plan else GenomicLM.generate
    docs = method.__doc__ + main.__doc__
    for option, parameter in inspect.signature(method).parameters.items():
        if parameter.default is not parameter.empty:
            assert f"{option}:" in docs, (name, option)


def test_help_shows_the_options() -> None:
    assert str(inspect.signature(GenomicLM.generate)).startswith("(self, prompt: 'str', max_new_tokens: 'int' = 200, *")
    assert "strands: 'Strands' = 'both'" in str(inspect.signature(GenomicLM.score_variants))
