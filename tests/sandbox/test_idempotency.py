from paycore.sandbox.idempotency import IdempotencyStore, fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_fingerprint_ignores_key_order_but_not_values_paths_or_methods():
    base = fingerprint("POST", "/v1/payments", {"amount": 1, "currency": "USD"})

    assert fingerprint("post", "/v1/payments", {"currency": "USD", "amount": 1}) == base
    assert fingerprint("POST", "/v1/payments", {"amount": 2, "currency": "USD"}) != base
    assert fingerprint("POST", "/v1/refunds", {"amount": 1, "currency": "USD"}) != base
    assert fingerprint("PUT", "/v1/payments", {"amount": 1, "currency": "USD"}) != base


def test_a_stored_answer_is_found_within_the_window_and_forgotten_after():
    clock = Clock()
    store = IdempotencyStore(window=60, clock=clock)
    store.save("acct", "key-1", "digest", 201, {"id": "pay_1"})

    clock.now += 60
    stored = store.lookup("acct", "key-1")
    assert stored is not None
    assert (stored.status_code, stored.body, stored.fingerprint) == (201, {"id": "pay_1"}, "digest")

    clock.now += 1
    assert store.lookup("acct", "key-1") is None


def test_keys_of_one_account_are_not_seen_by_another():
    store = IdempotencyStore()
    store.save("acct_a", "key-1", "digest", 201, {})

    assert store.lookup("acct_b", "key-1") is None
