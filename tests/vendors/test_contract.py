"""Given the registry's VendorModule protocol, webservice and yunxin fulfil it (mypy checks the types)."""

from __future__ import annotations

from dispatcher.vendors import registry, webservice, yunxin
from dispatcher.vendors.registry import VendorModule


def test_given_the_registry_when_asked_for_webservice_and_yunxin_then_these_modules() -> None:
    # The assignments make mypy check both modules against the protocol.
    modules: list[VendorModule] = [webservice, yunxin]
    assert [registry.get(m.NAME) for m in modules] == modules
    assert registry.get(" Yunxin ") is yunxin
