"""The hook specifications are the contract with outside code: each one documented."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from paycore import hookspecs, plugins
from paycore.hookspecs import hookimpl

SPEC_MARKER = f"{hookspecs.PROJECT_NAME}_spec"


def specifications() -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, SPEC_MARKER)
    }


SPECS = specifications()


def test_the_hooks_are_the_designs_five_the_payment_check_and_the_checkout() -> None:
    assert set(SPECS) == {
        "paycore_checkout_finished",
        "paycore_gateway_exchange",
        "paycore_transaction_recorded",
        "paycore_payment_status_changed",
        "paycore_webhook_received",
        "paycore_select_gateway",
        "paycore_answer_payment_check",
    }


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_specification_is_prefixed_with_the_project_name(name: str) -> None:
    assert name.startswith("paycore_")


def test_every_paycore_function_of_the_module_is_marked_as_a_specification() -> None:
    functions = {name for name, value in vars(hookspecs).items() if inspect.isfunction(value)}
    assert {name for name in functions if name.startswith("paycore_")} == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_specification_has_a_docstring_of_substance(name: str) -> None:
    doc = inspect.getdoc(SPECS[name]) or ""
    summary, _, body = doc.partition("\n\n")

    assert summary.endswith("."), "the first line is a one-sentence summary"
    assert len(body.split()) >= 80, "the docstring says when, with what, and what for"
    assert ":return:" in body


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_specification_documents_each_of_its_arguments(name: str) -> None:
    spec = SPECS[name]
    doc = inspect.getdoc(spec) or ""
    parameters = list(inspect.signature(spec).parameters)

    assert parameters, "a hook without arguments tells its implementations nothing"
    for parameter in parameters:
        assert f":param {parameter}:" in doc, f"{parameter} is not documented"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_specification_has_an_empty_body(name: str) -> None:
    source = inspect.getsource(SPECS[name])
    body = source.split('"""')[-1].strip()
    assert body == ""


def test_the_module_docstring_explains_the_calling_conventions() -> None:
    doc = hookspecs.__doc__ or ""
    for topic in ("keywords only", "After commit", "When an implementation raises", "hookimpl"):
        assert topic in doc


def test_the_module_exports_its_specifications_and_markers() -> None:
    assert sorted(hookspecs.__all__) == hookspecs.__all__
    assert set(hookspecs.__all__) == {*SPECS, "PROJECT_NAME", "hookimpl", "hookspec"}


def test_hooks_refuse_positional_arguments() -> None:
    manager = plugins.new_hook_manager(load_entry_points=False)

    with pytest.raises(TypeError, match="positional argument"):
        manager.hook.paycore_webhook_received("dummy", ())


def test_an_implementation_may_accept_only_the_arguments_it_needs() -> None:
    seen: list[object] = []

    class Audit:
        @hookimpl
        def paycore_payment_status_changed(self, previous_status: object) -> None:
            seen.append(previous_status)

    manager = plugins.new_hook_manager(load_entry_points=False)
    manager.register(Audit())
    manager.hook.paycore_payment_status_changed(
        payment=object(), previous_status="authorized", transaction=None
    )

    assert seen == ["authorized"]


def test_gateway_selection_takes_the_first_answer_that_is_not_none() -> None:
    class Abstains:
        @hookimpl
        def paycore_select_gateway(self, candidates: list[str]) -> str | None:
            return None

    class PrefersTheLast:
        @hookimpl
        def paycore_select_gateway(self, candidates: list[str]) -> str | None:
            return candidates[-1]

    manager = plugins.new_hook_manager(load_entry_points=False)
    manager.register(PrefersTheLast())
    manager.register(Abstains())  # registered last, asked first

    chosen = manager.hook.paycore_select_gateway(request=object(), candidates=["a", "b"])

    assert chosen == "b"
