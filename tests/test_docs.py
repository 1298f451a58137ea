"""The documentation keeps up with the code."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import Settings

ROOT = Path(__file__).parent.parent


def test_every_setting_is_in_the_settings_reference() -> None:
    reference = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [f"GATEWAY_{name.upper()}" for name in Settings.model_fields
               if f"`GATEWAY_{name.upper()}`" not in reference]
    assert missing == []


def test_readme_opens_with_the_run_and_test_commands() -> None:
    opening = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## ")[0]
    assert ".venv/bin/gateway serve" in opening
    assert "bash tests/run.sh" in opening
    assert "bash tests/run.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
