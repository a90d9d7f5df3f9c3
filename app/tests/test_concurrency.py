"""Several workers writing at once: on SQLite the classic failure is "database is locked", raised at once (without
waiting for the busy timeout) when a transaction that has read tries to write after another writer committed."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from microposts.models import Micropost


@pytest.mark.django_db(transaction=True)
def test_two_transactions_that_read_then_write_at_the_same_time_both_commit(alice):
    read_done = threading.Event()
    errors: list[BaseException] = []

    def other_worker() -> None:
        try:
            with transaction.atomic():
                Micropost.objects.count()
                read_done.set()
                Micropost.objects.create(user=alice, text="from the other worker")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        Micropost.objects.count()
        worker = threading.Thread(target=other_worker)
        worker.start()
        # Give the other transaction the chance to read before this one writes: that interleaving is the one that
        # fails with deferred transactions. With immediate ones, the other transaction waits at its start for this
        # one to commit, so the event never comes and the wait ends at its timeout.
        read_done.wait(timeout=1)
        Micropost.objects.create(user=alice, text="from this worker")
    worker.join(timeout=30)
    assert not worker.is_alive(), "the other worker is stuck"
    assert errors == []
    assert sorted(Micropost.objects.values_list("text", flat=True)) == ["from the other worker", "from this worker"]
