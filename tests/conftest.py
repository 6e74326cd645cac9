"""Settings every test runs under, and the fixtures several test files share.

Helpers shared by several test files live in tests/helpers/; fixtures shared by several live
here. docs/testing.md says how to run the fast loop (``-m "not e2e"``) and the full suite.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread: the machine's cores are shared, and results are compared bit for bit
    between runs (child processes get the same from tests.helpers.processes.one_thread_env)."""
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory) -> dict:
    """The extractors' checkpoints in their real formats with random weights (seed 1), as the demo
    makes them: ``tsn`` an mmaction2 TSN file with mmengine objects in its metadata (loading it needs
    trust), ``w2v`` a tiny wav2vec 2.0 folder. Read-only for the tests that share them."""
    from extractors import checkpoints

    root = tmp_path_factory.mktemp("random_checkpoints")
    tsn, w2v = root / "tsn_random.pth", root / "w2v_tiny"
    assert checkpoints.main(["--tsn", str(tsn), "--wav2vec2", str(w2v), "--wav2vec2-size", "tiny", "--seed", "1"]) == 0
    return {"tsn": tsn, "w2v": w2v}
