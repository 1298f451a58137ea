"""The application form, loaded from data (intake/forms/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FORM_PATH = Path(__file__).parent / "forms" / "mediation_application.yaml"

STEP_TYPES = frozenset(
    {"choice", "multichoice", "boolean", "text", "longtext", "integer", "names", "contact",
     "attachment", "evidence"}
)
# The nine items the rules require (Ch.3 §2), numbered as in the completeness checklist.
REQUIRED_ITEMS = {
    1: "applicant.name",
    2: "applicant.address",
    3: "applicant.contact",
    4: "respondent.name",
    5: "respondent.address",
    6: "dispute.facts",
    7: "dispute.claims",
    8: "dispute.reasons",
    9: "evidence",
}


class FormError(ValueError):
    """The form definition is not valid; the message says which step and why."""


@dataclass(frozen=True)
class Condition:
    """When a step applies: a test on an earlier answer."""

    field: str
    equals: Any = None
    within: tuple[Any, ...] = ()
    greater_than: float | None = None

    def holds(self, answers: dict[str, Any]) -> bool:
        """Whether the answers so far make the step apply."""
        value = answers.get(self.field)
        if self.greater_than is not None:
            return isinstance(value, int | float) and value > self.greater_than
        if self.within:
            return value in self.within
        return bool(value == self.equals)


@dataclass(frozen=True)
class ChoiceDef:
    """One choice of a step, with the extra words that select it."""

    id: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One question of the form."""

    key: str
    section: str
    type: str
    required: bool = True
    when: Condition | None = None
    identity: bool = False
    refuse_anonymous: bool = False
    refuse_unknown: bool = False
    required_item: int | None = None
    choices: tuple[ChoiceDef, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)

    def applies(self, answers: dict[str, Any]) -> bool:
        """Whether this step is asked, given the answers so far."""
        return self.when is None or self.when.holds(answers)


@dataclass(frozen=True)
class Form:
    """The whole form: its steps in the order they are asked."""

    name: str
    version: int
    languages: tuple[str, ...]
    steps: tuple[Step, ...]

    def step(self, key: str) -> Step:
        """The step with this field key; KeyError if there is none."""
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def has(self, key: str) -> bool:
        """Whether the form has a step with this key."""
        return any(step.key == key for step in self.steps)

    def applicable(self, answers: dict[str, Any]) -> list[Step]:
        """The steps that apply given the answers, in order."""
        return [step for step in self.steps if step.applies(answers)]


def load_form(path: Path | str = DEFAULT_FORM_PATH) -> Form:
    """Read and check a form definition file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise FormError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise FormError(f"{path}: expected a mapping with a 'steps' list")
    steps = tuple(_step(raw) for raw in data["steps"])
    form = Form(
        name=str(data.get("form", "form")),
        version=int(data.get("version", 1)),
        languages=tuple(data.get("languages", ["en"])),
        steps=steps,
    )
    _check(form)
    return form


_LIMIT_KEYS = ("min_length", "max_length", "min", "max", "min_items", "max_items")


def _step(raw: dict[str, Any]) -> Step:
    if not isinstance(raw, dict) or "key" not in raw or "type" not in raw:
        raise FormError(f"step without key or type: {raw!r}")
    if raw["type"] not in STEP_TYPES:
        raise FormError(f"step {raw['key']}: unknown type {raw['type']!r}")
    return Step(
        key=raw["key"],
        section=raw.get("section", raw["key"]),
        type=raw["type"],
        required=bool(raw.get("required", True)),
        when=_condition(raw["key"], raw.get("when")),
        identity=bool(raw.get("identity", False)),
        refuse_anonymous=bool(raw.get("refuse_anonymous", False)),
        refuse_unknown=bool(raw.get("refuse_unknown", False)),
        required_item=raw.get("required_item"),
        choices=tuple(
            ChoiceDef(str(c["id"]), tuple(str(a) for a in c.get("aliases", [])))
            for c in raw.get("choices", [])
        ),
        limits={k: int(raw[k]) for k in _LIMIT_KEYS if k in raw},
    )


def _condition(key: str, raw: dict[str, Any] | None) -> Condition | None:
    if raw is None:
        return None
    if "field" not in raw or not ({"equals", "in", "greater_than"} & raw.keys()):
        raise FormError(f"step {key}: 'when' needs a field and equals, in or greater_than")
    return Condition(
        field=raw["field"],
        equals=raw.get("equals"),
        within=tuple(raw.get("in", ())),
        greater_than=raw.get("greater_than"),
    )


def _check(form: Form) -> None:
    keys = [step.key for step in form.steps]
    if len(set(keys)) != len(keys):
        raise FormError("two steps share a key")
    for number, key in REQUIRED_ITEMS.items():
        if key not in keys:
            raise FormError(f"required item {number} ({key}) is missing from the form")
    for step in form.steps:
        if step.when and step.when.field not in keys[: keys.index(step.key)]:
            raise FormError(f"step {step.key}: condition on {step.when.field}, not asked before")
        if step.type in ("choice", "multichoice") and not step.choices:
            raise FormError(f"step {step.key}: a {step.type} needs choices")
