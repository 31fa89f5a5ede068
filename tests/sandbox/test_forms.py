"""Form-encoded bodies in bracket notation, as Stripe-shaped APIs take them."""

from __future__ import annotations

import pytest

from paycore.sandbox.forms import MAX_DEPTH, MAX_FIELDS, FormError, parse_form


def test_brackets_nest_objects_and_numbered_or_empty_brackets_make_lists():
    body = (
        b"amount=1000&metadata[order]=42&metadata[note]="
        b"&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd"
        b"&line_items[1][price]=price_1&payment_method_types[]=card&payment_method_types[]=alipay"
    )

    assert parse_form(body) == {
        "amount": "1000",
        "metadata": {"order": "42", "note": ""},
        "line_items": [
            {"quantity": "1", "price_data": {"currency": "usd"}},
            {"price": "price_1"},
        ],
        "payment_method_types": ["card", "alipay"],
    }


def test_values_are_percent_decoded_and_stay_strings():
    assert parse_form("email=a%40shop.test&confirm=true&name=Ann+Lee") == {
        "email": "a@shop.test",
        "confirm": "true",
        "name": "Ann Lee",
    }


def test_an_empty_body_is_no_fields():
    assert parse_form(b"") == {}


def test_keys_that_are_not_list_indices_keep_an_object():
    assert parse_form("m[01]=a&m[x]=b") == {"m": {"01": "a", "x": "b"}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("a=1&a[b]=2", "both a value and an object"),
        ("a[b]=2&a=1", "both a value and an object"),
        ("a[0]=x&a[2]=y", "count from 0"),
        ("[a]=1", "needs a name"),
        ("a[b=1", "unbalanced"),
        ("a[b]c=1", "after a closing bracket"),
        ("a[][b]=1", "only be the last bracket"),
        ("a" + "[x]" * (MAX_DEPTH + 1) + "=1", "deeper than"),
        ("&".join(f"f{n}=1" for n in range(MAX_FIELDS + 1)), "more than"),
        (b"a=\xff", "not UTF-8"),
    ],
)
def test_a_malformed_form_is_a_form_error_naming_the_problem(body, problem):
    with pytest.raises(FormError, match=problem):
        parse_form(body)


def test_a_form_error_never_quotes_a_value():
    with pytest.raises(FormError) as raised:
        parse_form("card[number]=4242424242424242&card[number][x]=1")

    assert "4242" not in str(raised.value)
