"""benchmarks/input_pipeline.py in --quick mode: every pipeline has its jaxvision and
torchvision rows, each with positive rates (wall clock, and CPU time for the in-process rows)
and the cores-per-accelerator figures they imply (no timing is asserted: the machine is
shared)."""

import math

import pytest

from benchmarks import input_pipeline
from tests.markdown_tables import half_last_digit, table_rows

LOADERS = ("jaxvision, in process", "torchvision, num_workers=0", "torchvision, num_workers=1")


def body_rows(text: str) -> list[list[str]]:
    """The cells of the table's data rows (its header left out)."""
    return [row for row in table_rows(text) if row[0] != "pipeline"]


def assert_cores_follow_rates(rows: list[list[str]]) -> None:
    """Each rate is finite and positive, and its cores-per-accelerator cell is the target per
    host / 8 accelerators / rate, to within what rounding both printed cells allows."""
    for pipeline, loader, rate, cores, cpu_rate, cpu_cores in rows:
        per_accelerator = {"mask_rcnn": 100}.get(pipeline, 20_000) / 8
        pairs = [(rate, cores)]
        if loader.endswith(("in process", "num_workers=0")):  # CPU time of this process
            pairs.append((cpu_rate, cpu_cores))
        else:
            assert cpu_rate == cpu_cores == "-"
        for rate_cell, cores_cell in pairs:
            rate, cores = float(rate_cell), float(cores_cell)
            assert math.isfinite(rate) and rate > 0
            slack_rate, slack_cores = half_last_digit(rate_cell), half_last_digit(cores_cell)
            lowest = per_accelerator / (rate + slack_rate) - slack_cores
            highest = per_accelerator / (rate - slack_rate) + slack_cores
            assert lowest - 1e-9 <= cores <= highest + 1e-9, (pipeline, loader, rate, cores)


def test_cores_stay_within_rounding_at_the_edge_ci_met():
    """CI printed mask_rcnn at 35.7 images/s and 0.3 cores: 100 / 8 / 35.72 = 0.34994 rounds
    down while 100 / 8 / 35.7 = 0.35014 would round up; both cells are right to their digits.
    A cores cell off by one in its last digit past that edge (0.2) is caught."""
    edge = input_pipeline.Row("mask_rcnn", LOADERS[0], 3572, 100.0, 100.0)
    text = input_pipeline.table([edge], (0.0, 0.0, 0.0))
    rows = body_rows(text)
    assert rows == [["mask_rcnn", LOADERS[0], "35.7", "0.3", "35.7", "0.3"]]
    assert_cores_follow_rates(rows)
    with pytest.raises(AssertionError):
        assert_cores_follow_rates([["mask_rcnn", LOADERS[0], "35.7", "0.2", "35.7", "0.3"]])
    with pytest.raises(AssertionError):  # the target read per host instead of per accelerator
        assert_cores_follow_rates([["imagenet", LOADERS[2], "100.0", "200.0", "-", "-"]])


@pytest.mark.slow
def test_quick_mode_prints_every_row(capsys):
    text = input_pipeline.main(["--quick"])
    assert text in capsys.readouterr().out
    assert text.startswith("load average before the run ")
    rows = body_rows(text)
    assert [(r[0], r[1]) for r in rows] == [
        (p, loader) for p in input_pipeline.TARGETS for loader in LOADERS]
    assert_cores_follow_rates(rows)


def test_written_files_are_the_stated_sizes(tmp_path):
    """ImageNet-like 500x375 (every third portrait) and COCO-like 640x480 JPEGs, and a COCO
    annotation file listing each image at its file's size with 7 instances."""
    import json

    from PIL import Image

    root = input_pipeline.write_imagefolder(str(tmp_path / "in"), 4)
    sizes = sorted(Image.open(p).size for p in (tmp_path / "in" / "train").rglob("*.JPEG"))
    assert sizes == [(375, 500), (375, 500), (500, 375), (500, 375)] and root
    input_pipeline.write_coco(str(tmp_path / "coco"), 3)
    data = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    for info in data["images"]:
        with Image.open(tmp_path / "coco" / "images" / info["file_name"]) as image:
            assert image.format == "JPEG" and image.size == (info["width"], info["height"])
        assert sorted(image.size) == [480, 640]
    assert len(data["annotations"]) == 3 * 7
