#!/usr/bin/env python3
"""readme_table.py -- the README's "How it compares" figures from one run.

    readme_table.py [RESULTS.json] [--write README.md] [--note TEXT]

Reads the JSON of one full `make bench` run (default build/bench/results.json)
and prints the markdown that goes between README.md's `<!-- bench:begin -->`
and `<!-- bench:end -->` lines: the machine (CPU model, vCPUs, kernel,
Python, load average), the tables, a few lines on the other parts and the
targets the run did not meet.  Every figure comes from that one file.  With
--write it replaces that block of the given README in place (the chart it
shows, docs/bench-roundtrip.png, is copied by hand from the same run's
build/bench/bench-roundtrip.png).  --note adds a sentence about the run
(e.g. that other work shared the machine).

Exit status 1 if the file is missing, not a full run (--quick and --smoke
figures do not go into the README; --any-mode overrides), or the README has
no such block.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KiB, MiB = 1 << 10, 1 << 20
BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'


def data_of(doc, part):
    r = doc.get('parts', {}).get(part)
    return r.get('data') if r and r.get('data') else {}


def us(x):
    """A time in us for a table cell: 0.85 µs, 12.3 µs, 456 µs, 1.23 ms, 45.6 ms, 1.23 s."""
    if x is None:
        return '–'
    if x < 10:
        return f'{x:.2f} µs'
    if x < 100:
        return f'{x:.1f} µs'
    if x < 1000:
        return f'{x:.0f} µs'
    if x < 10000:
        return f'{x / 1000:.2f} ms'
    if x < 1e6:
        return f'{x / 1000:.1f} ms'
    return f'{x / 1e6:.2f} s'


def rate(x):
    if x is None:
        return '–'
    if x >= 1e6:
        return f'{x / 1e6:.2f} M/s'
    if x >= 1e4:
        return f'{x / 1e3:.0f} k/s'
    return f'{x:,.0f}/s'


def mbs(x):
    return '–' if x is None else f'{x / 1000:.1f} GB/s' if x >= 1000 else f'{x:.0f} MB/s'


def machine(doc):
    m = doc['meta']
    cpus = len(m.get('cpus', []))
    la = m.get('loadavg_before')
    lb = m.get('loadavg_after')
    load = (f'; load average {la[0]:.1f} when it started, {lb[0]:.1f} when it ended'
            if la and lb else '')
    extra = []
    np_v = data_of(doc, 'py_numpy').get('numpy')
    if np_v:
        extra.append(f'numpy {np_v}')
    iox = data_of(doc, 'py_pingpong').get('iceoryx2')
    if iox:
        extra.append(f'iceoryx2 {iox}')
    return (f'one full run of `make bench` ({m["started"][:10]}, xichan {m.get("git", "?")}, '
            f'{m["seconds"] / 60:.1f} minutes) on {m.get("cpu_model", "?")}, {cpus} vCPUs, '
            f'Linux {m.get("kernel", "?")}, Python {m.get("python_version", "?")}'
            + (f' ({", ".join(extra)})' if extra else '') + load)


PP_ROWS = [('xichan-queue', 'xichan queue (`syncobj=True`)'),
           ('xichan-pickle', 'xichan queue, pickled'),
           ('xichan-channel', 'xichan channel'),
           ('mp-queue', '`multiprocessing.Queue`'),
           ('mp-pipe', '`multiprocessing.Pipe`'),
           ('faster-fifo', 'faster-fifo'),
           ('iceoryx2-wait', 'iceoryx2, blocking on an event'),
           ('iceoryx2-poll', 'iceoryx2, busy-polling'),
           ('os-pipe', '`os.pipe` (raw bytes, no framing, no objects)')]


def small_table(doc, w):
    d = data_of(doc, 'py_pingpong')
    rows = {(r['transport'], r['pin']): r['p50_us'] for r in d.get('rows', [])}
    if not rows:
        return
    w('| Round trip p50, 64-byte `bytes` | pinned across CPUs | on one CPU | unpinned |')
    w('|---|---:|---:|---:|')
    for tr, label in PP_ROWS:
        if not any(k[0] == tr for k in rows):
            continue
        cells = []
        for pin in ('across', 'one', 'none'):
            x = rows.get((tr, pin))
            cells.append(us(x) if x is not None else
                         ('not run' if tr == 'iceoryx2-poll' and pin == 'one' else '–'))
        w(f'| {label} | ' + ' | '.join(cells) + ' |')
    w('')


def big_table(doc, w):
    d = data_of(doc, 'py_pingpong_big')
    rt = {(r['transport'], r['size']): r['p50_us'] for r in d.get('rows', [])}
    t = data_of(doc, 'py_throughput_big')
    ow = {(r['transport'], r['size']): r['mb_per_s'] for r in t.get('results', [])}
    if not rt:
        return
    sizes = sorted({k[1] for k in rt})
    w('| Big `bytes`, pinned across CPUs | ' + ' | '.join(
        f'round trip {s // KiB} KiB' if s < MiB else f'round trip {s // MiB} MiB'
        for s in sizes) + ' | one-way 16 MiB |')
    w('|---|' + '---:|' * (len(sizes) + 1))
    for tr, label in PP_ROWS:
        if not any(k[0] == tr for k in rt):
            continue
        w(f'| {label} | ' + ' | '.join(us(rt.get((tr, s))) for s in sizes)
          + f' | {mbs(ow.get((tr, 16 * MiB)))} |')
    w('')
    mm = {m['size']: m for m in t.get('memcpy', [])}
    if 16 * MiB in mm:
        w(f'One copy of 16 MiB (`memmove` into a warm buffer) ran at '
          f'{mbs(mm[16 * MiB]["memmove_mb_per_s"])} in the same run, `bytes()` of it (fresh '
          f'pages) at {mbs(mm[16 * MiB]["bytes_mb_per_s"])}.  The iceoryx2 receivers take '
          f'the sample without copying it; the others end with a `bytes` object.')
        w('')


NP_ROWS = [('xichan-pickle', 'xichan queue, pickled'),
           ('xichan-buffer', 'xichan queue, `put(memoryview(a))` (`syncobj=True`)'),
           ('xichan-shared', 'xichan `SharedBuffer` (nothing copied)'),
           ('mp-queue', '`multiprocessing.Queue`'),
           ('mp-shared-memory', '`multiprocessing.shared_memory` + a queue for the name')]


def numpy_table(doc, w):
    d = data_of(doc, 'py_numpy')
    rows = {(r['mode'], r['size']): r['p50_us'] for r in d.get('results', [])}
    if not rows:
        return
    sizes = sorted({k[1] for k in rows})
    w('| numpy array there and back, p50 | ' + ' | '.join(f'{s // MiB} MiB' for s in sizes)
      + ' |')
    w('|---|' + '---:|' * len(sizes))
    for m, label in NP_ROWS:
        if any(k[0] == m for k in rows):
            w(f'| {label} | ' + ' | '.join(us(rows.get((m, s))) for s in sizes) + ' |')
    w('')


def bullets(doc, w):
    t = data_of(doc, 'py_throughput')
    tp = {r['transport']: r['median_items_per_s'] for r in t.get('results', [])
          if r['pin'] == 'across'}
    if tp:
        names = [('xichan-queue', 'xichan queue'), ('xichan-pickle', 'pickled'),
                 ('xichan-put-many', '`put_many`/`get_many` in batches of 64'),
                 ('mp-queue', '`multiprocessing.Queue`'), ('faster-fifo', 'faster-fifo'),
                 ('iceoryx2-wait', 'iceoryx2 blocking'), ('iceoryx2-poll', 'busy-polling'),
                 ('os-pipe', '`os.pipe` raw')]
        w('- One-way throughput, 64-byte items across CPUs: ' + ', '.join(
            f'{label} {rate(tp[k])}' for k, label in names if k in tp) + '.')
    s = data_of(doc, 'py_subinterp')
    si = {r['mode']: r['p50_us'] for r in s.get('results', [])}
    if 'xichan-queue' in si:
        w(f'- Subinterpreters ({s.get("python", "3.13")}), main ↔ a subinterpreter: xichan '
          f'queue {us(si["xichan-queue"])}; CPython\'s own `interpreters.queues` '
          f'{us(si.get("cpython-queue-block"))} with a blocking `get`, '
          f'{us(si.get("cpython-queue-spin"))} spinning on `get_nowait`.')
    b = data_of(doc, 'py_sharedbuf')
    sb = sorted((r['size'], r['p50_us']) for r in b.get('results', [])
                if r['mode'] == 'shared-queue')
    mc = {m['size']: m['memmove_mb_per_s'] for m in b.get('memcpy', [])}
    cp = {r['size']: r.get('mb_per_s') for r in b.get('results', []) if r['mode'] == 'copy-chan'}
    if sb:
        big = max(cp) if cp else None
        w(f'- A `xichan.SharedBuffer` through a queue: {us(sb[0][1])} at '
          f'{sb[0][0] // KiB} KiB, {us(sb[-1][1])} at {sb[-1][0] // MiB} MiB (zero copy)'
          + (f'; a copying `send_buffer` of {big // MiB} MiB runs at '
             f'{cp[big] / mc[big] * 100:.0f} % of `memmove`' if big and big in mc else '') + '.')
    c = data_of(doc, 'c_pingpong')
    cr = {(r['size'], r['pin'], r['mode']): r['p50_us'] for r in c.get('rows', [])}
    if (64, 'across', 'xichan queue') in cr:
        g = lambda p, m: us(cr.get((64, p, m)))  # noqa: E731
        w(f'- C, 64-byte round trip pinned across CPUs: xichan queue '
          f'{g("across", "xichan queue")}; a pipe {g("across", "pipe")}, a bare futex '
          f'{g("across", "raw futex")}, a bare spin-then-futex ping-pong on a shared word '
          f'(no queue, no data) {g("across", "raw futex, spin first")}.  On one CPU: '
          f'{g("one", "xichan queue")}, beside the bare futex\'s {g("one", "raw futex")}.')
    g = data_of(doc, 'callgrind')
    cg = {(r['impl'], r['syncobj']): r['ir_per_pair'] for r in g.get('rows', [])}
    if ('xichan', True) in cg:
        w(f'- Per put+get (same thread, callgrind): {cg[("xichan", True)]:,.0f} instructions'
          + (f' against CPython\'s {cg[("cpython", True)]:,.0f}' if ('cpython', True) in cg
             else '') + ' with `syncobj=True`, '
          f'{cg.get(("xichan", False), 0):,.0f}'
          + (f' against {cg[("cpython", False)]:,.0f}' if ('cpython', False) in cg else '')
          + ' pickled.')
    i = data_of(doc, 'py_idle')
    idle = {r['process']: r['cpu_pct'] for r in i.get('results', [])}
    mem = data_of(doc, 'c_memory')
    if idle or mem:
        parts = []
        if 'xichan queue get' in idle:
            parts.append(f'a process blocked in `get` uses {idle["xichan queue get"]:.2f} % of '
                         f'a core, the daemon {idle.get("xichand (daemon)", 0):.2f} %')
        if mem:
            per_q = (mem['sizeof_obj'] + mem['sizeof_binding']
                     + mem['queue']['heap_delta'] / mem['count'])
            it = {x['payload']: x['overhead'] for x in mem['items']}
            parts.append(f'an empty queue costs {per_q:.0f} B of segment'
                         + (f' and a 64-byte item {it[64]:.0f} B beyond its payload'
                            if 64 in it else ''))
        text = '; '.join(parts)
        w('- ' + text[0].upper() + text[1:] + '.')


def targets(doc, w):
    T = doc.get('targets', [])
    met = [t for t in T if t['met']]
    no = [t for t in T if t['met'] is False]
    if not T:
        return
    w('')
    w(f'The run checks {len(T)} targets (ratios within the run; `make bench` prints them): '
      f'{len(met)} met, {len(no)} not met' + (':' if no else '.'))
    for t in no:
        w(f'- {t["target"]}: {t["figure"]} (wanted {t["required"]}).')


def render(doc, note):
    out = []
    w = out.append
    w(BEGIN)
    w(f'Figures from {machine(doc)}.' + (f'  {note}' if note else ''))
    w('Medians over repetitions (3 to 5 per figure); `make bench` prints every table with '
      'p99/p99.9/max and writes `build/bench/results.json` and the charts.')
    w('')
    w('![Python round trip by item size, xichan beside each peer](docs/bench-roundtrip.png)')
    w('')
    small_table(doc, w)
    big_table(doc, w)
    numpy_table(doc, w)
    bullets(doc, w)
    targets(doc, w)
    w(END)
    return '\n'.join(out) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('results', nargs='?', default=os.path.join(ROOT, 'build', 'bench',
                                                               'results.json'))
    ap.add_argument('--write', metavar='README', help='replace the block in this file')
    ap.add_argument('--note', help='a sentence about the run')
    ap.add_argument('--any-mode', action='store_true', help='accept a --quick/--smoke run')
    a = ap.parse_args()
    try:
        with open(a.results) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f'readme_table: cannot read {a.results}: {e}')
    if doc['meta'].get('mode') != 'full' and not a.any_mode:
        sys.exit(f'readme_table: {a.results} is a {doc["meta"].get("mode")} run; the README '
                 f'takes a full one (make bench)')
    text = render(doc, a.note)
    if not a.write:
        sys.stdout.write(text)
        return
    with open(a.write) as f:
        readme = f.read()
    i, j = readme.find(BEGIN), readme.find(END)
    if i < 0 or j < i:
        sys.exit(f'readme_table: {a.write} has no {BEGIN} ... {END} block')
    with open(a.write, 'w') as f:
        f.write(readme[:i] + text + readme[j + len(END) + 1:])
    print(f'readme_table: wrote the block of {a.write}')


if __name__ == '__main__':
    main()
