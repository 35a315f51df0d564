"""The encoding registry: one import per family (each module registers its classes).

`build_encoding("randomized:rope", dims, options, randomized_max_len, rngs)` builds one;
base.py documents the interface a new encoding implements.
"""

from arithlab.models.encodings.base import (ENCODINGS, Dims, Encoding, HeadLayout, LayerEncoding,
                                            options_of)
from arithlab.models.encodings import none  # "none"
from arithlab.models.encodings import learned  # "learned"
from arithlab.models.encodings import sinusoidal  # "sinusoidal"
from arithlab.models.encodings import rope  # "rope"
from arithlab.models.encodings import alibi  # "alibi"
from arithlab.models.encodings import abacus  # "abacus"
from arithlab.models.encodings import coupling  # "coupling"
from arithlab.models.encodings import fire  # "fire"
from arithlab.models.encodings import t5  # "t5"
from arithlab.models.encodings import rope_pp  # "rope_pp"
from arithlab.models.encodings import tape  # "tape"
from arithlab.models.encodings.randomized import build_encoding, encoding_class
