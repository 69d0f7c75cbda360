"""Reading, validating, splitting and batching labelled text.

>>> table = read_table("train.tsv")                                    # doctest: +SKIP
>>> examples, labels = to_examples(table, "sentence", "label")         # doctest: +SKIP
"""

from transferkit.data.amazon_reviews import read_review_dir, read_review_file
from transferkit.data.collate import LengthGroupedBatchSampler, PaddingCollator
from transferkit.data.examples import check_trainable, to_examples
from transferkit.data.labels import LabelMap, normalize_label
from transferkit.data.readers import Table, detect_format, read_table
from transferkit.data.splits import apply_budget, cap_examples, stratified_split

__all__ = [
    "LabelMap", "LengthGroupedBatchSampler", "PaddingCollator", "Table", "apply_budget", "cap_examples",
    "check_trainable", "detect_format", "normalize_label", "read_review_dir", "read_review_file", "read_table",
    "stratified_split", "to_examples",
]
