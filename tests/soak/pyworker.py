"""tests/soak/pyworker.py -- a Python producer or consumer of the crash soak.

tests/soak/soak.c forks and execs this for its Python worker slots, with
one argument: "key=value;key=value...".  It carries the two inherited memfd
descriptors of the soak's ledger (the control block and the four
[incarnation][seq] byte arrays), the byte offsets of every field this worker
writes, and what to do (role, target, incarnation, rate, seed).  The worker
uses only the public Python API (xichan.queues, xichan.channels):

  producer  puts or sends items whose payload soak.c's check() accepts
            (the same header and byte stream as fill(); put as bytes with
            syncobj=True, so they travel as msgpack bin and C consumers unwrap
            them), marking each seq in flight, then committed or failed;
  consumer  takes items from q2 (a queue whose markers would carry no payload
            Python can see) and counts each intact one in rx.  Its get
            copies the item out and frees the block before it returns, so
            the worker itself says what it holds: phase GETTING around the
            call, then the item in "holding" and phase HOLDING before it
            records the item, then IDLE.  soak.c kills it only in IDLE or
            HOLDING (stopped in GETTING, it lets it run on and tries again),
            and excuses exactly the item named in "holding".  Half its
            gets are get_nowait() (a short GETTING phase), half block for
            at most 50 ms.

It writes only its own slot's words and its own incarnation's record, plus
rx bytes of the items it received -- the same protocol as soak.c's C
workers.  Every blocking call has a deadline of at most a second, and the
heartbeat is beaten at every step, so the orchestrator can tell a hang.
Exit status 2 after counting a worker error in the slot.
"""
import mmap
import os
import random
import struct
import sys
import time

MAGIC = 0x4B414F53
MASK = (1 << 64) - 1
HDR = struct.Struct('<IIIIQ')  # struct payload_hdr
ST_INFLIGHT, ST_COMMITTED, ST_FAILED = 1, 2, 3
PH_IDLE, PH_GETTING, PH_HOLDING = 0, 1, 2  # soak.c's struct slot.phase
END_CLOSED, END_FINAL = 2, 3


def mix(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & MASK
    x ^= x >> 33
    return x


def fill(inc, seq, length):
    """soak.c's fill(): a header, then bytes derived from it."""
    s = mix(inc << 32 | seq) ^ length
    out = [HDR.pack(MAGIC, inc, seq, length, s)]
    x = s
    for i in range(HDR.size, length, 8):  # HDR.size is a multiple of 8
        x = mix((x + i) & MASK)
        out.append(x.to_bytes(8, 'little'))
    return b''.join(out)[:length]


def check(data):
    """(inc, seq) of an intact payload, else None."""
    if len(data) < HDR.size:
        return None
    magic, inc, seq, length, s = HDR.unpack_from(data)
    if magic != MAGIC or length != len(data) or s != mix(inc << 32 | seq) ^ length:
        return None
    if fill(inc, seq, length) != data:
        return None
    return inc, seq


class Ledger:
    """The ledger's words, each read and written with one aligned access.

    Not struct.pack_into: it clears the bytes before it packs them, so a
    reader in another process can see a heartbeat of 0 in between (and
    take a live worker for a hung one).  A typed memoryview's item store is
    one memcpy of the item's size, which is one aligned store.
    """

    def __init__(self, a):
        self.a = a
        self.ctl = mmap.mmap(a['ctl_fd'], a['ctl_size'])
        self.arr = mmap.mmap(a['arr_fd'], 4 * a['arr'])
        self.slot = a['slot_off']
        whole = memoryview(self.ctl)
        self.q = whole[:len(whole) // 8 * 8].cast('Q')
        self.w = whole[:len(whole) // 4 * 4].cast('I')
        self.s32 = whole[:len(whole) // 4 * 4].cast('i')

    def u64(self, off, v=None):
        assert off % 8 == 0
        if v is None:
            return self.q[off // 8]
        self.q[off // 8] = v

    def u32(self, off, v):
        assert off % 4 == 0
        self.w[off // 4] = v

    def i32(self, off, v=None):
        assert off % 4 == 0
        if v is None:
            return self.s32[off // 4]
        self.s32[off // 4] = v

    def beat(self):
        self.u64(self.slot + self.a['hb'], time.monotonic_ns())

    def bump(self, field):
        off = self.slot + self.a[field]
        self.u64(off, self.u64(off) + 1)

    def flag(self, name):
        return self.i32(self.a[name]) != 0

    def idx(self, inc, seq):
        return inc * self.a['seq_max'] + seq


def fatal(led, what, exc):
    sys.stderr.write('soak: python worker %d (%s): %s: %r\n' % (os.getpid(), led.a['role'], what, exc))
    led.bump('errors')
    sys.stdout.flush()
    os._exit(2)


def attach(led, xichan):
    """The session: opened on first use; retried while the daemon is down."""
    while True:
        led.beat()
        try:
            return xichan._xichan.session_id()
        except xichan.XichanError as e:
            name = xichan._xichan.strerror(e.code)[0] if e.code is not None else ''
            if name not in ('XICHAN_ENODAEMON', 'XICHAN_EDAEMONLOST', 'XICHAN_EIO'):
                fatal(led, 'open', e)
            time.sleep(0.005)


def pick_len(rng):
    r = rng.randrange(1000)
    if r < 900:
        return HDR.size + rng.randrange(240)
    return 1024 + rng.randrange(8 * 1024)


def producer(led, xichan, target):
    from xichan import channels, queues
    a = led.a
    inc, kind, t = a['inc'], a['kind'], a['target']
    rng = random.Random(a['seed'] ^ inc)
    gap = 1.0 / max(a['rate'], 1)
    nxt = time.monotonic()
    seq = 0
    while seq < a['seq_max'] and not led.flag('stop_producers'):
        led.beat()
        payload = fill(inc, seq, pick_len(rng))
        k = led.idx(inc, seq)
        led.arr[k] = ST_INFLIGHT
        led.u32(a['inc_nseq'], seq + 1)
        try:
            if kind == 'queue':
                target.put(payload, timeout=1.0, syncobj=True)
            elif t == 4 and seq & 1:
                target.send(payload, timeout=0.5)
            else:
                target.send_nowait(payload)
            led.arr[k] = ST_COMMITTED
        except xichan.ObjectLockedError:
            # Nothing changed -- but a rendezvous send may have left its item queued.
            led.arr[k] = ST_INFLIGHT if (kind != 'queue' and t == 4 and seq & 1) else ST_FAILED
        except (queues.QueueFull, TimeoutError, xichan.SegmentFullError):
            led.arr[k] = ST_FAILED
        except Exception as e:  # noqa: BLE001 -- any other failure is a worker error
            fatal(led, 'put/send', e)
        seq += 1
        nxt += gap
        now = time.monotonic()
        if nxt > now:
            time.sleep(nxt - now)
        else:
            nxt = now
    if seq >= a['seq_max'] and not led.flag('stop_producers'):
        led.ctl[a['inc_ended']] = END_CLOSED
        return
    # The end of the run: stay (so our items stay ours) until released.
    led.i32(led.slot + a['stopped'], 1)
    while not led.flag('release_producers'):
        led.beat()
        time.sleep(0.005)
    led.ctl[a['inc_ended']] = END_FINAL


def consumer(led, xichan, target):
    from xichan import queues
    a = led.a
    phase, holding = led.slot + a['phase'], led.slot + a['holding']
    n = 0
    while not led.flag('stop_consumers'):
        led.beat()
        n += 1
        led.i32(phase, PH_GETTING)
        try:
            item = target.get_nowait() if n & 1 else target.get(timeout=0.05)
        except (queues.QueueEmpty, xichan.ObjectLockedError):
            led.i32(phase, PH_IDLE)
            if n & 1:
                time.sleep(0.002)
            continue
        except Exception as e:  # noqa: BLE001
            fatal(led, 'get', e)
        got = check(item) if isinstance(item, bytes) else None
        if got is not None:
            led.u64(holding, (got[0] << 32 | got[1]) + 1)
        led.i32(phase, PH_HOLDING)
        if n % 8 == 0:  # "work" on it: kills find the worker holding items
            time.sleep(0.003)
        if got is None:
            led.bump('corrupt')
        else:
            k = led.idx(*got)
            led.arr[a['arr'] + k] = min(led.arr[a['arr'] + k] + 1, 255)  # rx
            led.bump('received')
        led.i32(phase, PH_IDLE)
        led.u64(holding, 0)


def main():
    import faulthandler
    import signal
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    a = {}
    for kv in sys.argv[1].split(';'):
        k, v = kv.split('=', 1)
        a[k] = v if k in ('role', 'kind') else int(v)
    led = Ledger(a)
    led.beat()

    import xichan
    from xichan import channels, queues
    sid = attach(led, xichan)
    led.u32(a['inc_sid'], sid)
    if sid < a['sid_map']:
        led.u32(a['sid2inc'] + 4 * sid, a['inc'])
    if a['kind'] == 'queue':
        target = queues.Queue(a['id'])
    else:
        target = channels.SendChannel(a['id'])
    if a['role'] == 'producer':
        producer(led, xichan, target)
    else:
        consumer(led, xichan, target)
    sys.stdout.flush()


if __name__ == '__main__':
    main()
