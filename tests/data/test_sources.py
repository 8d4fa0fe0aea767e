"""load_splits: a `~` in data.data_dir is the user's home, never a literal `~` folder."""

from jaxvision.data.sources import load_splits
from jaxvision.train.config import base_config


def test_tilde_data_dir_expands_to_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    data = base_config().data
    data.update(dict(image_size=16, data_dir="~/tfds"))
    data.builders.shapes.update(dict(num_train=2, num_test=1))
    splits = load_splits("shapes", data)
    assert len(splits.train) == 2 and len(splits.test) == 1
    assert (tmp_path / "home" / "tfds" / "shapes").is_dir()
    assert not (tmp_path / "~").exists()
    assert data.data_dir == "~/tfds"  # the caller's config is not modified
