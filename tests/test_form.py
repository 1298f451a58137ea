"""The application form as data: it asks for everything the rules require, in a sane order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from intake.catalog import load_catalogs
from intake.engine import COMMANDS
from intake.form import REQUIRED_ITEMS, FormError, load_form
from intake.text import fold

FORM = load_form()


def test_the_form_is_offered_in_the_languages_of_the_mining_regions() -> None:
    assert set(FORM.languages) == {"en", "zh", "fr", "es", "pt", "sw", "id", "ru", "ar"}


@pytest.mark.parametrize(("number", "key"), sorted(REQUIRED_ITEMS.items()))
def test_every_item_of_the_checklist_is_a_required_question(number: int, key: str) -> None:
    step = FORM.step(key)
    assert step.required
    assert step.when is None, "a required item must be asked of every applicant"
    assert step.required_item == number


def test_every_condition_refers_to_an_earlier_question() -> None:
    keys = [step.key for step in FORM.steps]
    for position, step in enumerate(FORM.steps):
        if step.when:
            assert step.when.field in keys[:position], step.key


def test_no_word_selects_two_choices_of_one_question() -> None:
    catalogs = load_catalogs()
    for step in FORM.steps:
        seen: dict[str, str] = {}
        for choice in step.choices:
            labels = catalogs.all_texts(f"choice.{step.key}.{choice.id}")
            for word in {fold(w) for w in (choice.id, *choice.aliases, *labels)}:
                assert seen.setdefault(word, choice.id) == choice.id, (step.key, word)


def test_no_choice_is_taken_for_a_command() -> None:
    catalogs = load_catalogs()
    commands = {fold(w) for name in COMMANDS for text in catalogs.all_texts(f"command.{name}")
                for w in text.split(",")}
    for step in FORM.steps:
        for choice in step.choices:
            labels = catalogs.all_texts(f"choice.{step.key}.{choice.id}")
            words = {fold(w) for w in (choice.id, *choice.aliases, *labels)}
            assert not words & commands, (step.key, choice.id, words & commands)


# -- broken form files --------------------------------------------------------------------


def required_steps() -> list[dict[str, Any]]:
    """The smallest valid form: the nine required items as plain text questions."""
    return [{"key": key, "type": "text"} for key in REQUIRED_ITEMS.values()]


def write_form(tmp_path: Path, steps: list[dict[str, Any]]) -> Path:
    path = tmp_path / "form.yaml"
    path.write_text(yaml.safe_dump({"form": "test", "steps": steps}), encoding="utf-8")
    return path


def test_smallest_valid_form_loads(tmp_path: Path) -> None:
    assert len(load_form(write_form(tmp_path, required_steps())).steps) == 9


@pytest.mark.parametrize(
    ("case", "steps"),
    [
        ("missing required item", required_steps()[1:]),
        ("unknown type", [*required_steps(), {"key": "x", "type": "slider"}]),
        ("step without type", [*required_steps(), {"key": "x"}]),
        ("two steps share a key", [*required_steps(), {"key": "evidence", "type": "text"}]),
        ("choice without choices", [*required_steps(), {"key": "x", "type": "choice"}]),
        ("condition on a later step",
         [{"key": "x", "type": "text", "when": {"field": "evidence", "equals": "y"}},
          *required_steps()]),
        ("condition on an unknown step",
         [*required_steps(), {"key": "x", "type": "text", "when": {"field": "nope", "equals": 1}}]),
        ("condition without a test",
         [*required_steps(), {"key": "x", "type": "text", "when": {"field": "evidence"}}]),
    ],
)
def test_broken_form_is_refused_with_form_error(
        tmp_path: Path, case: str, steps: list[dict[str, Any]]) -> None:
    with pytest.raises(FormError):
        load_form(write_form(tmp_path, steps))


def test_form_file_without_steps_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "form.yaml"
    path.write_text("form: test\nquestions: []\n", encoding="utf-8")
    with pytest.raises(FormError):
        load_form(path)


def test_form_file_that_is_not_valid_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "form.yaml"
    path.write_text("steps: [\n  - key: applicant.name\n", encoding="utf-8")
    with pytest.raises(FormError):
        load_form(path)


def test_every_catalog_has_every_message_of_the_english_catalog() -> None:
    """A person choosing a language reads all of it in that language, never a mix."""
    from intake.catalog import DEFAULT_LOCALE_DIR, read_catalog

    english = read_catalog(DEFAULT_LOCALE_DIR / "en" / "LC_MESSAGES" / "intake.po")
    for language in FORM.languages:
        catalog = read_catalog(DEFAULT_LOCALE_DIR / language / "LC_MESSAGES" / "intake.po")
        assert sorted(set(english) - set(catalog)) == [], language
