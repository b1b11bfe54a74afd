import json
import os

import pytest

from harness.synthetic import digits
from stages.lib import io, plots


def test_transaction_commits_every_file_together(tmp_path):
    with io.transaction() as out:
        out.write_json(tmp_path / "a" / "m.json", {"b": 1, "a": 2.5})
        out.write_csv(tmp_path / "t.csv", ["x", "y"], [[1, 2.0]])
        assert not (tmp_path / "a" / "m.json").exists()  # nothing visible before commit
    assert json.loads((tmp_path / "a" / "m.json").read_text()) == {"a": 2.5, "b": 1}
    assert (tmp_path / "t.csv").read_text() == "x,y\n1,2.0\n"
    assert (tmp_path / "a" / "m.json").read_text().index('"a"') < (tmp_path / "a" / "m.json").read_text().index('"b"')


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_take_the_modes_the_users_umask_gives(tmp_path, umask, file_mode, dir_mode):
    """Ordinary files, not mkstemp's private ones; and private where the user asks for it."""
    before = os.umask(umask)
    try:
        with io.transaction() as out:
            out.write_json(tmp_path / "m.json", {"a": 1})
            (out.directory(tmp_path / "model") / "w").write_bytes(b"")
    finally:
        os.umask(before)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model").stat().st_mode & 0o777 == dir_mode


def test_failure_leaves_no_output_and_no_temporary(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt), io.transaction() as out:
        out.write_json(tmp_path / "new.json", {"a": 1})
        out.directory(tmp_path / "ckpt")
        out.write_json(tmp_path / "old.json", {"replaced": True})
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "{}"


def test_writing_one_path_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="written twice"), io.transaction() as out:
        out.write_text(tmp_path / "x", "1")
        out.write_text(tmp_path / "x", "2")


def test_nan_is_refused_in_metrics():
    with pytest.raises(ValueError):
        io.json_bytes({"loss": float("nan")})


def test_png_bytes_are_deterministic_and_carry_no_version():
    images = digits(16, 0)[0].reshape(16, -1) / 255
    a = io.png_bytes(plots.samples_figure(images, "t"))
    b = io.png_bytes(plots.samples_figure(images, "t"))
    assert a == b and a.startswith(b"\x89PNG")
    assert b"matplotlib" not in a.lower()


def test_tile_places_images_row_major():
    images = digits(6, 0)[0].reshape(6, -1)
    canvas = plots.tile(images, cols=4)
    assert canvas.shape == (56, 112)
    assert (canvas[28:56, 0:28] == images[4].reshape(28, 28)).all()
    assert (canvas[28:, 56:] == 0).all()


def test_latent_grid_runs_top_left_to_bottom_right():
    z = plots.latent_grid(10.0, 3)
    assert z[0].tolist() == [-10.0, 10.0] and z[2].tolist() == [10.0, 10.0] and z[-1].tolist() == [10.0, -10.0]


def test_the_walk_decodes_the_latent_grid_with_every_further_axis_at_zero():
    import torch

    from stages.lib import figures

    walked = figures.walk(lambda z: z * 2, latent=3, limit=10.0, cells=3)  # a "decoder" that shows its codes
    assert walked.dtype == torch.float32 and walked.shape == (9, 3)
    assert walked[:, :2].tolist() == (2 * plots.latent_grid(10.0, 3)).tolist()
    assert (walked[:, 2] == 0).all()
