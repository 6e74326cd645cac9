"""A checkpoint that needs full unpickling is refused in plain text that names what it holds and
how to allow it (wmmt.io.load_checkpoint), whatever torch's own message looks like."""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import pytest
import torch

from extractors.checkpoints import write_tsn_checkpoint
from wmmt.io import UnsafeCheckpointError, load_checkpoint

HOW_TO_ALLOW = ("--trust-checkpoint", "trust_checkpoint: true in the workflow config's extraction section")


def refusal(path: Path) -> str:
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.isprintable(), repr(message)  # no colour codes, no newline, no tab
    assert message.startswith(f"{path}: checkpoint needs full unpickling, which can run code from the file")
    for words in HOW_TO_ALLOW:
        assert words in message
    return message


def test_mmengine_style_checkpoint_names_the_numpy_classes(tmp_path):
    path = write_tsn_checkpoint(tmp_path / "tsn.pth", seed=0, form="numpy")  # numpy arrays in message_hub
    message = refusal(path)
    # The one torch stopped at comes first, then every other one the file holds.
    assert "it holds numpy._core.multiarray._reconstruct, numpy.dtype, numpy.ndarray." in message
    assert load_checkpoint(path, trust=True)["state_dict"]


def test_arbitrary_class_is_named_in_zip_and_legacy_files(tmp_path):
    payload = {"weights": torch.zeros(2), "args": argparse.Namespace(lr=0.1)}
    for name, legacy in (("zip.pt", False), ("legacy.pt", True)):
        path = tmp_path / name
        torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
        assert "it holds argparse.Namespace." in refusal(path)


def test_many_classes_are_counted_not_all_listed(tmp_path):
    path = tmp_path / "many.pt"
    objects = [argparse.Namespace(), collections.Counter(), collections.deque(), collections.ChainMap(),
               collections.defaultdict(int), collections.UserDict(), collections.UserList()]
    torch.save({"objects": objects}, path)
    message = refusal(path)
    assert "and 2 more." in message  # seven names: five shown

