import re
import threading

from paycore.sandbox.state import IdGenerator, SandboxState


def test_ids_carry_the_prefix_and_repeat_with_a_seed():
    first, second = IdGenerator(seed=5), IdGenerator(seed=5)

    ids = [first.new("pay") for _ in range(3)]

    assert ids == [second.new("pay") for _ in range(3)]
    assert all(re.fullmatch(r"pay_[0-9a-f]{24}", id_) for id_ in ids)
    assert len(set(ids)) == 3


def test_ids_made_from_many_threads_are_unique():
    ids = IdGenerator()
    made: list[str] = []

    def make() -> None:
        made.extend(ids.new("evt") for _ in range(500))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(made)) == 2000


def test_the_state_clock_gives_whole_seconds():
    assert SandboxState(clock=lambda: 1_700_000_000.9).now() == 1_700_000_000


def test_numeric_ids_have_the_digits_asked_for_and_repeat_with_a_seed():
    first, second = IdGenerator(seed=5), IdGenerator(seed=5)

    ids = [first.numeric("pi") for _ in range(50)]

    assert ids == [second.numeric("pi") for _ in range(50)]
    assert all(re.fullmatch(r"pi_[1-9][0-9]{18}", id_) for id_ in ids)
    assert re.fullmatch(r"n_[1-9][0-9]{3}", first.numeric("n", digits=4))
