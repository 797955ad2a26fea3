"""A warm interpreter that runs the console script once per command, each time in a fresh fork.

Why: a `residency` process spends about 3 of its 4 seconds of CPU importing pulumi, pulumi-aws
and pulumi-kubernetes before it plans anything, and the suite runs the console script a few
hundred times. This server imports them once, resolves the type hints of the provider classes the
program uses, and reads the installed botocore's EC2 instance types, region list, endpoint data and
the scanned services' models once (every plan parsed the 4 MB EC2 model again, every live audit
each service's; every plan resolved the hints again, about 0.09 s of its 0.65 s). Nothing else:
no cache holds a stack file, a price or anything from the repository or the environment when it
forks. Then it forks a child per command.
The child is what `.venv/bin/residency` is after its imports: the console script's own lines
(`sys.argv[0]` as the script sets it, `sys.exit(main())`) run with the command's argv, its whole
environment and working directory, and file descriptors 0, 1 and 2 that the caller handed over.
Its exit status is the process's own (`os._exit` of what `sys.exit` would have returned), sent back
with its pid. A request may name a module instead: the child is then `python -u -m MODULE ARGV`
after its imports (`as_module`), which is how the CrossGuard pack starts (tests/crossguard_wire.py).

What a fork does not reproduce is decided by the caller (tests/cli_run.py), which execs the real
script instead: when the environment changes what an interpreter fixes at start-up (PYTHON*, the
locale), and always under RESIDENCY_TEST_EXEC=1 (the `console-script` CI job).

Garbage collection follows the gc module's advice for a process that forks without exec: off while
the modules load, everything loaded then frozen (moved out of the collector's reach), and back on in
each child. A child's collections then never walk, nor copy, the parent's millions of import-time
objects: that took about 0.3 s of every planned command's 1 s of CPU. The child still collects
everything it allocates itself, as the script does.

Run as `python tests/cli_zygote.py SOCKET`; it exits when its parent (the pytest process) does.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import os
import pkgutil
import re
import runpy
import socket
import struct
import sys
import traceback
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".venv" / "bin" / "residency"
PROGRAM_SOURCES = [REPO / "stacks", REPO / "infra" / "program"]
# `aws.ec2.Vpc`, `k8s.core.v1.Service`: the provider modules the program registers resources from.
PROVIDER_USE = re.compile(r"\b(aws|k8s)\.([a-z0-9_]+(?:\.v[0-9a-z]+)?)\.([A-Z]\w*)")
PROVIDER_PACKAGE = {"aws": "pulumi_aws", "k8s": "pulumi_kubernetes"}


def warm() -> None:
    """Import what every command imports, and the provider modules a plan loads lazily."""
    for package in ("infra", "stacks"):
        root = REPO / package
        for info in pkgutil.walk_packages([str(root)], prefix=f"{package}."):
            if not info.name.endswith(("__main__", ".docs")):
                importlib.import_module(info.name)
    used = {(m[1], m[2], m[3]) for src in PROGRAM_SOURCES for path in src.rglob("*.py")
            for m in PROVIDER_USE.finditer(path.read_text())}
    resolved: set = set()
    for alias, module, name in sorted(used):  # the providers' modules load on first attribute access
        provider = importlib.import_module(f"{PROVIDER_PACKAGE[alias]}.{module}")
        for cls in (getattr(provider, name, None), getattr(provider, f"{name}Args", None)):
            resolve_type_hints(cls, resolved)
    import boto3.session  # noqa: F401  (the live scan, preflight, seed, evidence)
    # Data of the installed botocore only, the same for every command: parsed once, not per fork.
    from infra.engine.credentials import session_sharing_models
    from infra.engine.live.core import ALLOWED_OPERATIONS
    from infra.engine.live.sweep import partition_of
    from infra.program.config import aws_regions, ec2_instance_types

    ec2_instance_types()
    aws_regions()
    partition_of("us-east-1")
    # The service models the AWS-calling commands read, into the process's shared loader
    # (credentials.model_loader), by a throwaway session that reads no AWS config of this machine.
    os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    models = session_sharing_models(region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")
    for service in sorted(ALLOWED_OPERATIONS):
        models.client(service)


def resolve_type_hints(cls, seen: set) -> None:
    """Resolve the type hints of a provider class and of every input and output type it reaches.

    pulumi resolves them (typing.get_type_hints, about 1 ms a class) the first time a resource,
    its args or a nested type is registered or read back, and keeps them (functools.cache, keyed
    by class): done here, every fork starts with them, as a long-lived interpreter would.
    `pulumi._types` is the SDK's own module for this; its functions are named without an underscore.
    """
    import pulumi
    from pulumi import _types as sdk_types

    for arg in typing.get_args(cls):  # List[X], Mapping[str, X], Union[...]
        resolve_type_hints(arg, seen)
    if not isinstance(cls, type) or cls in seen:
        return
    seen.add(cls)
    if sdk_types.is_input_type(cls):
        nested = sdk_types.input_type_types(cls)
    elif sdk_types.is_output_type(cls):
        nested = sdk_types.output_type_types(cls)
    elif issubclass(cls, pulumi.Resource):
        nested = sdk_types.resource_types(cls)
    else:
        return
    for hint in nested.values():
        resolve_type_hints(hint, seen)


def run_child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the fork: become the console script for one command line, or `python -u -m MODULE ARGV`
    when the request names a module; then exit with its status."""
    gc.enable()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    conn.sendall(struct.pack("!i", os.getpid()))
    module = request.get("module")
    try:
        status = as_module(module, request["argv"]) if module else as_script(request["argv"])
    except SystemExit as stop:
        status = stop.code
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        status = 1
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    conn.sendall(struct.pack("!i", status))
    os._exit(status & 0xFF)


def as_script(argv: list[str]):
    """The console script's own lines: `sys.argv[0]` as the script sets it, then `main()`."""
    sys.argv = [str(SCRIPT), *argv]
    from infra.cli import main

    return main()


def as_module(module: str, argv: list[str]) -> None:
    """What `python -u -m MODULE ARGV` does after start-up: unbuffered stdout and stderr, the working
    directory first on sys.path, and the module run as __main__ (the CrossGuard pack's start)."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=stream.encoding,
                                            errors=stream.errors, write_through=True))
    sys.path[0] = os.getcwd()
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def serve(path: str) -> None:
    parent = os.getppid()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(1.0)
    print("ready", flush=True)
    while os.getppid() == parent:
        reap()
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        request, fds = receive(conn)
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # what the loop itself allocated since the last fork
        if os.fork() == 0:
            server.close()
            run_child(conn, request, fds)
        for fd in fds:
            os.close(fd)
        conn.close()


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """A request: its length (4 bytes), then its JSON; stdin, stdout and stderr ride on the first part."""
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    (length,) = struct.unpack("!I", data[:4])
    data = data[4:]
    while len(data) < length:
        chunk = conn.recv(length - len(data))
        if not chunk:
            raise EOFError("the request was cut short")
        data += chunk
    return json.loads(data), fds


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    gc.disable()  # no collection while importing: it would leave freed holes in pages the forks share
    warm()
    gc.freeze()
    serve(sys.argv[1])
