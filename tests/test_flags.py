from __future__ import annotations

import pytest
from invoke.exceptions import Exit

from devstack import flags


def test_count_kind_accepts_whole_numbers_and_no_text_as_not_given() -> None:
    kind = flags.count("employees", 9_999)
    assert kind() == "" and kind("50") == "50"
    assert kind().value is None and kind("50").value == 50


def test_value_parses_plain_text_from_callers_too() -> None:
    kind = flags.count("tickets", 100)
    assert flags.value("7", kind) == 7 and flags.value(kind("8"), kind) == 8 and flags.value("", kind) is None


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (flags.count("employees", 9_999), "-1", "ERROR --employees must be 0 or more, got -1."),
        (flags.count("tickets", 100), "abc", "ERROR --tickets must be a whole number, got 'abc'."),
        (flags.count("employees", 9_999), "10000", "ERROR --employees can be at most 9,999, got 10,000."),
        (flags.seconds("timeout"), "soon", "ERROR --timeout must be a number of seconds, got 'soon'."),
        (flags.seconds("timeout"), "-3", "ERROR --timeout must be 0 or more, got -3."),
        (flags.seconds("timeout"), "nan", "ERROR --timeout must be a finite number of seconds, got 'nan'."),
        (flags.seconds("timeout"), "inf", "ERROR --timeout must be a finite number of seconds, got 'inf'."),
        (
            flags.choice("via", "local", "broker"),
            "pigeon",
            "ERROR --via must be one of local, broker, got 'pigeon'.",
        ),
        (
            flags.count("employees", 9_999),
            "",
            "ERROR --employees needs a value, such as --employees=N; 'inv --help <task>' shows what each "
            "flag takes.",
        ),
        (flags.text("PATH", "report"), "", "ERROR --report needs a value, such as --report=PATH; "),
    ],
)
def test_bad_text_exits_with_code_2_and_one_sentence(
    kind: type[flags.Checked[object]], text: str, message: str
) -> None:
    with pytest.raises(Exit) as caught:
        kind(text)
    assert caught.value.code == 2
    assert caught.value.message.startswith(message)


def test_parse_seconds() -> None:
    assert flags.parse_seconds("timeout", "2.5") == 2.5
