from __future__ import annotations

import pytest

from devstack import registry
from devstack.errors import UsageError
from devstack.options import SeedOptions, from_config, parse_count, refuse_shrinking, resolve, shrinking


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "--employees must be 0 or more, got -1."),
        ("abc", "--employees must be a whole number, got 'abc'."),
        ("1.5", "--employees must be a whole number, got '1.5'."),
        ("10000", "--employees can be at most 9,999, got 10,000."),
        (True, "--employees must be a whole number, got 'True'."),
    ],
)
def test_parse_count_rejects_bad_values_in_one_sentence(value: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_count("employees", value, 9_999)
    assert str(caught.value) == message


def test_defaults_on_a_fresh_stack_come_from_the_registry() -> None:
    options = resolve({})
    assert options == SeedOptions(auth_employees=0, employees=50, tickets=20, seed=7)
    assert options.to_json() == {
        **registry.default_counts(),
        "seeds": dict.fromkeys(registry.NAMES, registry.DEFAULT_SEED),
    }


def test_options_refuse_an_unknown_flag() -> None:
    with pytest.raises(TypeError, match="unknown seed flag"):
        SeedOptions(employes=3)


def test_flag_beats_config_beats_last_seed() -> None:
    last = {"auth": {"employees": 3, "seed": 9}, "helpdesk": {"employees": 60, "tickets": 30, "seed": 9}}
    options = resolve({"tickets": 40}, from_config({"employees": 55, "tickets": 25}), last)
    assert options == SeedOptions(
        auth_employees=3, employees=55, tickets=40, seeds={"auth": 9, "helpdesk": 9}
    )


def test_config_values_are_validated_like_flags() -> None:
    with pytest.raises(UsageError, match="--tickets must be 0 or more"):
        from_config({"tickets": -5})
    with pytest.raises(UsageError, match=r"devstack.seed.tickts is unknown; use one of auth_employees"):
        from_config({"tickts": 5})
    assert from_config({"tickets": "12", "seed": None, "employees": ""}) == {"tickets": 12}


def test_service_view_uses_the_service_option_names() -> None:
    options = SeedOptions(auth_employees=4, employees=10, tickets=2, seed=3)
    assert options.for_service(registry.get("auth")) == {"employees": 4, "seed": 3}
    assert options.for_service(registry.get("workflow")) == {"seed": 3}
    assert options.seed_args(registry.get("helpdesk")) == [
        "--employees",
        "10",
        "--tickets",
        "2",
        "--seed",
        "3",
    ]


def test_options_round_trip_through_json() -> None:
    options = SeedOptions(auth_employees=4, employees=10, tickets=2, seeds={"helpdesk": 3})
    assert SeedOptions.from_json(options.to_json()) == options
    assert options["tickets"] == 2 and options.seeds["helpdesk"] == 3 and options.seeds["auth"] == 7


def test_each_service_keeps_its_own_last_seed_unless_one_is_given() -> None:
    last = {"auth": {"employees": 0, "seed": 7}, "helpdesk": {"employees": 50, "tickets": 20, "seed": 3}}
    options = resolve({}, {}, last)
    assert options.seed_of(registry.get("helpdesk")) == 3 and options.seed_of(registry.get("auth")) == 7
    assert options.seed_of(registry.get("workflow")) == registry.DEFAULT_SEED  # never seeded
    assert options.describe_seeds() == "auth 7, workflow 7, helpdesk 3"
    given = resolve({"seed": 4}, {}, last)
    assert set(given.seeds.values()) == {4} and given.describe_seeds() == "4"


def test_a_smaller_count_than_the_database_holds_is_refused() -> None:
    last = {"auth": {"employees": 2, "seed": 7}, "helpdesk": {"employees": 50, "tickets": 20, "seed": 7}}
    assert shrinking(resolve({"tickets": 25}, {}, last), last) == []
    with pytest.raises(UsageError) as caught:
        refuse_shrinking(resolve({"employees": 10}, {}, last), last)
    assert str(caught.value) == (
        "helpdesk holds 50 seeded rows for --employees; 10 would leave 40 behind: "
        "run 'inv reset.helpdesk' first, or pass 50 or more."
    )
    assert caught.value.code == 2
