"""The plain HTML pages of sandboxes: messages, and forms with buttons and text inputs."""

from __future__ import annotations

from paycore.sandbox.pages import form_page, message_page


def test_a_form_page_posts_its_text_inputs_and_one_button_field():
    page = form_page(
        "Checkout",
        ["Total: 10.00 <USD>"],
        action="/pay/cs_1",
        field="action",
        buttons=[("pay", "Pay"), ("cancel", "Cancel")],
        inputs=[("card_number", "Card number")],
        status_code=402,
    )
    html = page.body.decode()

    assert page.status_code == 402
    assert '<form method="post" action="/pay/cs_1">' in html
    assert '<input type="text" name="card_number" autocomplete="off">' in html
    assert html.index('name="card_number"') < html.index('value="pay"') < html.index("cancel")
    assert "10.00 &lt;USD&gt;" in html


def test_a_form_page_without_inputs_is_as_before():
    html = form_page(
        "3-D Secure", [], action="/3ds/p", field="result", buttons=[("approve", "Approve")]
    ).body.decode()

    assert "<input" not in html and 'name="result" value="approve"' in html


def test_a_message_page_escapes_its_lines():
    page = message_page("Done", ["<b>paid</b>"], status_code=410)

    assert page.status_code == 410 and "&lt;b&gt;paid&lt;/b&gt;" in page.body.decode()
