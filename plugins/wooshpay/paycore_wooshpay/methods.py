"""The payment method types WooshPay offers, and in which currencies.

WooshPay has no "list payment methods" call: the set is the documented
``payment_method_types`` enum of a PaymentIntent, read here without a request.

[PROPOSAL] The currency of each type: WooshPay's "Supported currencies" page could not
be read, so `CURRENCIES` holds what each scheme settles in as its operators publish it
(card and UnionPay: any). Correct it here when the page is known.
"""

from __future__ import annotations

from collections.abc import Mapping

from paycore.money import Money
from paycore.transactions.model import PaymentMethodOption
from paycore_wooshpay.answers import NAME

__all__ = ["CURRENCIES", "METHOD_TYPES", "options_for"]

# payment_method_types, in the documentation's order -> display name.
METHOD_TYPES: Mapping[str, str] = {
    "card": "Card",
    "alipay": "Alipay",
    "alipay_hk": "AlipayHK",
    "alipayplus": "Alipay+",
    "wechat_pay": "WeChat Pay",
    "sepa_debit": "SEPA Direct Debit",
    "boost": "Boost",
    "truemoney": "TrueMoney",
    "gcash": "GCash",
    "kakaopay": "Kakao Pay",
    "touchngo": "Touch 'n Go eWallet",
    "rabbit_line_pay": "Rabbit LINE Pay",
    "dana": "DANA",
    "klarna": "Klarna",
    "ideal": "iDEAL",
    "giropay": "giropay",
    "sofort": "Sofort",
    "eps": "EPS",
    "trustly": "Trustly",
    "bancontact": "Bancontact",
    "p24": "Przelewy24",
    "unionpay": "UnionPay",
    "fpx": "FPX",
    "mcash": "MCash",
    "grabpay": "GrabPay",
    "bank_transfer_id": "Bank transfer (Indonesia)",
    "qris": "QRIS",
    "promptpay": "PromptPay",
    "ovo": "OVO",
    "shopeepay": "ShopeePay",
    "upi": "UPI",
    "boleto": "Boleto",
    "paynow": "PayNow",
    "pix": "Pix",
    "9pay": "9Pay",
    "stitch": "Stitch",
    "bpi": "BPI",
}

_CROSS_BORDER_WALLET = frozenset({"CNY", "HKD", "USD", "EUR", "GBP", "SGD", "AUD", "JPY"})
_EUR = frozenset({"EUR"})

# [PROPOSAL] type -> the currencies it is offered in; None: any currency.
CURRENCIES: Mapping[str, frozenset[str] | None] = {
    "card": None,
    "alipay": _CROSS_BORDER_WALLET,
    "alipay_hk": frozenset({"HKD"}),
    "alipayplus": frozenset({"HKD", "MYR", "PHP", "THB", "IDR", "KRW", "SGD", "USD"}),
    "wechat_pay": _CROSS_BORDER_WALLET,
    "sepa_debit": _EUR,
    "boost": frozenset({"MYR"}),
    "truemoney": frozenset({"THB"}),
    "gcash": frozenset({"PHP"}),
    "kakaopay": frozenset({"KRW"}),
    "touchngo": frozenset({"MYR"}),
    "rabbit_line_pay": frozenset({"THB"}),
    "dana": frozenset({"IDR"}),
    "klarna": frozenset(
        {"EUR", "GBP", "USD", "SEK", "NOK", "DKK", "CHF", "PLN", "CZK", "AUD", "NZD", "CAD"}
    ),
    "ideal": _EUR,
    "giropay": _EUR,
    "sofort": _EUR,
    "eps": _EUR,
    "trustly": frozenset({"EUR", "SEK", "NOK", "DKK", "GBP", "PLN"}),
    "bancontact": _EUR,
    "p24": frozenset({"EUR", "PLN"}),
    "unionpay": None,
    "fpx": frozenset({"MYR"}),
    "mcash": frozenset({"MYR"}),
    "grabpay": frozenset({"MYR", "SGD"}),
    "bank_transfer_id": frozenset({"IDR"}),
    "qris": frozenset({"IDR"}),
    "promptpay": frozenset({"THB"}),
    "ovo": frozenset({"IDR"}),
    "shopeepay": frozenset({"IDR"}),
    "upi": frozenset({"INR"}),
    "boleto": frozenset({"BRL"}),
    "paynow": frozenset({"SGD"}),
    "pix": frozenset({"BRL"}),
    "9pay": frozenset({"VND"}),
    "stitch": frozenset({"ZAR"}),
    "bpi": frozenset({"PHP"}),
}

# What the frontend collects: a card is tokenised by WooshPay's own client-side
# library (a pm_… id); every other type redirects the customer to its page.
_REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = {"card": ("token",), "unionpay": ("token",)}


def options_for(amount: Money) -> tuple[PaymentMethodOption, ...]:
    """The types offered in ``amount``'s currency, in the documentation's order."""
    currency = amount.currency.code
    return tuple(
        PaymentMethodOption(
            gateway=NAME,
            type=kind,
            display_name=display_name,
            required_fields=_REQUIRED_FIELDS.get(kind, ()),
        )
        for kind, display_name in METHOD_TYPES.items()
        if (currencies := CURRENCIES[kind]) is None or currency in currencies
    )
