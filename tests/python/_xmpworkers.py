"""Targets of xichan.multiprocessing tests (test_mp.py) that child
processes import: spawned children must not import _env."""
import os
import signal


def square_into(q, n):
    q.put(n * n)
    return n


def take_and_die(jq, started, release):
    jq.get(timeout=30)
    started.put('took')
    release.get(timeout=60)  # alive until the report is read
    os.kill(os.getpid(), signal.SIGKILL)


def die_inside_put(jq):
    # Killed after the token and before the item.
    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    jq._queue.put = killed
    jq.put('never')


def die_inside_task_done(jq):
    # Killed after taking the last token and before waking the joiners.
    def killed():
        os.kill(os.getpid(), signal.SIGKILL)
    jq._wake_joiners = killed
    jq.get(timeout=30)
    jq.task_done()


def consume_and_answer(jq, out):
    for item in iter(jq.get, None):
        out.put(item * 10)
        jq.task_done()
    jq.task_done()


def join_then_report(jq, done, release):
    jq.join()
    done.put('joined')
    release.get(timeout=60)  # alive until the report is read
