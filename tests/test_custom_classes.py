"""Custom asset classes (issue 26): a folder of models whose name is no kind rgsd places is
refused with one line before anything is written (it used to be indexed and never placed)."""
from scenes.user_assets import unknown_kinds
from tests.cli_util import gen, one_line_error

OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"


def test_an_unknown_kind_folder_is_refused_in_one_line(tmp_path):
    assets = tmp_path / "assets"
    for folder in ("car", "cyclist", "pedestrian_cutouts"):
        (assets / folder).mkdir(parents=True)
    (assets / "car" / "sedan.obj").write_text(OBJ)
    (assets / "cyclist" / "bike.obj").write_text(OBJ)
    assert unknown_kinds(assets) == ["cyclist"]
    out = tmp_path / "s.zarr"
    one_line_error(gen("scenes", "--n", 1, "--preset", "tiny", "--workers", 0, "--assets", assets, "--out", out),
                   "--assets", "cyclist", "not a kind rgsd places", "car")
    assert not out.exists()
    (assets / "cyclist" / "bike.obj").unlink()
    assert unknown_kinds(assets) == []  # an empty folder places nothing and hides nothing
