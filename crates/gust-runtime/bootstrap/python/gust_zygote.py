"""Gust's Python zygote: a process with the interpreter and the bootstrap already loaded
that forks the runtime of each new environment (the SOCK approach).

The sandbox starts it as root in a mount namespace of its own, `chroot`ed into a root laid
out like every environment's (so module paths are the same inside), with its control
socket (SOCK_SEQPACKET) on the descriptor `_GUST_ZYGOTE_FD` names. Each request is one
packet: a JSON line (root, uid, gid, process group, open-file limit, seccomp filter
lengths) followed by the compiled seccomp filters, with descriptors attached: the
environment's mount, uts, ipc and pid namespaces, the hand-over pipe's read end, the ready
pipe's write end, the environment's output, then its cgroups' `cgroup.procs` files.

For each request it forks a process into the environment's pid namespace (joined for
that fork only, then left again) and moves it into the environment's process group; that
process joins the environment's cgroups and other namespaces, `chroot`s into its root,
forks the runtime and exits, so the runtime's parent is the environment's init (pid 1),
which reaps it as one it started itself. The runtime drops
everything a runtime started by the init would not have (descriptors, signal handlers,
capabilities, groups, uid; `no_new_privs` and seccomp), says `R` and its pid on the ready
pipe and returns into the bootstrap, which waits on the hand-over descriptor as a primed
runtime does. Nothing of the environment depends on this process once its runtime is
ready.

Standard library only; runs on every Python Gust supports (3.8 and later).
"""

import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWPID = 0x20000000
NAMESPACES = 4  # mnt, uts, ipc, pid: the order the sandbox sends them in


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, "%s: %s" % (what, os.strerror(error)))


def _prctl(option, value, what):
    _check(_libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), what)


def _receive(control):
    """One request: its bytes and descriptors (empty bytes: the server went away)."""
    space = socket.CMSG_SPACE(64 * 4)
    data, ancillary, _flags, _address = control.recvmsg(1 << 20, space)
    fds = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(struct.unpack("%di" % (usable // 4), payload[:usable]))
    return data, fds


def serve(control_fd):
    """Serves fork requests until the server goes away; returns only in a forked runtime,
    which then goes on as a primed bootstrap: whether it should warm up before its
    hand-over (a spare kept for later; not one forked for a claim waiting now)."""
    control = socket.socket(fileno=control_fd)
    os.set_inheritable(control_fd, False)
    own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    poller = select.poll()
    poller.register(control_fd, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    # Everything loaded so far is never collected: the collector would otherwise write to
    # every object's page in each fork (copy-on-write).
    gc.collect()
    gc.freeze()
    control.send(b"ready")
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, _event in events:
            if fd == control_fd:
                data, fds = _receive(control)
                if not data:
                    os._exit(0)
                request = _fork(data, fds, control, own_pid_namespace)
                if request:
                    return request.get("warm", True)
            else:
                try:
                    os.read(wake_read, 4096)
                except BlockingIOError:
                    pass
        # The processes forked into environments (each exits once it forked its runtime).
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def _fork(data, fds, control, own_pid_namespace):
    """Forks into the environment for one request; the request in the runtime that led
    to, None elsewhere."""
    try:
        header, _, filters = data.partition(b"\n")
        request = json.loads(header)
        # Exactly the namespaces, the hand-over, ready and output pipes, and the cgroups
        # the header counts: a descriptor is never taken for another's role.
        if len(fds) != NAMESPACES + 3 + request["cgroups"] or request["pgid"] <= 0:
            raise ValueError("a fork request with %d descriptors" % len(fds))
    except (ValueError, KeyError, TypeError) as error:
        print("gust zygote: %s" % error, file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        return None
    namespaces = fds[:NAMESPACES]
    handover, ready, output = fds[NAMESPACES:NAMESPACES + 3]
    cgroups = fds[NAMESPACES + 3:]
    inside = -1
    go_read = go_write = -1
    try:
        go_read, go_write = os.pipe()
        # Only the children made from now on are in it (this process stays where it is).
        _check(_libc.setns(namespaces[3], CLONE_NEWPID), "join the environment's pid namespace")
        inside = os.fork()
    except OSError as error:
        # The environment's init hears of it as its ready pipe closes unanswered.
        print("gust zygote: %s" % error, file=sys.stderr, flush=True)
    if inside != 0:
        if _libc.setns(own_pid_namespace, CLONE_NEWPID) != 0:
            # Every later fork would land in that environment: this zygote is done (the
            # server starts another).
            print("gust zygote: cannot leave an environment's pid namespace", file=sys.stderr,
                  flush=True)
            os._exit(70)
        try:
            if inside > 0:
                # Its process group is the environment's supervisor's, which only this
                # side of the pid namespace can name; it goes on only once it is in it.
                os.setpgid(inside, request["pgid"])
                os.write(go_write, b"g")
        except OSError as error:
            print("gust zygote: %s" % error, file=sys.stderr, flush=True)
        finally:
            for fd in fds + [go_read, go_write]:
                if fd >= 0:
                    os.close(fd)
        return None
    # In the environment's pid namespace (pid 2), once in its process group.
    try:
        os.close(go_write)
        if os.read(go_read, 1) != b"g":
            raise OSError("not moved into the environment's process group")
        os.close(go_read)
        for procs in cgroups:
            os.write(procs, b"0")
        for namespace in namespaces[:3]:
            _check(_libc.setns(namespace, 0), "join the environment's namespaces")
        os.chroot(request["root"])
        os.chdir("/")
        runtime = os.fork()
    except BaseException as error:  # noqa: B902 - reported, then this process ends
        _fail(ready, "gust zygote: %s" % error)
    if runtime != 0:
        os._exit(0)
    # The init reaps the runtime as its own child: ready only once adopted (its parent,
    # pid 2, has exited).
    deadline = time.monotonic() + 10
    while os.getppid() != 1:
        if time.monotonic() > deadline:
            _fail(ready, "gust zygote: the runtime was not adopted by the init")
        time.sleep(0.00005)
    _become_runtime(request, filters, handover, ready, output, control)
    return request


def _fail(ready, message):
    try:
        os.write(ready, b"E" + message.encode(errors="replace")[:4000])
    finally:
        os._exit(126)


def _become_runtime(request, filters, handover, ready, output, control):
    """In the runtime: left exactly as the init would have started it, waiting on the
    hand-over descriptor."""
    try:
        control.detach()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDWR)
        for source, target in ((null, 0), (output, 1), (output, 2), (handover, 3)):
            os.dup2(source, target)
        keep = {0, 1, 2, 3, ready}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        resource.setrlimit(resource.RLIMIT_NOFILE, (request["nofile"], request["nofile"]))
        for capability in range(64):
            _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(capability), ctypes.c_ulong(0),
                        ctypes.c_ulong(0), ctypes.c_ulong(0))
        os.setgroups([])
        os.setresgid(request["gid"], request["gid"], request["gid"])
        os.setresuid(request["uid"], request["uid"], request["uid"])
        # A changed uid makes a process not dumpable; an executed runtime is dumpable
        # (its /proc files are its own).
        _prctl(PR_SET_DUMPABLE, 1, "set dumpable")
        _prctl(PR_SET_NO_NEW_PRIVS, 1, "set no_new_privs")
        offset = 0
        for count in request["filters"]:
            size = count * 8
            program = ctypes.create_string_buffer(filters[offset:offset + size], size)
            offset += size
            fprog = _SockFprog(count, ctypes.cast(program, ctypes.c_void_p))
            _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER),
                               ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)),
                   "apply the seccomp filter")
        os.write(ready, b"R" + struct.pack("<i", os.getpid()))
        os.close(ready)
    except BaseException as error:  # noqa: B902 - reported, then this process ends
        _fail(ready, "gust zygote: %s" % error)
