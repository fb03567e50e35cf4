"""wordcount.py -- the Python demo: a multi-process word-count pool over xichan.

    python3 scripts/demo/wordcount.py [--jobs N] [--workers W] [--job-kib K] [--keep]

It generates a deterministic corpus (N jobs of about K KiB of text each),
counts its words once in this process (the reference), then runs the same
pool of W worker processes twice:

  1. over two named xichan queues, "wordcount.jobs" (bounded) and
     "wordcount.results", with a progress bar;
  2. over multiprocessing.Queue, with the very same worker function --
     a xichan Queue has the same put()/get() as a multiprocessing one.

Each worker counts the words of every job it takes, answers each job with
its word count, and at the end sends its whole tally.  The parent checks
that every job was answered exactly once with the right count, and that the
merged tallies equal the reference, then prints both pools' throughput side
by side.  Worker start-up is left out of the timings: a pool starts the
clock once every worker has said it is ready.

--keep leaves the two named queues in the namespace so that `xichanctl
list` shows them afterwards (scripts/run-demo does this, then stops the
daemon); without it they are destroyed at the end.  Queues of that name
left over from an earlier --keep run are destroyed first.

The namespace is the usual one ($XICHAN_NAME, $XICHAN_RUNTIME_DIR); a
daemon is started on demand unless XICHAN_AUTOSTART=0.  The workers are
started with the "spawn" method, so they share nothing with the parent but
what they are given: the queues travel by id.

Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage.
"""

import argparse
import collections
import multiprocessing
import os
import queue
import random
import shutil
import sys
import threading
import time

JOBS_QUEUE = 'wordcount.jobs'
RESULTS_QUEUE = 'wordcount.results'
JOBS_MAXSIZE = 256
GET_TIMEOUT = 30.0  # a worker that died shows as a timeout, never a hang


# ---------------------------------------------------------------- corpus

def make_corpus(njobs, job_kib, seed=2024):
    """Return a list of njobs texts of about job_kib KiB, the same every run.

    Words follow a Zipf-like law over a made-up vocabulary, so that counts
    look like real text.  Texts are assembled from a pool of ready-made
    lines: drawing every word one by one would make the corpus slower to
    generate than to count.
    """
    rng = random.Random(seed)
    letters = 'etaoinshrdlucmfwypvbgkjqxz'
    vocab = [''.join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(3000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    lines = [' '.join(rng.choices(vocab, weights, k=12)) for _ in range(2000)]
    per_job = max(1, job_kib * 1024 // (sum(map(len, lines)) // len(lines) + 1))
    return ['\n'.join(rng.choices(lines, k=per_job)) for _ in range(njobs)]


def reference_count(corpus):
    """Single-process word count: (words per job, total tally, seconds)."""
    t0 = time.perf_counter()
    total = collections.Counter()
    per_job = []
    for text in corpus:
        words = text.split()
        per_job.append(len(words))
        total.update(words)
    return per_job, total, time.perf_counter() - t0


# ---------------------------------------------------------------- workers

def worker(jobs, results, collected):
    """Count the words of each job until None; then send the whole tally.

    The same code serves both pools: it only calls put() and get().  It
    stays alive until the parent has collected everything, for the sake of
    multiprocessing.Queue, whose put() only hands the item to a feeder
    thread of this process; a xichan item is in the queue when put()
    returns and outlives the process (xichan(7)).
    """
    pid = os.getpid()
    tally = collections.Counter()
    results.put(('ready', pid, None))
    while (job := jobs.get(timeout=GET_TIMEOUT)) is not None:
        jid, text = job
        words = text.split()
        tally.update(words)
        results.put(('job', jid, len(words)))
    results.put(('done', pid, tuple(tally.items())))
    collected.wait(GET_TIMEOUT)


# ---------------------------------------------------------------- progress

class _LineWriter:
    """A stream for tqdm when the output is not a terminal (CI logs).

    tqdm redraws its bar in place with '\\r'; in a log file every redraw
    piles onto one endless line.  This turns each redraw into its own line
    and drops repeats, so a run leaves a handful of readable lines.
    """

    def __init__(self, stream):
        self.stream = stream
        self.last = None

    def write(self, s):
        line = s.replace('\r', '').rstrip()
        if line and line != self.last:
            self.stream.write(line + '\n')
            self.last = line

    def flush(self):
        self.stream.flush()


class _Bar:
    """A minimal stand-in for tqdm (used only when tqdm is not installed)."""

    def __init__(self, total, desc, tty):
        self.total, self.desc, self.tty = total, desc, tty
        self.n = 0
        self.step = max(1, total // (50 if tty else 4))
        self.t0 = time.perf_counter()

    def update(self, n=1):
        self.n += n
        if self.n % self.step == 0 or self.n == self.total:
            self._show()

    def _show(self):
        frac = self.n / self.total
        rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
        bar = '#' * int(frac * 30)
        text = f'{self.desc}: {frac:4.0%} |{bar:<30}| {self.n}/{self.total} [{rate:.0f} job/s]'
        sys.stdout.write(('\r' + text) if self.tty else (text + '\n'))
        sys.stdout.flush()

    def close(self):
        if self.tty:
            sys.stdout.write('\n')


def progress(total, desc, enabled=True):
    """A progress bar over total jobs: tqdm when available, else _Bar.

    On a terminal it redraws ten times a second; elsewhere every 5 s, one
    line each (see _LineWriter).
    """
    if not enabled:
        return _NoBar()
    tty = sys.stdout.isatty()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(total, desc, tty)
    if tty:
        # A pty with no size set (script(1), some CI runners) reports 0x0,
        # which tqdm takes literally (and then draws nothing); shutil falls
        # back to 80x24.
        size = shutil.get_terminal_size()
        return tqdm(total=total, desc=desc, unit='job', file=sys.stdout,
                    ncols=min(size.columns, 100), nrows=size.lines)
    return tqdm(total=total, desc=desc, unit='job', file=_LineWriter(sys.stdout),
                mininterval=5.0, ncols=80, ascii=True)


class _NoBar:
    """--no-progress."""

    def update(self, n=1):
        pass

    def close(self):
        pass


# ---------------------------------------------------------------- the pool

class Checks:
    """What the parent verifies about one pool's run."""

    def __init__(self, expected_words):
        self.expected = expected_words
        self.answered = bytearray(len(expected_words))
        self.errors = []
        self.tally = collections.Counter()

    def job(self, jid, nwords):
        if not 0 <= jid < len(self.expected):
            self.errors.append(f'answer for unknown job {jid}')
        elif self.answered[jid]:
            self.errors.append(f'job {jid} answered twice')
        else:
            self.answered[jid] = 1
            if nwords != self.expected[jid]:
                self.errors.append(f'job {jid}: {nwords} words, expected {self.expected[jid]}')

    def finish(self, reference):
        missing = self.answered.count(0)
        if missing:
            self.errors.append(f'{missing} jobs never answered')
        if self.tally != reference:
            self.errors.append('merged word counts differ from the single-process count')
        return self.errors


def feed(jobs, corpus, nworkers):
    """Put every job, then one None per worker (the stop marker)."""
    for jid, text in enumerate(corpus):
        jobs.put((jid, text))
    for _ in range(nworkers):
        jobs.put(None)


def run_pool(label, jobs, results, corpus, expected, reference, nworkers, ctx, show_bar):
    """Run the pool over the given queues; return (seconds, errors)."""
    collected = ctx.Event()
    procs = [ctx.Process(target=worker, args=(jobs, results, collected), daemon=True)
             for _ in range(nworkers)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            kind, _pid, _ = results.get(timeout=GET_TIMEOUT)
            if kind != 'ready':
                raise RuntimeError(f'a worker said {kind!r} before it was ready')
        checks = Checks(expected)
        bar = progress(len(corpus), label, show_bar)
        t0 = time.perf_counter()
        # A feeder thread puts while this one collects: the jobs queue is
        # bounded, so putting everything first would stall.
        feeder = threading.Thread(target=feed, args=(jobs, corpus, nworkers), daemon=True)
        feeder.start()
        done = 0
        while done < nworkers:
            kind, key, value = results.get(timeout=GET_TIMEOUT)
            if kind == 'job':
                checks.job(key, value)
                bar.update(1)
            else:
                checks.tally.update(dict(value))
                done += 1
        elapsed = time.perf_counter() - t0
        bar.close()
        feeder.join()
        errors = checks.finish(reference)
    finally:
        collected.set()
        for p in procs:
            p.join(timeout=GET_TIMEOUT)
            if p.is_alive():
                p.kill()
    if any(p.exitcode != 0 for p in procs):
        errors.append('a worker exited with status '
                      + ', '.join(str(p.exitcode) for p in procs))
    # Every worker has said 'done' and gone: anything still queued is an
    # answer too many.
    try:
        extra = results.get(timeout=0.2)
    except queue.Empty:
        pass
    else:
        errors.append(f'an answer more than expected: {extra[:2]!r}')
    return elapsed, errors


# ---------------------------------------------------------------- xichan queues

def xichan_queues():
    """Create the two named queues, destroying leftovers of a --keep run."""
    from xichan import queues

    for name in (JOBS_QUEUE, RESULTS_QUEUE):
        try:
            queues.destroy(queues.open(name))
        except queues.QueueNotFoundError:
            pass
    # syncobj=True: str, int and tuples travel as msgpack, not pickles.
    jobs = queues.create(JOBS_MAXSIZE, syncobj=True, name=JOBS_QUEUE)
    results = queues.create(syncobj=True, name=RESULTS_QUEUE)
    return jobs, results


def destroy_queues(*qs):
    from xichan import queues

    for q in qs:
        queues.destroy(q)


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--jobs', type=int, default=10000, help='number of jobs (default 10000)')
    ap.add_argument('--workers', type=int, default=max(2, len(os.sched_getaffinity(0))),
                    help='worker processes (default: the CPUs, at least 2)')
    ap.add_argument('--job-kib', type=int, default=4, help='KiB of text per job (default 4)')
    ap.add_argument('--keep', action='store_true',
                    help=f'leave {JOBS_QUEUE} and {RESULTS_QUEUE} for `xichanctl list`')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    if args.jobs < 1 or not 1 <= args.workers <= 64 or args.job_kib < 1:
        ap.error('need --jobs >= 1, --workers 1..64 and --job-kib >= 1')
    return args


def rate_row(label, njobs, nbytes, secs):
    return f'  {label:<24}{njobs / secs:>10,.0f}{nbytes / secs / 1e6:>10.1f}{secs:>10.2f}'


def main(argv=None):
    args = parse_args(argv)
    corpus = make_corpus(args.jobs, args.job_kib)
    nbytes = sum(len(t) for t in corpus)  # ASCII: characters are bytes
    expected, reference, ref_secs = reference_count(corpus)
    print(f'wordcount: {args.jobs} jobs, {nbytes / 1e6:.1f} MB of text, '
          f'{sum(expected):,} words ({len(reference)} distinct), {args.workers} worker processes')

    ctx = multiprocessing.get_context('spawn')
    show = not args.no_progress
    jobs, results = xichan_queues()
    x_secs, x_err = run_pool('xichan', jobs, results, corpus, expected, reference,
                             args.workers, ctx, show)
    if not args.keep:
        destroy_queues(jobs, results)
    m_secs, m_err = run_pool('multiprocessing', ctx.Queue(JOBS_MAXSIZE), ctx.Queue(),
                             corpus, expected, reference, args.workers, ctx, show)

    print(f'  {"":<24}{"jobs/s":>10}{"MB/s":>10}{"seconds":>10}')
    print(rate_row('xichan queues', args.jobs, nbytes, x_secs))
    print(rate_row('multiprocessing.Queue', args.jobs, nbytes, m_secs))
    print(rate_row('one process, no queue', args.jobs, nbytes, ref_secs))
    failed = False
    for label, errors in (('xichan', x_err), ('multiprocessing', m_err)):
        for e in errors[:10]:
            print(f'wordcount: {label}: {e}', file=sys.stderr)
        failed |= bool(errors)
    if failed:
        return 1
    print(f'  both pools: every job answered exactly once, counts equal the reference')
    if args.keep:
        print(f'  kept queues {JOBS_QUEUE!r} and {RESULTS_QUEUE!r} (xichanctl list shows them)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
