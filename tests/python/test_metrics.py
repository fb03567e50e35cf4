"""`xichanctl metrics` read by a real Prometheus parser: prometheus_client's
text parser (scripts/install-deps installs it for every tested Python).

The scrape must parse as a whole -- families, types, help, labels -- and
carry the values the library reports: the queue's items and the counters
that Python puts and gets moved.  A queue name that needs escaping ('"',
'\\', a newline is refused by names anyway) comes back intact.
"""
import os
import subprocess

import _env
from _env import XTestCase

from prometheus_client.parser import text_string_to_metric_families

from xichan import channels, queues

XICHANCTL = os.path.join(_env.BUILD, 'bin', 'xichanctl')


def scrape():
    p = subprocess.run([XICHANCTL, 'metrics'], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f'xichanctl metrics exited {p.returncode}: {p.stderr}')
    return {f.name: f for f in text_string_to_metric_families(p.stdout)}


def sample(fams, family, sample_name, **labels):
    """The value of the one sample with those labels; fails if not exactly one."""
    found = [s.value for s in fams[family].samples
             if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
    if len(found) != 1:
        raise AssertionError(f'{len(found)} samples {sample_name}{labels} in {fams[family]}')
    return found[0]


class TestMetrics(XTestCase):

    def test_scrape_parses_and_counts_puts_and_gets(self):
        name = 'metrics "odd\\ name'
        q = queues.create(name=name)
        try:
            for i in range(5):
                q.put(i, syncobj=True)
            self.assertEqual(q.get(), 0)
            self.assertEqual(q.get(), 1)
            fams = scrape()
            ns = os.environ['XICHAN_NAME']
            self.assertEqual(sample(fams, 'xichan_up', 'xichan_up', namespace=ns), 1)
            self.assertEqual(fams['xichan_puts'].type, 'counter')
            self.assertEqual(fams['xichan_items'].type, 'gauge')
            qid = str(q.id)
            lab = dict(namespace=ns, kind='queue', id=qid, name=name)
            self.assertEqual(sample(fams, 'xichan_puts', 'xichan_puts_total', **lab), 5)
            self.assertEqual(sample(fams, 'xichan_gets', 'xichan_gets_total', **lab), 2)
            self.assertEqual(sample(fams, 'xichan_items', 'xichan_items', **lab), 3)
            self.assertGreater(sample(fams, 'xichan_put_bytes', 'xichan_put_bytes_total', **lab), 0)
            self.assertEqual(sample(fams, 'xichan_maxsize', 'xichan_maxsize', **lab), 0)
            self.assertGreaterEqual(sample(fams, 'xichan_objects', 'xichan_objects', namespace=ns), 1)
            self.assertGreater(sample(fams, 'xichan_daemon_start_time_seconds',
                                      'xichan_daemon_start_time_seconds', namespace=ns), 1.6e9)
        finally:
            queues.destroy(q)

    def test_channel_counts_sends_and_recvs(self):
        rch, sch = channels.create()
        sch.send_nowait('a')
        sch.send_nowait('b')
        self.assertEqual(rch.recv(), 'a')
        fams = scrape()
        lab = dict(kind='channel', id=str(int(rch.id)))
        self.assertEqual(sample(fams, 'xichan_puts', 'xichan_puts_total', **lab), 2)
        self.assertEqual(sample(fams, 'xichan_gets', 'xichan_gets_total', **lab), 1)
        self.assertEqual(sample(fams, 'xichan_items', 'xichan_items', **lab), 1)
        # maxsize is a queue's only
        self.assertFalse([s for s in fams['xichan_maxsize'].samples
                          if s.labels['kind'] == 'channel'])
        self.assertEqual(rch.recv(), 'b')
