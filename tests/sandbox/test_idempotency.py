"""IdempotencyStore: answers kept per key for a window, then forgotten."""

from paycore.sandbox.idempotency import IdempotencyStore, fingerprint


def test_a_fingerprint_ignores_key_order_but_not_values_paths_or_methods():
    base = fingerprint("POST", "/v1/payments", {"amount": 1, "currency": "USD"})

    assert fingerprint("post", "/v1/payments", {"currency": "USD", "amount": 1}) == base
    assert fingerprint("POST", "/v1/payments", {"amount": 2, "currency": "USD"}) != base
    assert fingerprint("POST", "/v1/refunds", {"amount": 1, "currency": "USD"}) != base
    assert fingerprint("PUT", "/v1/payments", {"amount": 1, "currency": "USD"}) != base


def test_a_stored_answer_is_found_within_the_window_and_forgotten_after(clock):
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


def test_saving_drops_the_answers_whose_window_has_passed(clock):
    # A long-running sandbox must not keep every key it ever saw.
    store = IdempotencyStore(window=60, clock=clock)
    for number in range(1000):
        store.save("acct", f"old-{number}", "digest", 201, {})
    clock.now += 30
    store.save("acct", "recent", "digest", 201, {})

    clock.now += 31
    store.save("acct", "new", "digest", 201, {})

    assert len(store) == 2
    assert store.lookup("acct", "old-0") is None
    assert store.lookup("acct", "recent") is not None


def test_saving_a_key_again_restarts_its_window(clock):
    store = IdempotencyStore(window=60, clock=clock)
    store.save("acct", "key-1", "digest", 201, {})
    clock.now += 10
    store.save("acct", "key-2", "digest", 201, {})
    clock.now += 40
    store.save("acct", "key-1", "digest", 201, {"again": True})

    clock.now += 25  # key-2 is 65 s old, key-1 25 s
    store.save("acct", "key-3", "digest", 201, {})

    assert len(store) == 2
    stored = store.lookup("acct", "key-1")
    assert stored is not None and stored.body == {"again": True}
