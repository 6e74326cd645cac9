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


# The test files that take longest, first, in this order (the rest follow in pytest's order). With two
# processes (`--dist loadfile --no-loadscope-reorder`, workflow/run.sh) the long end-to-end files start
# at once instead of last, so that neither process ends up alone with one of them at the end. The
# first two start together: the session's tiny DAG run (test_workflow.py, tests.helpers.tiny_pipeline)
# beside the README's commands, so that test_faults.py and test_slurm.py, which read that run, come
# after it is made. docs/testing.md has the timings this order comes from.
SLOW_FIRST = ("test_workflow.py", "test_readme_commands.py", "test_faults.py", "test_bad_input.py",
              "test_slurm.py", "test_workflow_extract_once.py", "test_submission.py", "test_benchmarks.py",
              "test_synthetic.py", "test_predict_cli.py", "test_npy_workflow.py", "test_viewer.py",
              "test_deviation_figure.py", "test_train_ddp.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: a file's order is kept
