"""The secretariat changes wording and order without touching code."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.runtime import open_runtime
from gateway.settings import Settings
from intake.form import DEFAULT_FORM_PATH
from intake.messages import InboundMessage


def _say(runtime, text: str, number: list[int]):
    number[0] += 1
    return runtime.intake.handle(InboundMessage("terminal", "officer-test", f"m{number[0]}", text))


def test_catalog_folder_rewords_a_question_and_form_file_reorders(tmp_path: Path) -> None:
    catalogs = tmp_path / "wording" / "en" / "LC_MESSAGES"
    catalogs.mkdir(parents=True)
    (catalogs / "intake.po").write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "field.applicant.category.prompt"\n'
        'msgstr "Tell us who is applying."\n', encoding="utf-8")
    form = yaml.safe_load(DEFAULT_FORM_PATH.read_text(encoding="utf-8"))
    steps = form["steps"]
    category = next(s for s in steps if s["key"] == "applicant.category")
    on_behalf = next(s for s in steps if s["key"] == "applicant.on_behalf")
    steps.remove(category)
    steps.insert(steps.index(on_behalf), category)
    form_path = tmp_path / "form.yaml"
    form_path.write_text(yaml.safe_dump(form, allow_unicode=True), encoding="utf-8")

    runtime = open_runtime(Settings(data_dir=tmp_path, catalog_dir=tmp_path / "wording",
                                    form_path=form_path))
    counter = [0]
    _say(runtime, "hello", counter)
    replies = _say(runtime, "1", counter)
    runtime.close()
    assert replies[-1].message.awaiting == "applicant.category"
    assert replies[-1].message.text.startswith("Tell us who is applying.")
