"""One bound on Argon2id for a whole server: lock files that every worker process shares."""

import multiprocessing
import os
import shutil
import signal
import threading
import time

import pytest

from signing import serving
from signing.ledger.throttle import HostSlots, TagThrottle

HOLD_SECONDS = 0.2
FORK = multiprocessing.get_context("fork")


def hold_and_report(directory, count, spans):
    """In a worker process: hold a slot for a while; report when it held it."""
    with HostSlots(directory, count).held():
        started = time.monotonic()
        time.sleep(HOLD_SECONDS)
        spans.put((started, time.monotonic()))


def most_at_once(spans):
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_processes_sharing_the_folder_never_hold_more_than_its_slots(tmp_path):
    spans = FORK.Queue()
    workers = [FORK.Process(target=hold_and_report, args=(str(tmp_path), 2, spans)) for _ in range(5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert all(worker.exitcode == 0 for worker in workers)
    held = [spans.get(timeout=5) for _ in workers]
    assert most_at_once(held) == 2  # never three, and both slots used


def test_threads_of_one_process_take_different_slots(tmp_path):
    """A worker holding most connections, or running a paper import, may use every core."""
    throttle = TagThrottle(slots=4, wait_seconds=5, host=HostSlots(str(tmp_path), 2))
    spans, lock = [], threading.Lock()

    def hash_once():
        with throttle.slot():
            started = time.monotonic()
            time.sleep(HOLD_SECONDS)
            with lock:
                spans.append((started, time.monotonic()))

    threads = [threading.Thread(target=hash_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(spans) == 4
    assert most_at_once(spans) == 2
    assert throttle.in_use == 0


def hold_forever(directory, holding):
    with HostSlots(directory, 1).held():
        holding.set()
        time.sleep(600)


def test_a_killed_holder_frees_its_slot_at_once(tmp_path):
    holding = FORK.Event()
    holder = FORK.Process(target=hold_forever, args=(str(tmp_path), holding))
    holder.start()
    assert holding.wait(10)
    slots = HostSlots(str(tmp_path), 1)
    taken = threading.Event()

    def take():
        with slots.held():
            taken.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    assert not taken.wait(0.3)  # busy while the holder lives
    os.kill(holder.pid, signal.SIGKILL)  # as gunicorn kills a stuck worker, or the OOM killer
    holder.join(10)
    assert taken.wait(5)
    waiter.join(5)


def import_forever(directory, count, running):
    """A paper import in another worker: every slot, row after row, as fast as it can."""
    slots = HostSlots(directory, count)

    def rows():
        while True:
            with slots.held(patient=True):
                running.set()
                time.sleep(0.05)

    for _ in range(count):
        threading.Thread(target=rows, daemon=True).start()
    time.sleep(600)


def test_an_import_in_another_worker_lets_a_waiting_signer_in_after_one_row(tmp_path):
    running = FORK.Event()
    importer = FORK.Process(target=import_forever, args=(str(tmp_path), 2, running))
    importer.start()
    try:
        assert running.wait(10)
        slots = HostSlots(str(tmp_path), 2)
        for _ in range(10):
            started = time.monotonic()
            with slots.held():
                waited = time.monotonic() - started
            assert waited < 0.5  # one row is 0.05 s; without the queue, the importer may take slot after slot
    finally:
        importer.kill()
        importer.join(10)


def test_a_folder_removed_under_a_running_server_is_made_again(tmp_path):
    directory = tmp_path / "slots"
    slots = HostSlots(str(directory), 2)
    assert sorted(os.listdir(directory)) == ["signers-waiting", "tag-slot-0", "tag-slot-1"]
    shutil.rmtree(directory)  # a tmpfs cleaner, or logind's RemoveIPC
    with slots.held():
        assert directory.is_dir()


def test_a_folder_that_cannot_hold_the_locks_fails_at_start_up(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(OSError):
        HostSlots(str(not_a_folder), 2)


def test_the_app_bounds_its_tags_by_the_folder_it_is_given(make_app, tmp_path):
    throttle = make_app(TAG_SLOTS_DIR=str(tmp_path)).extensions["countersign"].throttle
    assert isinstance(throttle.host, HostSlots)
    assert len(throttle.host.paths) == serving.cpu_count()
    assert make_app().extensions["countersign"].throttle.host is None  # tests, the CLI, `signing demo`
