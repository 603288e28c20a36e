"""pf.plot and pf.animate on 1-D, 2-D, 3-D and complex runs, built as small Datasets."""

import numpy as np
import pytest
import xarray as xr

import pdeforge as pf
from pdeforge.errors import PDEForgeError
from pdeforge.plotting.frames import frame_indices


def run_of(shape, complex_field=False, frames=6):
    dims = ("x", "y", "z")[: len(shape)]
    t = np.linspace(0, 1, frames)
    coords = {"t": t, **{d: (np.arange(n) + 0.5) / n for d, n in zip(dims, shape)}}
    values = np.random.default_rng(0).random((frames, *shape)) * np.exp(-t).reshape(-1, *[1] * len(shape))
    if complex_field:
        values = values * np.exp(1j * values)
    return xr.Dataset({"u": (("t", *dims), values), "v": (("t", *dims), -values.real)}, coords=coords,
                      attrs={"method": "rk4", "backend": "numba"})


def test_frame_indices():
    assert frame_indices(11, None, 4) == [0, 3, 7, 10]
    assert frame_indices(11, [0, -1], 4) == [0, 10]
    assert frame_indices(3, 10, 4) == [0, 1, 2]
    with pytest.raises(PDEForgeError, match="outside"):
        frame_indices(3, [5], 4)


def test_plot_1d_is_an_xt_diagram_with_curves(tmp_path):
    fig = pf.plot(run_of((20,)), frames=3, out=tmp_path / "a.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert "u: x-t diagram" in titles and "v: x-t diagram" in titles
    assert len(fig.axes[1].get_lines()) == 3
    assert (tmp_path / "a.png").stat().st_size > 5000


def test_plot_2d_rows_of_frames_share_colour_limits():
    fig = pf.plot(run_of((8, 6)), frames=[0, 2, -1], fields="u")
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 3 and len({im.get_clim() for im in images}) == 1
    assert [ax.get_title() for ax in fig.axes[:3]] == ["t = 0", "t = 0.4", "t = 1"]


def test_plot_3d_names_its_slice_and_complex_fields_their_modulus():
    fig = pf.plot(run_of((6, 6, 4), complex_field=True), frames=2, slice={"y": 0.5})
    labels = " ".join(ax.get_ylabel() for ax in fig.axes)
    assert "|u|, y = 0.583" in labels or "|u|, y = 0.417" in labels
    with pytest.raises(PDEForgeError, match="one of x, y, z"):
        pf.plot(run_of((4, 4, 4)), slice={"w": 1})


def test_animate_gif_has_one_picture_per_frame(tmp_path):
    from PIL import Image

    path = pf.animate(run_of((8, 8), frames=5), tmp_path / "m.gif")
    with Image.open(path) as im:
        assert im.n_frames == 5


def test_animate_mp4_through_the_ffmpeg_wheel(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    path = pf.animate(run_of((10,), frames=4), tmp_path / "m.mp4", fps=4)
    assert path.read_bytes()[4:8] == b"ftyp"


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(PDEForgeError, match="no field 'w'"):
        pf.plot(run_of((4,)), fields="w")
    with pytest.raises(PDEForgeError, match="use one of"):
        pf.animate(run_of((4,)), tmp_path / "m.avi")
