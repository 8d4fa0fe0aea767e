"""benchmarks/input_pipeline.py in --quick mode: every pipeline has its jaxvision and
torchvision rows, each with positive rates (wall clock, and CPU time for the in-process rows)
and the cores-per-accelerator figures they imply (no timing is asserted: the machine is
shared)."""

import math

import pytest

from benchmarks import input_pipeline

LOADERS = ("jaxvision, in process", "torchvision, num_workers=0", "torchvision, num_workers=1")


@pytest.mark.slow
def test_quick_mode_prints_every_row(capsys):
    text = input_pipeline.main(["--quick"])
    assert text in capsys.readouterr().out
    assert text.startswith("load average before the run ")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| pipeline", "| ---"))]
    assert [(r[0], r[1]) for r in rows] == [
        (p, loader) for p in input_pipeline.TARGETS for loader in LOADERS]
    for pipeline, loader, rate, cores, cpu_rate, cpu_cores in rows:
        # cores per accelerator = target per host / 8 accelerators / images/s per core
        target = {"mask_rcnn": 100}.get(pipeline, 20_000)
        pairs = [(rate, cores)]
        if loader.endswith(("in process", "num_workers=0")):  # CPU time of this process
            pairs.append((cpu_rate, cpu_cores))
        else:
            assert cpu_rate == cpu_cores == "-"
        for rate, cores in pairs:
            rate, cores = float(rate), float(cores)
            assert math.isfinite(rate) and rate > 0
            assert math.isclose(cores, target / 8 / rate, rel_tol=0.05, abs_tol=0.05)


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
