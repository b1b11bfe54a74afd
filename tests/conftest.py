import os
import sys

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
    from harness.synthetic import write_mirror

    folder = tmp_path / "mirror"
    return folder, write_mirror(folder)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, worker_id):
    """One full `dvc repro` of the tiny pipeline, committed, and pushed with its run cache to
    a local-directory DVC remote: (repo, env, the repro's output). Built once for all workers
    (in the folder their temporary folders share), each of which gets a copy of its own."""
    from harness.e2e import build_pipeline, shared_pipeline

    if worker_id == "master":  # no workers: `pytest -n 0`
        return build_pipeline(tmp_path_factory.mktemp("e2e"))
    return shared_pipeline(tmp_path_factory.getbasetemp().parent, tmp_path_factory.mktemp("e2e"))


END_TO_END = {
    "test_pipeline.py",
    "test_readme.py",
    "test_reproduction.py",
    "test_explorer.py",
    "test_campaign.py",
    "test_stage_params.py",
}


# Names a test's own code calls when it opens a browser: Playwright's page, or Chromium itself
# (a test that opens one through a helper carries harness/browser.py's `needs_chromium`).
BROWSER_NAMES = {"offline_page", "CHROMIUM"}


def mark_by_need(item: pytest.Item) -> None:
    """Mark each test by what it needs, so that `make test-fast` (`-m "not slow and not ray and
    not browser"`) runs every unit test, those in the end-to-end files included, in minutes.

    slow: the tiny pipeline's real `dvc repro` (the `pipeline` fixture, directly or through
    another fixture); ray: a Ray cluster, which every test here starts in a network namespace
    of its own (harness/netns.py's `needs_netns`); browser: headless Chromium."""
    if "pipeline" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.slow)
    if needs(item, "harness.netns", "needs_netns"):
        item.add_marker(pytest.mark.ray)
    function = getattr(item, "function", None)
    if needs(item, "harness.browser", "needs_chromium") or (
        function and BROWSER_NAMES & set(function.__code__.co_names)
    ):
        item.add_marker(pytest.mark.browser)


def needs(item: pytest.Item, module: str, mark: str) -> bool:
    """Whether a test carries a skip mark of a helper module, which only a test file that
    imports the module can use (so one not yet imported is carried by none)."""
    helper = sys.modules.get(module)
    return helper is not None and getattr(helper, mark).mark in item.own_markers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first: they take a minute each, and started last they would
    leave one worker busy after the other has run out of tests."""
    for item in items:
        mark_by_need(item)
    items.sort(key=lambda item: item.path.name not in END_TO_END)
