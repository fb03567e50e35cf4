"""help() is clean: every public name of the package has a docstring, no
public signature shows a private parameter, and an error message from a
bad argument names no internal function.  Docstrings cite only what ships
(no design notes of the repository)."""
import inspect
import re

from _env import XTestCase

import xichan
import xichan.multiprocessing
from xichan import channels, queues

MODULES = (xichan, queues, channels, xichan.multiprocessing)


def public_members():
    """(qualified name, object) for every public name and public member."""
    for mod in MODULES:
        for name in mod.__all__:
            obj = getattr(mod, name)
            yield f'{mod.__name__}.{name}', obj
            if inspect.isclass(obj) and obj.__module__.startswith('xichan'):
                for mname, member in vars(obj).items():
                    if mname.startswith('_') and mname != '__init__':
                        continue
                    if isinstance(member, (classmethod, staticmethod)):
                        member = member.__func__
                    if callable(member) or isinstance(member, property):
                        yield f'{mod.__name__}.{name}.{mname}', member


class TestHelp(XTestCase):

    def test_every_public_name_has_a_docstring(self):
        missing = [qn for qn, obj in public_members()
                   if not isinstance(obj, (int, str, tuple, type(queues.UNBOUND)))
                   and obj is not queues.UNBOUND_ERROR and obj is not queues.UNBOUND_REMOVE
                   and not (inspect.getdoc(obj) or '').strip()]
        self.assertEqual(missing, [])

    def test_no_private_parameters(self):
        private = []
        for qn, obj in public_members():
            if (not callable(obj) or isinstance(obj, property)
                    or inspect.isclass(obj) and issubclass(obj, BaseException)):
                continue
            try:
                sig = inspect.signature(obj)
            except (TypeError, ValueError):
                private.append(qn + ': no signature')
                continue
            private += [f'{qn}({p})' for p in sig.parameters if p.startswith('_')]
        self.maxDiff = None
        self.assertEqual(private, [])

    def test_shared_buffer_signature(self):
        self.assertEqual(str(inspect.signature(xichan.SharedBuffer)), '(size)')

    def test_docstrings_cite_only_what_ships(self):
        bad = [qn for qn, obj in list(public_members()) + [(m.__name__, m) for m in MODULES]
               if re.search(r'SEMANTICS|DESIGN\.md|LESSONS|STYLE\.md', inspect.getdoc(obj) or '')]
        self.assertEqual(bad, [])

    def test_bad_arguments_name_no_internal_function(self):
        calls = [lambda: queues.create(name=123), lambda: queues.open(123),
                 lambda: queues.create(maxsize='x'), lambda: channels.create(name=5),
                 lambda: channels.open(5), lambda: xichan.SharedBuffer('x'),
                 lambda: queues.Queue('x'), lambda: queues.destroy('x'),
                 lambda: queues.create().get_many('x'), lambda: queues.create().put(1, 'x'),
                 lambda: queues.create(unbounditems='x'), lambda: channels.destroy('x'),
                 lambda: xichan.multiprocessing.Queue('x'),
                 lambda: xichan.multiprocessing.Queue().get(True, 'x')]
        for call in calls:
            with self.assertRaises((TypeError, ValueError, NotImplementedError)) as cm:
                call()
            msg = str(cm.exception)
            self.assertNotRegex(msg, r'\b(queue|chan|buf)_[a-z_]+\(\)|built-in operation|argument \d',
                                msg)


class TestSubmodulesAsAttributes(XTestCase):

    def test_import_xichan_then_xichan_queues(self):
        # xichanctl(1)'s example: `import xichan` and then xichan.queues.open().
        import subprocess
        import sys
        code = ('import xichan\n'
                'q = xichan.queues.create(name="api.attr")\n'
                'q.put("x")\n'
                'print(xichan.queues.open("api.attr").get(timeout=5), '
                'xichan.channels.__name__, xichan.multiprocessing.Queue.__name__)\n'
                'xichan.queues.destroy(q)\n')
        p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ['x', 'xichan.channels', 'Queue'])
