"""Hostile and broken YAML configuration files: each is one ConfigError naming the file
(and the line) and the rule, never a traceback, never a silent last-key-wins, and a
bomb is refused before it costs memory."""

from __future__ import annotations

import pytest

from portfolio.engine.errors import ConfigError
from portfolio.services.config import YAML_MAX_BYTES, yaml_read


def _file(tmp_path, content: bytes | str, name="cfg.yaml"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _refused(path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        yaml_read(path)
    assert str(path) in caught.value.where
    return caught.value


def test_a_plain_file_reads(tmp_path):
    assert yaml_read(_file(tmp_path, "a: 1\nb: [x, {c: 2}]\n")) == {"a": 1, "b": ["x", {"c": 2}]}


def test_a_duplicate_key_is_refused_with_its_line(tmp_path):
    text = "portfolio:\n  name: demo\n  initial_capital: 100000\n  initial_capital: 5\n"
    err = _refused(_file(tmp_path, text))
    assert err.where.endswith("line 4") and err.rule == "duplicate key 'initial_capital'"


def test_a_duplicate_key_in_a_list_item_is_refused_too(tmp_path):
    err = _refused(_file(tmp_path, "strategies:\n  - name: a\n    name: b\n"))
    assert err.where.endswith("line 3") and "duplicate key 'name'" in err.rule


def test_non_utf8_text_names_the_line(tmp_path):
    err = _refused(_file(tmp_path, b"a: 1\nb: caf\xe9\n"))
    assert err.where.endswith("line 2") and err.rule == "is not UTF-8 text"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 13):  # 12 levels of 9 aliases: 9^12 strings once expanded
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    err = _refused(_file(tmp_path, "\n".join(lines) + "\n"))
    assert err.rule == "more than 100 aliases"


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path):
    err = _refused(_file(tmp_path, "[" * 20000 + "]" * 20000 + "\n"))
    assert err.rule == "nested deeper than 50"


def test_a_huge_file_is_refused_unread(tmp_path):
    path = _file(tmp_path, b"#" * (YAML_MAX_BYTES + 1))
    err = _refused(path)
    assert "at most" in err.rule


def test_a_missing_file_and_a_syntax_error_name_the_file(tmp_path):
    assert "cannot be read" in _refused(tmp_path / "nope.yaml").rule
    err = _refused(_file(tmp_path, "a: [1, 2\n"))
    assert "is not valid YAML" in err.rule


def test_python_objects_are_refused(tmp_path):
    err = _refused(_file(tmp_path, "a: !!python/object/apply:os.system ['true']\n"))
    assert "is not valid YAML" in err.rule
