"""The generator takes one llama.cpp thread per core that other processes leave free."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time

import pytest

from app.idle_cores import allowed_cpus, free_cores

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _spin_on(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    while True:
        pass


def test_cores_that_other_processes_keep_busy_are_not_free():
    cpus = allowed_cpus()
    spinners = [multiprocessing.Process(target=_spin_on, args=(cpu,), daemon=True) for cpu in cpus]
    for spinner in spinners:
        spinner.start()
    try:
        time.sleep(0.3)
        assert free_cores(0.3) == 0
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()


def test_this_process_own_work_does_not_take_its_core():
    # The generator's own threads and retrieval are this process's CPU time, which is
    # subtracted: only other processes take cores away. A shared machine's other work may hold
    # the core too, so each try first checks that the core is free without this process's
    # work; counting that work would make every such try read the core taken.
    original = os.sched_getaffinity(0)
    cpu = min(original)
    os.sched_setaffinity(0, {cpu})
    try:
        baselines, counted = 0, []
        for _ in range(10):
            if free_cores(0.2, cpus=[cpu]) != 1:
                continue  # another process is on the core right now
            baselines += 1
            sampler = threading.Thread(target=lambda: counted.append(free_cores(0.3, cpus=[cpu])))
            busy_from = time.process_time()
            sampler.start()
            while sampler.is_alive():
                pass  # keeps this process's one core busy while the sampler sleeps
            assert time.process_time() - busy_from > 0.2
            if counted[-1] == 1:
                break
        if not baselines:
            pytest.skip("other processes kept the core busy in every try")
        assert 1 in counted, counted
    finally:
        os.sched_setaffinity(0, original)
