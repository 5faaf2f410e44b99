"""The learned crisis head: built offline from the repo's training files, reproducibly, stored without pickles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.safety import head_build
from bot.safety.classifier import CrisisHead, head_dir

ROOT = Path(__file__).resolve().parents[2]
TRAINING = head_build.training_dir(ROOT / "training")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the training files and a head trained from them in a temporary models folder."""
    work = tmp_path_factory.mktemp("crisis")
    data = work / "training"
    shutil.copytree(TRAINING, data)
    models = work / "models"
    _head, report = head_build.build_head(models, data)
    assert report is not None and report["train_rows"] >= 1500
    return models, data


def test_training_data_is_large_and_covers_every_kind() -> None:
    train = head_build.load_split(TRAINING, "train")
    dev = head_build.load_split(TRAINING, "dev")
    assert len(train) >= 1500
    for kind in head_build.LABELS:
        assert sum(e.label == kind for e in train) >= 100, kind
    assert not {e.text for e in train} & {e.text for e in dev}, "train and dev never share a message"


def test_build_is_reproducible_and_skipped_when_current(built, tmp_path) -> None:
    models, data = built
    first = CrisisHead.load(head_dir(models))
    _again, report = head_build.build_head(models, data)
    assert report is None, "unchanged data: nothing to train"
    other, report = head_build.build_head(tmp_path / "models", data)
    assert report is not None
    assert other.vocabulary == first.vocabulary
    assert np.allclose(other.coef, first.coef, atol=1e-5) and other.thresholds == first.thresholds


def test_changed_training_data_retrains(built, tmp_path) -> None:
    models, data = built
    changed = tmp_path / "training"
    shutil.copytree(data, changed)
    with (changed / "train" / "zz_extra.tsv").open("w", encoding="utf-8") as handle:
        handle.write("none\tnone\t明日の会議の資料をまだ作っていない\n")
    assert head_build.is_current(models, data)
    assert not head_build.is_current(models, changed)


def test_head_files_are_plain_data(built) -> None:
    models, _ = built
    folder = head_dir(models)
    assert sorted(p.name for p in folder.iterdir()) == ["crisis-head.json", "crisis-head.npz"]
    with np.load(folder / "crisis-head.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"idf", "coef", "intercept"}


def test_thresholds_tier_the_scores(built) -> None:
    models, _ = built
    t = CrisisHead.load(head_dir(models)).thresholds
    assert 0 < t.memory < t.check_in < t.escalate < 1


@pytest.mark.parametrize(
    "row",
    [
        "suicide\tclear",
        "unknown\tclear\tテキスト",
        "none\tclear\tテキスト",
        "suicide\tnone\tテキスト",
        "suicide\tclear\t ",
    ],
)
def test_bad_training_rows_are_errors_with_a_line_number(tmp_path, row) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"none\tnone\tふつうの相談\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2"):
        head_build.load_examples(path)
