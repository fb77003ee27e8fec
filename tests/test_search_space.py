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
        ("range(0,1,0.3)", od.FloatDistribution(0.0, 0.9, step=0.3)),  # decimal steps keep their last value
        ("range(0,1,0.1)", od.FloatDistribution(0.0, 0.9, step=0.1)),
        ("range(3,0,-1)", od.IntDistribution(1, 3)),  # descending: Hydra's values 3, 2, 1
        ("range(1.0,0.0,-0.25)", od.FloatDistribution(0.25, 1.0, step=0.25)),
        ("int(range(0,5,1.5))", od.IntDistribution(0, 4)),  # Hydra casts all three: range(0,5,1)
        ("float(range(0,3))", od.FloatDistribution(0.0, 2.0, step=1.0)),
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
        ("range(1,5,-1)", "empty"),
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


@pytest.mark.parametrize("text", ["range(0,1,0.3)", "range(0,1,0.1)", "range(3,0,-1)", "range(-5.5,5.5,0.5)"])
def test_every_value_of_hydras_range_can_be_drawn(text):
    """The distribution holds exactly what Hydra's own range iterates (the basic sweeper's values)."""
    (o,) = search_space.parse([f"k={text}"])
    hydra_values = sorted(float(x) for x in o.sweep_string_iterator())
    d = dist(text)
    assert sorted(search_space.grid_choices("k", d)) == [round(x, 12) for x in hydra_values]
    assert d.low == pytest.approx(hydra_values[0]) and d.high == pytest.approx(hydra_values[-1])


def test_exclusive_stop_is_warned_once_where_upstream_differs(caplog):
    """hydra-optuna-sweeper includes a range's stop when it lies on the step; we keep Hydra's exclusive stop
    and say so once per range. No warning where both agree (stop off the step, descending, shuffled)."""
    search_space._warned.clear()
    with caplog.at_level("WARNING", logger="patchtst_hpo.hpo.search_space"):
        for _ in range(3):
            dist("range(1,4)")
        for text in ("range(0,1,0.3)", "range(3,0,-1)", "shuffle(range(1,4))", "choice(1,2)"):
            dist(text)
    (rec,) = caplog.records
    assert "key=range(1,4): the stop 4 is excluded" in rec.getMessage()
    assert "end the range at 5" in rec.getMessage()


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
