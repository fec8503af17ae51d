"""Every export defuses text a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pandas as pd

from medattn.review.export import csv_text, table_csv


def test_text_that_starts_like_a_formula_is_exported_as_text():
    rows = [['=HYPERLINK("http://evil.example/s","study")', "+1", "@SUM(A1)", "-2", "plain", 0.5, ""]]
    (row,) = list(csv.reader(io.StringIO(csv_text(list("abcdefg"), rows))))[1:]
    assert row[:4] == ['\'=HYPERLINK("http://evil.example/s","study")', "'+1", "'@SUM(A1)", "'-2"]
    assert row[4:] == ["plain", "0.5", ""]  # other text, numbers and empty cells unchanged


def test_a_reader_study_table_is_exported_with_every_text_column_defused():
    table = pd.DataFrame({"study": ["=1+2"], "reader": ['=HYPERLINK("x")'], "case": [3], "auc": [0.75]})
    (row,) = list(csv.DictReader(io.StringIO(table_csv(table))))
    assert row == {"study": "'=1+2", "reader": '\'=HYPERLINK("x")', "case": "3", "auc": "0.75"}
