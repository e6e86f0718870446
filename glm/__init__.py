"""glm: a genomic language model toolkit.

    import glm
    lm = glm.load("runs/lambda_virus/model")
    lm.log_likelihood("ACGT...").bits_per_base
    glm.use_threads(2)  # CPU threads (default: glm.threads' policy, as the command line applies it)

Importing glm does not import Lightning; training lives in glm.train.
"""

from glm.api import GenomicLM, LogLikelihood, load
from glm.errors import InputError
from glm.threads import use_threads
from glm.version import __version__

__all__ = ["GenomicLM", "InputError", "LogLikelihood", "__version__", "load", "use_threads"]
