"""glm: a genomic language model toolkit.

    import glm
    lm = glm.load("runs/lambda_virus/model")
    lm.log_likelihood("ACGT...").bits_per_base

Importing glm does not import Lightning; training lives in glm.train.
"""

from glm.api import GenomicLM, LogLikelihood, load
from glm.errors import InputError

__version__ = "0.1.0"
__all__ = ["GenomicLM", "InputError", "LogLikelihood", "load", "__version__"]
