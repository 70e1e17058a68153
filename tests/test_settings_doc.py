"""The README's configuration table is the settings' own descriptions, and lists every setting."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from app.settings_doc import env_name, settings_table, with_current_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_table_with_a_description():
    table = settings_table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"`{env_name(name, field)}`" in table, name


def test_the_readme_table_is_the_current_one():
    readme = README.read_text(encoding="utf-8")
    assert with_current_table(readme) == readme, "run `python -m app.settings_doc README.md`"
