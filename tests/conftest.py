import os

import pytest
import torch


def _share_the_cores() -> None:
    """Give each pytest-xdist worker its own cores, inherited by the stages it starts.

    Stages use every core they may run on; two workers whose stages each spun two threads
    on the same two cores ran the end-to-end tests slower than one worker alone.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    cores = sorted(os.sched_getaffinity(0))
    if worker and count and int(count) <= len(cores):
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, cores[index :: int(count)])


_share_the_cores()
# Fixed threads keep timings and results stable next to other work.
torch.set_num_threads(min(2, len(os.sched_getaffinity(0))))


@pytest.fixture
def mirror(tmp_path):
    """A folder of synthetic ``*.gz`` MNIST files and the SHA-256 of each uncompressed file."""
    from tests.synthetic import write_mirror

    folder = tmp_path / "mirror"
    return folder, write_mirror(folder)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """One full `dvc repro` of the tiny pipeline, committed, and pushed with its run cache to
    a local-directory DVC remote: (repo, env, the repro's output). Built once per worker."""
    from tests.e2e import build_pipeline

    return build_pipeline(tmp_path_factory.mktemp("e2e"))


END_TO_END = {
    "test_pipeline.py",
    "test_readme.py",
    "test_reproduction.py",
    "test_explorer.py",
    "test_grid.py",
    "test_stage_params.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first: they take a minute each, and started last they would
    leave one worker busy after the other has run out of tests."""
    items.sort(key=lambda item: item.path.name not in END_TO_END)
