from __future__ import annotations

from datetime import timedelta

import pytest

from glm.config import Config, load_config, parse_duration
from glm.errors import InputError


def test_presets_load_and_overrides_apply() -> None:
    tiny = load_config("tiny")
    assert (tiny.data.k, tiny.model.width) == (3, 64)
    changed = tiny.with_overrides({"model.width": 96, "data.k": 2, "train.max_time": None})
    assert (changed.model.width, changed.data.k, changed.train.max_time) == (96, 2, None)
    assert tiny.model.width == 64  # overrides copy, never mutate
    for name in ("small", "base"):
        load_config(name)


def test_config_round_trips_through_yaml(tmp_path) -> None:
    config = load_config("tiny").with_overrides({"train.max_time": "15m", "data.stride": 1})
    config.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    "values,pattern",
    [
        ({"model": {"widht": 3}}, r"unknown key model.widht \(did you mean model.width\?\)"),
        ({"modle": {}}, r"unknown key modle \(did you mean model\?\)"),
        ({"model": {"width": "wide"}}, r"model.width: expected int, got 'wide'"),
        ({"model": {"width": 100, "n_heads": 3}}, r"must be a multiple of model.n_heads"),
        ({"data": {"split": "random"}}, r"data.split must be one of auto, tail, records, got 'random'"),
        ({"train": {"max_time": "soon"}}, r"train.max_time: expected e.g. 90s"),
    ],
)
def test_bad_config_values_name_the_key(values: dict, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        Config.from_dict(values, source="my.yaml")


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(InputError, match=r"no preset named 'huge' \(available: base, small, text, tiny\)"):
        load_config("huge")


def test_invalid_yaml_names_the_line(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  width: [1, 2\n")
    with pytest.raises(InputError, match=r"broken.yaml:\d+: not valid YAML"):
        load_config(path)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1.5h", timedelta(minutes=90)),
        ("10", timedelta(minutes=10)),
        ("00:02:00:00", timedelta(hours=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
