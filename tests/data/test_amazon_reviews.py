"""Amazon multi-domain sentiment reviews (Blitzer et al. 2007): the lenient .review reader and its wiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.core.config import DataConfig, RunConfig
from transferkit.data import LabelMap, detect_format, read_review_dir, read_review_file, read_table
from transferkit.tasks import ClassificationConfig, ClassificationTask

AMAZON = SHARED_DATA / "amazon_multidomain_sentiment"


def review(text: str, title: str = "A title") -> str:
    """One review block as the release writes it (fields on their own lines, a bare '&' in the product name)."""
    return (f"<review>\n<unique_id>\n0785758968:x:y\n</unique_id>\n<product_name>\nPots & Pans\n</product_name>\n"
            f"<title>\n{title}\n</title>\n<review_text>\n{text}\n</review_text>\n</review>\n")


def write(path: Path, *blocks: str, root: bool = True) -> str:
    body = "".join(blocks)
    path.write_text(f"<reviews>\n{body}</reviews>\n" if root else body, encoding="utf-8")
    return str(path)


@pytest.fixture
def domain(tmp_path: Path) -> Path:
    folder = tmp_path / "kitchen"
    folder.mkdir()
    write(folder / "positive.review", review("Great &quot;non-stick&quot; pan &amp; lid.\n\nWorks well."), review("Love it"))
    write(folder / "negative.review", review("Broke after a week & the handle melted."), root=False)
    return folder


def test_one_file_one_example_per_review_with_lines_and_unescaped_text(domain: Path) -> None:
    path = str(domain / "positive.review")
    table = read_table(path)
    assert table.columns == ["text", "label"] and table.source == path
    assert table.data["text"] == ['Great "non-stick" pan & lid.\n\nWorks well.', "Love it"]
    assert table.data["label"] == ["positive", "positive"]
    assert table.rows == [2, 18]  # the lines of the <review> tags (line 1 is <reviews>)
    examples, labels = read_review_file(path, LabelMap(["negative", "positive"]))
    assert examples.texts == table.data["text"] and examples.labels == [1, 1] and examples.rows == [2, 18]
    assert examples.source == path and labels is not None and labels.names == ["negative", "positive"]


def test_a_domain_directory_reads_every_review_file_in_name_order(domain: Path) -> None:
    (domain / "notes.txt").write_text("not a review file", encoding="utf-8")
    examples, labels = read_review_dir(str(domain))
    assert labels is not None and labels.names == ["negative", "positive"]
    assert examples.texts[0] == "Broke after a week & the handle melted." and examples.labels == [0, 1, 1]
    assert examples.source == str(domain) and examples.rows == [1, 2, 3]
    table = read_table(str(domain))
    assert table.unit == "review" and table.where(2) == f"{domain} review 3"


def test_unlabeled_review_has_no_labels_and_a_directory_skips_it(domain: Path) -> None:
    unlabeled = write(domain / "unlabeled.review", review("No idea"), review("Meh"))
    examples, labels = read_review_file(unlabeled)
    assert examples.texts == ["No idea", "Meh"] and examples.labels is None and labels is None
    assert read_table(unlabeled).columns == ["text"]
    assert len(read_review_dir(str(domain))[0]) == 3
    task = ClassificationTask(labels=["negative", "positive"])  # unlabelled target text / prediction input
    assert task.read(unlabeled, DataConfig(), require_targets=False).texts == ["No idea", "Meh"]


def test_format_is_detected_for_review_files_and_directories_holding_them(domain: Path, tmp_path: Path) -> None:
    assert detect_format(str(domain / "positive.review")) == "amazon_reviews"
    assert detect_format(str(domain)) == "amazon_reviews"
    (tmp_path / "saved_dataset").mkdir()
    assert detect_format(str(tmp_path / "saved_dataset")) == "hf"  # other directories are still datasets
    renamed = tmp_path / "positive.xml"
    renamed.write_text((domain / "positive.review").read_text(encoding="utf-8"), encoding="utf-8")
    assert read_table(str(renamed), format="amazon_reviews").data["label"] == ["positive", "positive"]


@pytest.mark.parametrize(("blocks", "fragments"), [
    ([review("one"), "<review>\n<review_text>\ntwo\n</review_text>\n", review("three")],
     ["line 16", "<review> without </review>", "next <review> is at line 20"]),
    ([review("one"), "<review>\n<review_text>\ntwo\n</review_text>\n"], ["line 16", "the file ends first"]),
    ([review("one"), "<review>\n<title>\nx\n</title>\n</review>\n"], ["line 16", "review without <review_text>"]),
    (["<review>\n<title>\nx\n</title>\n<review_text>\nnever closed\n</review>\n"], ["line 6", "without </review_text>"]),
    ([review("one"), "</review>\n"], ["line 16", "</review> without a <review>"]),
    ([], ["no <review> blocks"]),
])
def test_malformed_files_are_one_line_errors_naming_file_and_line(tmp_path: Path, blocks: list[str],
                                                                  fragments: list[str]) -> None:
    path = write(tmp_path / "negative.review", *blocks)
    one_line_error(lambda: read_table(path), path, *fragments)


def test_empty_inputs_are_errors_naming_them(tmp_path: Path) -> None:
    empty_file = tmp_path / "positive.review"
    empty_file.write_text("", encoding="utf-8")
    one_line_error(lambda: read_review_file(str(empty_file)), str(empty_file), "no <review> blocks")
    only_unlabeled = tmp_path / "books"
    only_unlabeled.mkdir()
    write(only_unlabeled / "unlabeled.review", review("x"))
    one_line_error(lambda: read_review_dir(str(only_unlabeled)), str(only_unlabeled), "no labelled .review files")
    one_line_error(lambda: read_review_dir(str(empty_file)), str(empty_file), "not a directory")
    one_line_error(lambda: read_review_file(str(tmp_path / "missing.review")), "file not found")


def test_empty_review_text_is_reported_by_the_usual_validation(tmp_path: Path) -> None:
    path = write(tmp_path / "positive.review", review("fine"), review("   "))
    one_line_error(lambda: read_review_file(path), f"{path} line 16", "empty text", "data.drop_empty")


def test_classification_read_splits_reads_a_domain_directory(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    write(folder / "positive.review", *[review(f"good book number {i}") for i in range(20)])
    write(folder / "negative.review", *[review(f"dull book number {i}") for i in range(20)])
    config = RunConfig.from_dict({"data": {"train": str(folder), "test": str(folder / "negative.review")}})
    splits = ClassificationTask.read_splits(config.data, ClassificationConfig(), seed=0)
    assert splits.labels == ["negative", "positive"]
    assert len(splits.train) == 36 and len(splits.eval) == 4 and sorted(splits.eval.labels) == [0, 0, 1, 1]
    assert splits.tests["test"].labels == [0] * 20
    explicit = RunConfig.from_dict({"data": {"train": str(folder), "format": "amazon_reviews"}}).data
    assert len(ClassificationTask.read_splits(explicit, ClassificationConfig(), seed=0).train) == 36


@pytest.mark.shared_data
@pytest.mark.skipif(not AMAZON.is_dir(), reason=f"{AMAZON} not found")
@pytest.mark.parametrize("name", ["books", "dvd", "electronics"])
def test_shared_domains_hold_1000_positive_and_1000_negative_reviews(name: str) -> None:
    examples, labels = read_review_dir(str(AMAZON / name))
    assert labels is not None and labels.names == ["negative", "positive"]
    assert examples.labels is not None and [examples.labels.count(0), examples.labels.count(1)] == [1000, 1000]
    assert all(text.strip() for text in examples.texts)
    assert not any("&quot;" in text for text in examples.texts)
