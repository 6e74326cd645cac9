"""The extractors' checkpoint files: the model zoo's names, numpy's allow-list, messages that name the fix.

``load_extractor_checkpoint`` loads an extractor checkpoint in torch's weights-only mode with
numpy's array, scalar and dtype reconstructors allowed (``torch.serialization.safe_globals``):
mmaction2 0.x files keep numpy values in mmcv's metadata (a best score, a message hub), which
rebuild arrays and nothing else, so such a file loads without ``trust_checkpoint``. Any other
class or function in a file still needs trust (``wmmt.io.load_checkpoint``'s refusal names it).

A checkpoint path that does not exist is a FileNotFoundError saying what the folder holds
that comes close, and the model zoo's full file name when the path names a published model
without its date and hash.
"""

from __future__ import annotations

import difflib
from pathlib import Path

# mmaction2's model zoo keeps a file's date and hash in its name (REFERENCE section 10).
MODEL_ZOO_FILES = (
    "tsn_r50_1x1x3_100e_kinetics400_rgb_20200614-e508be42.pth",
    "tsn_r50_320p_1x1x8_50e_activitynet_clip_rgb_20210301-c0f04a7e.pth",
)


def numpy_globals() -> list:
    """numpy's reconstructors for weights-only loading, under numpy 2's names and numpy 1's (files written then)."""
    import numpy as np
    from numpy._core import multiarray

    allowed = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
               (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               (multiarray.scalar, "numpy.core.multiarray.scalar")]
    allowed += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return allowed


def zoo_name(path) -> str | None:
    """The model zoo's file name that ``path``'s name abbreviates (its date and hash left out), if any."""
    stem = Path(path).name.removesuffix(".pth")
    for name in MODEL_ZOO_FILES:
        if name != Path(path).name and name.startswith(stem + "_20"):
            return name
    return None


def missing_checkpoint_message(path, what: str, setting: str) -> str:
    """Why ``path`` is not there and what to do: a near match in its folder, the model zoo's name."""
    path = Path(path)
    hints = []
    if path.parent.is_dir():
        neighbours = [p.name for p in path.parent.iterdir() if p.name != path.name]
        near = difflib.get_close_matches(path.name, neighbours, n=3, cutoff=0.6)
        near += [n for n in neighbours if n not in near and n.startswith(path.name.removesuffix(".pth"))]
        if near:
            hints.append(f"its folder holds {', '.join(near[:3])}: did you mean {path.parent / near[0]}?")
    else:
        hints.append(f"the folder {path.parent} does not exist either")
    published = zoo_name(path)
    if published:
        hints.append(f"mmaction2's model zoo publishes this model as {published}")
    hints.append(f"set extraction.{setting} in the workflow config to the file's path")
    return f"{path}: {what} not found; " + "; ".join(hints)


def load_extractor_checkpoint(path, trust: bool = False, setting: str = "tsn_checkpoint"):
    """A torch checkpoint, weights-only with numpy allowed; ``trust`` allows full unpickling."""
    import torch

    from wmmt.io import UnsafeCheckpointError, load_checkpoint

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(missing_checkpoint_message(path, "checkpoint", setting))
    try:
        with torch.serialization.safe_globals(numpy_globals()):
            return load_checkpoint(path, map_location="cpu", trust=False)
    except UnsafeCheckpointError:
        # More than numpy. Outside the allow-list, so that a refusal names all the file needs, numpy too.
        return load_checkpoint(path, map_location="cpu", trust=trust)
