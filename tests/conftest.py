import os

import pytest
import torch

# Tests run on two cores next to other work; fixed threads keep timings and results stable.
torch.set_num_threads(min(2, len(os.sched_getaffinity(0))))


@pytest.fixture
def mirror(tmp_path):
    """A folder of synthetic ``*.gz`` MNIST files and the SHA-256 of each uncompressed file."""
    from tests.synthetic import write_mirror

    folder = tmp_path / "mirror"
    return folder, write_mirror(folder)
