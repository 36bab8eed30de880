"""Codecs: pure encode/decode of training targets and network outputs, one file per method.

- `associative_embedding.py`: bottom-up HigherHRNet (AE tags; decoder + joint-index targets).
- `top_down.py`: top-down HRNet / DarkPose heatmaps (decoder).
- `heatmap.py`: Gaussian heatmap targets (bottom-up and top-down).
- `refinement.py`: DARK and quarter-offset sub-pixel decoding.
- `base.py`: the `PoseCodec` protocol and `Prepared`.

`DECODERS` maps a decoder name (`ModelInfo.decoder`) to its class; `build_decoder` builds the
one of a registered model with the test options. The submodules are imported lazily so that
`pose_core.codecs` stays importable from the modules its codecs use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DECODERS", "build_decoder", "decoder_class"]

# decoder name -> (module, class)
DECODERS: dict[str, tuple[str, str]] = {
    "associative_embedding": (
        "pose_core.codecs.associative_embedding", "AssociativeEmbeddingDecoder"
    ),
    "top_down_heatmap": ("pose_core.codecs.top_down", "TopDownHeatmapDecoder"),
    # --- Coupled Embedding
    "coupled_embedding": ("pose_core.codecs.coupled_embedding", "CoupledEmbeddingDecoder"),
    # --- Double Embedding
    "double_embedding": ("pose_core.codecs.double_embedding", "DoubleEmbeddingDecoder"),
}


def decoder_class(name: str) -> Any:
    """The codec class registered as `name` (KeyError listing the known names)."""
    try:
        module, attribute = DECODERS[name]
    except KeyError:
        raise KeyError(f"unknown decoder {name!r}; known: {', '.join(DECODERS)}") from None
    return getattr(importlib.import_module(module), attribute)


def build_decoder(info: Any, input_size: Any = None, options: Any = None) -> Any:
    """The codec of a registered model (`ModelInfo`) for `input_size` (None: the model's; an
    int or (w, h), see the codec's `for_model`) and the test options (`base.TestOptions`)."""
    from pose_core.codecs.base import TestOptions

    cls = decoder_class(info.decoder)
    return cls.for_model(info, input_size, options or TestOptions())
