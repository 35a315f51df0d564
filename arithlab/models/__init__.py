"""arithlab.models: the Flax NNX transformer, its encodings and sharding helpers."""

from arithlab.models.config import (default_model_config, lee_config, shen_config, validate,
                                    with_rope_scaling)
from arithlab.models.encodings import ENCODINGS
from arithlab.models.sharding import constrain, logical_to_spec, partition_specs
from arithlab.models.transformer import Transformer, build, param_count
