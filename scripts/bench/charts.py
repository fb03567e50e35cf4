#!/usr/bin/env python3
"""charts.py -- PNG charts of one benchmark run (scripts/bench/run calls it).

    charts.py RESULTS.json OUTDIR

Reads the JSON that scripts/bench/run writes and draws, with matplotlib
(Agg, no display), on log axes, xichan's lines solid and every peer's
dashed:

  OUTDIR/bench-roundtrip.png   Python round trip p50 by item size, pinned
                               across CPUs (64 B from py_pingpong, 64 KiB to
                               16 MiB from py_pingpong_big)
  OUTDIR/bench-throughput.png  one-way throughput in MB/s by item size,
                               pinned across CPUs (py_throughput and
                               py_throughput_big), memmove as a reference
  OUTDIR/bench-numpy.png       numpy arrays there and back by size (py_numpy)

A chart whose parts were not run is not drawn.  Prints the files written;
exit status 2 if matplotlib is missing (the caller reports it), 1 on a
bad input.
"""
import json
import os
import sys

KiB, MiB = 1 << 10, 1 << 20

LABELS = {
    'xichan-queue': 'xichan queue (syncobj)',
    'xichan-pickle': 'xichan queue (pickled)',
    'xichan-channel': 'xichan channel',
    'xichan-mp-queue': 'xichan.multiprocessing.Queue',
    'xichan-put-many': 'xichan put_many/get_many',
    'mp-queue': 'multiprocessing.Queue',
    'mp-simplequeue': 'multiprocessing.SimpleQueue',
    'mp-pipe': 'multiprocessing.Pipe',
    'faster-fifo': 'faster-fifo',
    'faster-fifo-many': 'faster-fifo put_many/get_many',
    'os-pipe': 'os.pipe (raw bytes)',
    'iceoryx2-wait': 'iceoryx2 (event wait)',
    'iceoryx2-poll': 'iceoryx2 (busy-polling)',
    'xichan-buffer': 'xichan syncobj memoryview',
    'xichan-shared': 'xichan SharedBuffer',
    'mp-shared-memory': 'multiprocessing.shared_memory + Queue',
}


def size_name(n):
    if n >= MiB and n % MiB == 0:
        return f'{n // MiB} MiB'
    if n >= KiB and n % KiB == 0:
        return f'{n // KiB} KiB'
    return f'{n} B'


def data_of(doc, part):
    r = doc.get('parts', {}).get(part)
    return r.get('data') if r else None


def title_of(doc, what):
    m = doc.get('meta', {})
    return (f'{what}\n{m.get("cpu_model", m.get("host", ""))}, {len(m.get("cpus", []))} CPUs, '
            f'Python {m.get("python_version", "?")}, {m.get("started", "")[:16]}, '
            f'xichan {m.get("git", "?")}')


# One colour per transport in every chart.
COLOURS = {
    'xichan-queue': '#1f77b4', 'xichan-pickle': '#ff7f0e', 'xichan-channel': '#2ca02c',
    'xichan-put-many': '#17becf', 'xichan-buffer': '#1f77b4', 'xichan-shared': '#2ca02c',
    'mp-queue': '#d62728', 'mp-simplequeue': '#9467bd', 'mp-pipe': '#8c564b',
    'faster-fifo': '#e377c2', 'faster-fifo-many': '#f7b6d2', 'os-pipe': '#7f7f7f',
    'iceoryx2-wait': '#bcbd22', 'iceoryx2-poll': '#6b6b00', 'mp-shared-memory': '#9467bd',
}


def style(name):
    """Solid, thick lines for xichan; dashed for the others."""
    c = {'color': COLOURS[name]} if name in COLOURS else {}
    if name.startswith('xichan'):
        return dict(linestyle='-', linewidth=2.2, marker='o', **c)
    if name.startswith('iceoryx2'):
        return dict(linestyle='--', linewidth=1.6, marker='s', **c)
    return dict(linestyle='--', linewidth=1.2, marker='^', **c)


def draw(plt, series, title, ylabel, path, extra=None):
    """series: {name: [(size, y), ...]}; one line each, log-log."""
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=110)
    sizes = sorted({x for pts in series.values() for x, _ in pts})
    for name, pts in series.items():
        pts = sorted(pts)
        ax.plot([x for x, _ in pts], [y for _, y in pts], label=LABELS.get(name, name),
                **style(name))
    if extra:
        extra(ax)
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xticks(sizes)
    ax.set_xticklabels([size_name(z) for z in sizes])
    ax.set_xlabel('item size')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def roundtrip(doc, plt, outdir):
    series = {}
    for part in ('py_pingpong', 'py_pingpong_big'):
        for r in (data_of(doc, part) or {}).get('rows', []):
            if r['pin'] == 'across' and r['transport'] != 'xichan-mp-queue':
                series.setdefault(r['transport'], []).append((r['size'], r['p50_us']))
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    return draw(plt, series, title_of(doc, 'Python round trip p50 of bytes, pinned across CPUs '
                                      '(lower is better)'),
                'round trip, µs', os.path.join(outdir, 'bench-roundtrip.png'))


def throughput(doc, plt, outdir):
    series, mm = {}, []
    for part in ('py_throughput', 'py_throughput_big'):
        d = data_of(doc, part) or {}
        for r in d.get('results', []):
            if r['pin'] != 'across' or r['transport'] in ('xichan-mp-queue', 'mp-simplequeue'):
                continue
            size = r.get('size', d.get('size', 64))
            series.setdefault(r['transport'], []).append(
                (size, r['median_items_per_s'] * size / 1e6))
        mm += [(m['size'], m['memmove_mb_per_s']) for m in d.get('memcpy', [])]
    if not series:
        return None

    def ref(ax):
        if mm:
            ax.plot([x for x, _ in sorted(mm)], [y for _, y in sorted(mm)], color='grey',
                    linestyle=':', linewidth=1.5, marker='x', label='memmove (one copy, warm)')
    return draw(plt, series, title_of(doc, 'Python one-way throughput of bytes, pinned across '
                                      'CPUs (higher is better)'),
                'MB/s', os.path.join(outdir, 'bench-throughput.png'), ref)


def numpy_chart(doc, plt, outdir):
    d = data_of(doc, 'py_numpy') or {}
    series = {}
    for r in d.get('results', []):
        series.setdefault(r['mode'], []).append((r['size'], r['p50_us'] / 1000))
    if not series:
        return None
    return draw(plt, series, title_of(doc, 'numpy float64 array there and back, p50 '
                                      '(lower is better)'),
                'round trip, ms', os.path.join(outdir, 'bench-numpy.png'))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split('\n\n')[1])
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print(f'charts: matplotlib is not installed for {sys.executable} '
              f'(scripts/install-deps installs it): no charts', file=sys.stderr)
        sys.exit(2)
    try:
        with open(sys.argv[1]) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f'charts: cannot read {sys.argv[1]}: {e}', file=sys.stderr)
        sys.exit(1)
    os.makedirs(sys.argv[2], exist_ok=True)
    for fn in (roundtrip, throughput, numpy_chart):
        path = fn(doc, plt, sys.argv[2])
        if path:
            print(path)


if __name__ == '__main__':
    main()
