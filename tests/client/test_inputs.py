"""Reading CLI feature rows from CSV and JSON and keeping the model's columns."""

from __future__ import annotations

import pytest

from client.inputs import InputError, parse_rows, select_features, select_titles, title_column

GTZAN_CSV = (
    "filename,length,tempo,rms_mean,label\na.wav,661794,120.5,0.13,blues\nb.wav,661794,,0.2,jazz\n"
)


def test_csv_cells_stay_text_until_columns_are_chosen() -> None:
    rows = parse_rows(GTZAN_CSV)
    assert rows[1] == {
        "filename": "b.wav",
        "length": "661794",
        "tempo": "",
        "rms_mean": "0.2",
        "label": "jazz",
    }


def test_select_keeps_model_columns_as_floats_and_omits_empty_cells() -> None:
    rows, dropped = select_features(parse_rows(GTZAN_CSV), ["tempo", "rms_mean", "zcr_mean"])
    assert rows == [{"tempo": 120.5, "rms_mean": 0.13}, {"rms_mean": 0.2}]
    assert dropped == ["filename", "length", "label"]


@pytest.mark.parametrize(
    "text",
    [
        '[{"tempo": 90, "Artist Name": "X"}, {"tempo": null, "rms_mean": 1.5}]',
        '{"rows": [{"tempo": 90, "Artist Name": "X"}, {"rms_mean": "1.5"}]}',
    ],
)
def test_json_list_or_rows_object(text: str) -> None:
    rows, dropped = select_features(parse_rows(text), ["tempo", "rms_mean"])
    assert rows == [{"tempo": 90.0}, {"rms_mean": 1.5}]
    assert dropped == ["Artist Name"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tempo\nfast\n", "row 1, column 'tempo'"),
        ('[{"tempo": true}]', "not a number"),
        ('[{"tempo": [1]}]', "not a number"),
        ("[1, 2]", "row 1: expected an object"),
        ('{"data": []}', '"rows"'),
        ("[{", "invalid JSON"),
        ("tempo\n1,2\n", "more cells"),
    ],
)
def test_unusable_input_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        select_features(parse_rows(text), ["tempo"])


def test_empty_input_has_no_header() -> None:
    with pytest.raises(InputError, match="header"):
        parse_rows("")


@pytest.mark.parametrize(
    ("header", "chosen"),
    [("a,Track Name,b", "Track Name"), ("title,Track Name", "title"), ("TITLE ,x", "TITLE "),
     ("a,b", None)],
)  # fmt: skip
def test_the_title_column_is_title_or_track_name_in_any_case(
    header: str, chosen: str | None
) -> None:
    assert (
        title_column(parse_rows(f"{header}\n" + ",".join("1" for _ in header.split(",")))) == chosen
    )


def test_titles_are_trimmed_text_and_empty_where_absent() -> None:
    rows = parse_rows('[{"title": " Hey Jude "}, {"title": null}, {}]')
    assert select_titles(rows, "title") == ["Hey Jude", "", ""]
    with pytest.raises(InputError, match=r"row 1, column 'title': 3 is not text"):
        select_titles(parse_rows('[{"title": 3}]'), "title")
