"""One writer per store: a lease object in the store that works wherever fsspec does.

A run that writes a store (``gen scenes``, ``gen shards``, ``gen verify --repair``) first
reads ``LEASE`` at the store's root.  If another run's lease is there and was renewed less
than its time-to-live ago, the run is refused in one line.  Otherwise it writes its own
lease (owner id, host, pid, command, heartbeat time, ttl), reads it back after a moment
(two runs starting at once: the later write wins, the other sees it and is refused), and
a background thread renews the heartbeat every ttl/4.  The lease is deleted on every exit
of the run, Ctrl-C included; a killed run's lease goes stale after ``ttl`` seconds and the
next run takes it over.  Object stores have no atomic create-if-absent in fsspec, hence a
lease rather than a lock file; the heartbeat compares wall clocks, so hosts sharing a store
need clocks that agree to well within the ttl (NTP does).

``RGSD_LEASE_S`` (environment) sets the ttl, 120 s by default (tests use about a second).
"""
from __future__ import annotations

import functools
import json
import os
import socket
import sys
import threading
import time
import uuid

from scenes import safety

LEASE = safety.LEASE
DEFAULT_TTL_S = 120.0


_HELD: set = set()  # this process's leases, for drop_all


class StoreLockedError(safety.StoreError):
    """Another run is writing this store."""


def ttl_s() -> float:
    try:
        v = float(os.environ.get("RGSD_LEASE_S", "") or DEFAULT_TTL_S)
    except ValueError:
        v = DEFAULT_TTL_S
    return v if v > 0 else DEFAULT_TTL_S


def _where(url: str):
    import fsspec
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/"), f"{path.rstrip('/')}/{LEASE}"


class Lease:
    def __init__(self, url: str, command: str, ttl: float | None = None):
        self.url, self.command = url, command
        self.ttl = ttl or ttl_s()
        self.owner = uuid.uuid4().hex
        self.fs, self.root, self.key = _where(url)
        self.local = safety.is_local(url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made_root = False

    def read(self) -> dict | None:
        try:
            self.fs.invalidate_cache(self.key)
            return json.loads(self.fs.cat_file(self.key))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError):
            return {}  # being written this instant, or garbage: judged by its age below

    def _write(self) -> None:
        body = json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "command": self.command, "heartbeat": time.time(), "ttl_s": self.ttl}).encode()
        if self.local:  # a reader never sees half a file
            tmp = f"{self.key}.{self.owner}.tmp"
            with open(tmp, "wb") as f:
                f.write(body)
            os.replace(tmp, self.key)
        else:
            self.fs.pipe_file(self.key, body)

    def _age(self, lease: dict) -> float:
        if not lease:  # unreadable: its file's age says how long ago it was written
            try:
                return time.time() - self.fs.modified(self.key).timestamp()
            except Exception:  # noqa: BLE001
                return 0.0
        return time.time() - float(lease.get("heartbeat", 0))

    def _refusal(self, lease: dict) -> StoreLockedError:
        who = (f"{lease.get('command', 'another run')}, pid {lease.get('pid')} on {lease.get('host')}"
               if lease else "another run")
        ttl = float(lease.get("ttl_s", self.ttl)) if lease else self.ttl
        return StoreLockedError(
            f"{self.url} is being written by another run ({who}, lease renewed {self._age(lease):.0f}s ago); "
            f"one store has one writer: wait for it to finish (a killed run's lease expires {ttl:.0f}s after "
            "its last renewal)")

    def acquire(self) -> Lease:
        held = self.read()
        if held is not None and held.get("owner") != self.owner:
            ttl = float(held.get("ttl_s", self.ttl)) if held else self.ttl
            if self._age(held) < ttl:
                raise self._refusal(held)
            print(f"note: {self.url}: taking over the lease of a run that stopped renewing it "
                  f"{self._age(held):.0f}s ago (pid {held.get('pid')} on {held.get('host')})", file=sys.stderr)
        try:
            if self.local and not os.path.isdir(self.root):
                os.makedirs(self.root)
                self._made_root = True
            self._write()
        except OSError as exc:
            raise safety.StoreError(f"cannot write the writer lease of {self.url}: {safety.first_line(exc)}") from None
        time.sleep(0.05 if self.local else 0.5)  # a run that wrote just after us has written by now
        now = self.read()
        if not now or now.get("owner") != self.owner:
            raise self._refusal(now or {})
        self._thread = threading.Thread(target=self._renew, name=f"lease {self.url}", daemon=True)
        self._thread.start()
        _HELD.add(self)
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                held = self.read()
                if held and held.get("owner") != self.owner:
                    print(f"warning: {self.url}: another run took over this run's writer lease (this run was "
                          f"stalled past {self.ttl:.0f}s); stop one of them", file=sys.stderr)
                    return
                self._write()
            except Exception:  # noqa: BLE001 - a missed renewal is retried; the ttl allows three
                pass

    def release(self) -> None:
        _HELD.discard(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            held = self.read()
            if held and held.get("owner") == self.owner:
                self.fs.rm_file(self.key)
            if self._made_root and not os.listdir(self.root):
                os.rmdir(self.root)  # nothing was created after all (the run stopped before)
        except OSError:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def drop_all() -> None:
    """Release this process's leases at once (a second Ctrl-C ends it with os._exit)."""
    for held in list(_HELD):
        held._stop.set()
        try:
            if (held.read() or {}).get("owner") == held.owner:
                held.fs.rm_file(held.key)
        except OSError:
            pass


def lease(url, command: str) -> Lease | None:
    """The writer lease of ``url``, or None where there is nothing to lease: a zarr Store
    object (tests), a file, a folder that is not an rgsd store, or a read-only place
    (the run refuses those itself, with its own line)."""
    if not isinstance(url, str) or safety.writable(url):
        return None
    names = safety.contents(url)
    if names and (names == [""] or safety.rgsd_kind(url, names) is None):
        return None
    return Lease(url, command)


def one_writer(command: str):
    """Decorator of a run function whose first argument is the store it writes: the run
    holds the store's writer lease throughout."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(url, *args, **kwargs):
            held = lease(url, command)
            if held is None:
                return fn(url, *args, **kwargs)
            with held:
                return fn(url, *args, **kwargs)
        return run
    return wrap
