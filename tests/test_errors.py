"""The error tree: typed, documented, and intact across process boundaries."""

from __future__ import annotations

import inspect
import pickle

import pytest

from paycore import errors
from paycore.errors import (
    ConfigurationError,
    GatewayError,
    NotFound,
    OutcomeUnknown,
    PaycoreError,
    UnsupportedOperation,
)


def every_error() -> list[PaycoreError]:
    made: list[PaycoreError] = []
    for name in errors.__all__:
        kind = getattr(errors, name)
        if issubclass(kind, GatewayError):
            made.append(kind("went wrong", gateway="shop", http_status=502, request_id="req_1"))
        elif kind is ConfigurationError:
            made.append(kind("gateways.shop", ["api_key: is required", "mode: must be one of"]))
        elif kind is UnsupportedOperation:
            made.append(kind("shop", "void"))
        elif kind is NotFound:
            made.append(kind("payment", "pay_123"))
        else:
            made.append(kind("went wrong"))
    return made


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_kind_message_and_details(error: PaycoreError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_a_gateway_error_keeps_its_transcript_across_pickling() -> None:
    error = OutcomeUnknown("no answer", gateway="shop", http_status=None)
    error.transcript = {"records": ["POST /pay -> timeout"]}
    copy = pickle.loads(pickle.dumps(error))
    assert copy.transcript == error.transcript
    assert (copy.gateway, copy.http_status, copy.request_id) == ("shop", None, None)


def test_the_tree_is_drawn_in_the_module_docstring() -> None:
    doc = inspect.getdoc(errors) or ""
    for name in errors.__all__:
        assert name in doc, f"{name} is missing from the drawing of the error tree"


def test_every_error_is_documented_and_rooted() -> None:
    for name in errors.__all__:
        kind = getattr(errors, name)
        assert issubclass(kind, PaycoreError)
        assert inspect.getdoc(kind), name
