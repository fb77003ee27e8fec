"""The override grammar -> Optuna distributions, for every form hydra-optuna-sweeper users write."""

import optuna.distributions as od
import pytest

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import search_space


def dist(text: str) -> od.BaseDistribution:
    return search_space.plan([], {"key": text}).space["key"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("choice(1,2)", od.CategoricalDistribution([1, 2])),
        ("choice(true, false)", od.CategoricalDistribution([True, False])),
        ("choice('hello', 'world')", od.CategoricalDistribution(["hello", "world"])),
        ("a,b", od.CategoricalDistribution(["a", "b"])),  # a comma list in params is a categorical
        ("range(1,4)", od.IntDistribution(1, 3)),  # the stop is exclusive, as in Hydra
        ("range(0,10,3)", od.IntDistribution(0, 9, step=3)),
        ("range(0.5, 5.5, step=1)", od.FloatDistribution(0.5, 4.5, step=1.0)),
        ("tag(log, range(1,10))", od.IntDistribution(1, 9, log=True)),
        ("interval(1, 5)", od.FloatDistribution(1.0, 5.0)),
        ("int(interval(1, 5))", od.IntDistribution(1, 5)),
        ("tag(int, interval(1, 5))", od.IntDistribution(1, 5)),
        ("tag(log, interval(1e-4, 1e-2))", od.FloatDistribution(1e-4, 1e-2, log=True)),
        ("tag(log, int(interval(1, 512)))", od.IntDistribution(1, 512, log=True)),
    ],
)
def test_distribution_of_each_form(text, expected):
    assert dist(text) == expected


@pytest.mark.parametrize("text", ["shuffle(range(1,4))", "shuffle(choice(1,2,3))"])
def test_shuffle_is_a_categorical(text):
    d = dist(text)
    assert isinstance(d, od.CategoricalDistribution) and sorted(d.choices) == [1, 2, 3]


@pytest.mark.parametrize(
    "text, words",
    [
        ("range(0,1,0)", "step 0"),
        ("range(3,3)", "empty"),
        ("range(5,1,-1)", "increasing"),
        ("interval(2, 1)", "low < high"),
        ("tag(log, range(1,10,2))", "log scale with a step"),
        ("tag(log, range(0.5,2.5,0.5))", "log scale with a step"),
        ("tag(log, interval(0, 1))", "low > 0"),
        ("choice()", "empty choice"),
    ],
)
def test_bad_forms_are_config_errors(text, words):
    with pytest.raises(ConfigError, match=words):
        dist(text)


def test_command_line_grid_only_in_budget_apps():
    grid = search_space.plan(["x=1,2", "y=choice(a,b)", "z=3"], {}, grid_as_studies=True)
    assert grid.grid == {"x": [1, 2]} and list(grid.space) == ["y"] and grid.fixed == ["z=3"]
    flat = search_space.plan(["x=1,2", "y=choice(a,b)", "z=3"], {}, grid_as_studies=False)
    assert flat.grid == {} and flat.space["x"] == od.CategoricalDistribution([1, 2])


def test_params_plain_value_is_fixed_and_command_line_wins():
    p = search_space.plan(["x=choice(1,2)", "~w"], {"x": "interval(0,1)", "y": "0", "v": "choice(3,4)"})
    assert p.space == {"x": od.CategoricalDistribution([1, 2]), "v": od.CategoricalDistribution([3, 4])}
    assert p.fixed == ["~w", "y=0"]


@pytest.mark.parametrize(
    "d, values",
    [
        (od.CategoricalDistribution(["a", "b"]), ["a", "b"]),
        (od.IntDistribution(1, 7, step=3), [1, 4, 7]),
        (od.FloatDistribution(-1.0, 0.0, step=0.5), [-1.0, -0.5, 0.0]),
    ],
)
def test_grid_choices(d, values):
    assert search_space.grid_choices("k", d) == values


def test_grid_refuses_continuous():
    with pytest.raises(ConfigError, match="discrete"):
        search_space.grid_choices("k", od.FloatDistribution(0, 1))


@pytest.mark.parametrize("value", [1, 0.5, 1e-05, True, None, "a b", "x/y", ["val/auc", "params"]])
def test_override_round_trips_through_the_parser(value):
    (o,) = search_space.parse([search_space.override("k", value)])
    assert o.value() == value
