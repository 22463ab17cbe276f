"""Test hosts on one machine: Linux network namespaces joined by virtual cables.

Each host is a network namespace with its own loopback and one interface, ``eth0``, on a
private /24. A process started in a host sees only that network, so a Dask scheduler and
its workers in different hosts reach each other only by the addresses a real cluster
would use (a server bound to 127.0.0.1 is unreachable from the other host, as it would be
on a LAN), while all of them share this machine's filesystem: it stands in for the shared
filesystem the Dask engine needs. Two hosts are joined by one veth pair; three or more by
a bridge in one more namespace (a switch).

Needs Linux, root and iproute2's ``ip``: :func:`namespaces_available` says whether hosts
can be made here, and why not. Plain module (no pytest): the tests and the benchmarks
import it with this folder on ``sys.path``, then take the folder off again: left there,
tests/pipeline hides the package ``pipeline`` from processes spawned later (they inherit
``sys.path``)::

    with namespaced_hosts(2) as hosts:
        a, b = hosts
        server = a.popen([sys.executable, "-m", "http.server", "--bind", a.address, "8000"])
        b.run(["curl", f"http://{a.address}:8000/"], timeout=10)
        ...
        hosts.bytes_crossed()

Leaving the block always kills every process started in the hosts (their process groups,
then anything else still in a namespace) and deletes the namespaces, which removes their
interfaces. Every wait is bounded.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

#: The hosts' /24. Any private network will do: every set of hosts has namespaces of its
#: own, so two sets with the same addresses (two test runs at once) never meet, and this
#: machine's own network is not in them.
SUBNET = "10.213.0"
#: Namespace names: the prefix, the pid of the process that made them, a counter.
PREFIX = "cvpipe-hosts"
#: Seconds for one ``ip`` command; seconds a process is given to exit on SIGTERM.
IP_TIMEOUT = 10
GRACE = 3

_counter = itertools.count()


class HostsError(RuntimeError):
    """The hosts could not be made (an ``ip`` command failed or timed out)."""


def ip_command():
    """The full path of ``ip`` (root's PATH has /usr/sbin, a user's may not), or None."""
    return shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")


def _ip(*args, timeout=IP_TIMEOUT):
    cmd = [ip_command() or "ip", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostsError(f"`{' '.join(cmd)}`: {exc}") from exc
    if done.returncode != 0:
        raise HostsError(f"`{' '.join(cmd)}` exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


class Host:
    """One network namespace: ``name``, ``address`` (on ``eth0``), and the processes started in it."""

    def __init__(self, name, address):
        self.name = name
        self.address = address
        self.processes = []

    def __repr__(self):
        return f"Host({self.name!r}, {self.address!r})"

    def command(self, cmd):
        """``cmd`` (a list) as run inside this host."""
        return [ip_command() or "ip", "netns", "exec", self.name, *cmd]

    def popen(self, cmd, **kwargs):
        """Start ``cmd`` in this host; it is killed, with its children, when the hosts go away.

        ``kwargs`` go to :class:`subprocess.Popen`. The process leads a new session (so a
        process group of its own, which teardown kills whole); ``ip netns exec`` replaces
        itself with ``cmd``, so the returned process is ``cmd``'s.
        """
        kwargs.setdefault("start_new_session", True)
        process = subprocess.Popen(self.command(cmd), **kwargs)
        self.processes.append(process)
        return process

    def run(self, cmd, *, timeout, **kwargs):
        """Run ``cmd`` in this host to its end (at most ``timeout`` seconds); a
        :class:`subprocess.CompletedProcess`, text output captured unless ``kwargs`` say otherwise."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(cmd), timeout=timeout, **kwargs)

    def counters(self):
        """Bytes received and sent on ``eth0``: ``{"rx": ..., "tx": ...}``."""
        (link,) = json.loads(_ip("-n", self.name, "-s", "-j", "link", "show", "dev", "eth0"))
        stats = link.get("stats64") or link["stats"]
        return {"rx": stats["rx"]["bytes"], "tx": stats["tx"]["bytes"]}


class Hosts(list):
    """The hosts made by :func:`namespaced_hosts`, in order, plus the switch's namespace if any."""

    def __init__(self, hosts, switch=None):
        super().__init__(hosts)
        self.switch = switch

    def bytes_crossed(self):
        """Bytes sent over the network so far: every host's ``eth0`` sent bytes, summed (a byte
        sent by one host is received by another, so it is counted once). Includes a few
        hundred bytes of IPv6 neighbour discovery; take the difference of two readings to
        measure one step."""
        return sum(host.counters()["tx"] for host in self)


@contextlib.contextmanager
def namespaced_hosts(n_hosts=2):
    """Make ``n_hosts`` hosts (``SUBNET``.1, .2, ...) and yield them as :class:`Hosts`;
    tear everything down on leaving, whatever happened."""
    if not 2 <= n_hosts <= 250:
        raise ValueError(f"n_hosts must be in [2, 250], got {n_hosts}")
    _remove_stale()
    prefix = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
    hosts = Hosts([Host(f"{prefix}-h{i}", f"{SUBNET}.{i + 1}") for i in range(n_hosts)])
    made = []
    try:
        for host in hosts:
            _ip("netns", "add", host.name)
            made.append(host.name)
        if n_hosts == 2:
            _ip("-n", hosts[0].name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", hosts[1].name)
        else:
            hosts.switch = f"{prefix}-switch"
            _ip("netns", "add", hosts.switch)
            made.append(hosts.switch)
            _ip("-n", hosts.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", hosts.switch, "link", "set", "br0", "up")
            for i, host in enumerate(hosts):
                _ip("-n", host.name, "link", "add", "eth0", "type", "veth", "peer", "name", f"port{i}",
                    "netns", hosts.switch)
                _ip("-n", hosts.switch, "link", "set", f"port{i}", "master", "br0", "up")
        for host in hosts:
            _ip("-n", host.name, "link", "set", "lo", "up")
            _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.name, "link", "set", "eth0", "up")
        yield hosts
    finally:
        _stop([p for host in hosts for p in host.processes])
        for name in made:
            _delete(name)


def _stop(processes):
    """SIGTERM each process's group, then SIGKILL the groups still there after ``GRACE`` seconds."""
    def signal_groups(sig):
        for process in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)  # the group, even if its leader is gone: children may not be

    signal_groups(signal.SIGTERM)  # a Dask worker or scheduler closes cleanly and removes its scratch files
    deadline = time.monotonic() + GRACE
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    signal_groups(signal.SIGKILL)
    for process in processes:
        try:
            process.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            logger.warning("process %d did not exit after SIGKILL (stuck in the kernel?)", process.pid)


def _delete(name):
    """Kill whatever still runs in namespace ``name`` (a process that left its group), then delete it.

    A namespace lives on while a process is in it, even once its name is deleted: killing
    first is what makes the interfaces go away."""
    try:
        pids = [int(p) for p in _ip("netns", "pids", name).split()]
    except HostsError as exc:
        logger.warning("could not list the processes of %s: %s", name, exc)
        pids = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        _ip("netns", "delete", name)
    except HostsError as exc:
        logger.warning("could not delete network namespace %s: %s", name, exc)


def _remove_stale():
    """Delete the namespaces left by a process that died without tearing down (SIGKILL)."""
    try:
        listed = _ip("netns", "list")
    except HostsError:
        return
    for line in listed.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX + "-"):
            continue
        pid = name[len(PREFIX) + 1:].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            logger.info("deleting the network namespace %s of process %s, gone", name, pid)
            _delete(name)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces_available():
    """``(True, "")`` if test hosts can be made here, else ``(False, why)``; tries a pair for real."""
    if not sys.platform.startswith("linux"):
        return False, f"network namespaces are Linux's (this is {sys.platform})"
    if os.geteuid() != 0:
        return False, "making network namespaces needs root"
    if ip_command() is None:
        return False, "no `ip` command (apt-get install iproute2)"
    try:
        with namespaced_hosts(2) as (a, b):
            done = a.run(["true"], timeout=IP_TIMEOUT)
            if done.returncode != 0:
                return False, f"`ip netns exec` failed ({done.returncode}): {done.stderr.strip()}"
            b.counters()
    except (HostsError, OSError, subprocess.SubprocessError) as exc:
        return False, f"could not make a pair of network namespaces: {exc}"
    return True, ""
