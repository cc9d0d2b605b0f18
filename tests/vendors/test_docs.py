"""docs/vendors.md is what ``dispatcher vendors --markdown`` prints from the vendor modules today."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.vendors import VENDORS, registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "vendors.md"


def test_given_the_committed_vendors_doc_then_it_is_what_the_code_generates() -> None:
    result = CliRunner().invoke(app, ["vendors", "--markdown"])
    assert result.exit_code == 0, result.output
    assert DOC.read_text(encoding="utf-8") == result.output, (
        "docs/vendors.md is stale: run `dispatcher vendors --markdown > docs/vendors.md`"
    )


def test_given_the_generated_doc_then_every_vendor_limit_method_and_code_is_in_it() -> None:
    text = CliRunner().invoke(app, ["vendors", "--markdown"]).output
    for name in VENDORS:
        module = registry.get(name)
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert module.DOCUMENT in section
        assert f"up to {module.LIMITS.same_text_numbers:,} numbers" in section
        assert all(f"| `{method}` |" in section for method, _, _ in module.METHODS)
        assert all(f"\n| {code} | `{info.error_class}`" in section for code, info in module.CODES.items())
