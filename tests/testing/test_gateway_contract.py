"""The gateway contract suite itself: it passes what is right and fails what is broken.

The contract subclasses of `tests.testing.contract_variants` run once, in a pytest of
their own in a subprocess (their servers, databases and HTTP clients never meet this
run's); each test below reads how some of their contract tests ended.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from tests.testing import contract_variants

Outcomes = dict[str, tuple[str, str]]  # "Class::test" -> (outcome, what it said)

TAMPERED = "test_a_tampered_delivery_is_refused_and_changes_nothing"
WRONG_SECRET = "test_a_gateway_with_another_secret_refuses_the_deliveries"
SAVED = "test_a_saved_method_pays_off_session_until_it_is_deleted"
HOSTED = "test_a_hosted_checkout_paid_by_the_customer_is_approved"
HOSTED_LEDGER = "test_a_checkout_paid_on_its_page_settles_the_payment_in_the_ledger"

LESS = [
    "test_without_multiple_capture_a_second_capture_is_refused",
    "test_without_multiple_refund_a_second_refund_is_refused",
    "test_a_partial_capture_is_refused_when_not_declared",
    "test_every_operation_left_undeclared_raises_unsupported_operation",
    "test_the_services_refuse_an_undeclared_mutation_before_sending",
]
LESS_SKIPPED = {
    "test_a_partial_capture_takes_part_of_the_authorization": "does not declare partial_capture",
    "test_void_releases_the_authorization": "does not declare void",
}
BROKEN = {
    "TestMisreadDeclines::test_a_declined_method_is_a_declined_transaction_with_its_reason": (
        "declined for other, not card_declined"
    ),
    "TestMisreadDeclines::test_insufficient_funds_is_declined_as_such": (
        "declined for other, not insufficient_funds"
    ),
    f"TestTrustingWebhooks::{TAMPERED}": "DID NOT RAISE",
    f"TestTrustingWebhooks::{WRONG_SECRET}": "DID NOT RAISE",
    # Verifying the body written again misses what parsing drops: trailing whitespace.
    f"TestReserialisingWebhooks::{TAMPERED}": "DID NOT RAISE",
    f"TestForgetfulVault::{SAVED}": "authorize succeeded",
    "TestKeyRepeater::test_the_provider_deduplicates_a_mutation_sent_twice": (
        "made a second payment"
    ),
    "TestChattyStatus::test_no_card_number_or_secret_reaches_a_transcript_log_row_or_error": (
        "config secret #1 in the gateway's result"
    ),
    "TestOptimisticStatus::test_a_challenge_the_customer_fails_ends_declined": (
        "authorize succeeded"
    ),
}
RIGHT = [
    *(f"TestLessDummy::{test}" for test in LESS),
    f"TestVaultDummy::{SAVED}",
    f"TestHostedDummy::{HOSTED}",
    f"TestHostedDummy::{HOSTED_LEDGER}",
    f"TestReserialisingWebhooks::{WRONG_SECRET}",
]
LEFT_OUT = [f"TestVaultDummyWithoutAMethod::{SAVED}", f"TestHostedDummyNobodyPays::{HOSTED}"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    """Every variant test above, run once: its outcome and what it said, by node id."""
    root = tmp_path_factory.mktemp("contract-variants")
    shutil.copyfile(contract_variants.__file__, root / "contract_variants.py")
    (root / "test_variants.py").write_text("from contract_variants import *  # noqa: F403\n")
    (root / "pytest.ini").write_text("[pytest]\n")
    tests = [*RIGHT, *(f"TestLessDummy::{test}" for test in LESS_SKIPPED), *LEFT_OUT, *BROKEN]
    report = root / "report.xml"
    run = subprocess.run(  # noqa: S603 - this interpreter
        [
            sys.executable,
            "-m",
            "pytest",
            *(f"test_variants.py::{test}" for test in tests),
            f"--junitxml={report}",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert report.exists(), run.stdout + run.stderr
    found: Outcomes = {}
    # The report was written by the pytest run just above: trusted input.
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        ended = [child for child in case if child.tag in ("failure", "error", "skipped")]
        text = "" if not ended else f"{ended[0].get('message', '')}\n{ended[0].text or ''}"
        found[name] = (ended[0].tag if ended else "passed", text)
    assert set(found) == set(tests), run.stdout
    return found


def failed(outcomes: Outcomes, test: str, *words: str) -> None:
    """``test`` failed, and its failure says each of ``words``."""
    outcome, text = outcomes[test]
    assert outcome == "failure", f"{test}: {outcome}"
    for word in words:
        assert word in text, f"{test} failed without saying {word!r}:\n{text}"


def test_importing_the_kit_loads_no_gateway_sandbox_or_server_until_asked():
    probe = (
        "import json, sys, paycore.testing as kit\n"
        "heavy = ('uvicorn', 'starlette', 'paycore.sandbox', 'paycore.gateways')\n"
        "before = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "kit.GatewayContract, kit.ProviderTotals\n"
        "print(json.dumps([before, 'paycore.testing.contract' in sys.modules]))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == [[], True]


def test_a_gateway_declaring_less_passes_and_its_refusals_are_checked(outcomes: Outcomes):
    for test in LESS:
        assert outcomes[f"TestLessDummy::{test}"] == ("passed", ""), outcomes[
            f"TestLessDummy::{test}"
        ]
    for test, reason in LESS_SKIPPED.items():
        outcome, text = outcomes[f"TestLessDummy::{test}"]
        assert (outcome, reason in text) == ("skipped", True), text


def test_a_working_vault_and_hosted_checkout_pass(outcomes: Outcomes):
    assert outcomes[f"TestVaultDummy::{SAVED}"] == ("passed", "")
    assert outcomes[f"TestHostedDummy::{HOSTED}"] == ("passed", "")
    assert outcomes[f"TestHostedDummy::{HOSTED_LEDGER}"] == ("passed", "")


def test_what_a_plugin_author_left_out_fails_saying_what_to_add(outcomes: Outcomes):
    failed(
        outcomes, f"TestVaultDummyWithoutAMethod::{SAVED}", "declares save_method", "vault_method"
    )
    failed(
        outcomes,
        f"TestHostedDummyNobodyPays::{HOSTED}",
        "NotImplementedError",
        "must implement pay_checkout",
    )


def test_each_broken_gateway_fails_the_tests_for_what_it_breaks(outcomes: Outcomes):
    for test, words in BROKEN.items():
        failed(outcomes, test, words)


def test_a_gateway_verifying_rewritten_bodies_still_refuses_another_secret(outcomes: Outcomes):
    assert outcomes[f"TestReserialisingWebhooks::{WRONG_SECRET}"] == ("passed", "")
