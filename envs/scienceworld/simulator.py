"""One ScienceWorld simulator: a JVM running the jar shipped by ``scienceworld``.

We launch the JVM ourselves (rather than through ``scienceworld.ScienceWorldEnv``)
for three reasons: to cap its heap (an uncapped JVM grows past 1 GB within a
few hundred steps), to keep the process handle so a dead JVM is detected and
replaced, and to call the simulator's cheap methods directly instead of a
``step`` that always builds the ~2,700-entry valid-action list.

Every call to the JVM has a deadline (``timeout_s``): a JVM that stops
answering (frozen, stopped, swapping) makes the call raise a ``Py4JError``
instead of blocking forever. A simulator that is garbage-collected without
``close()`` still stops its JVM (a finaliser).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import weakref
from typing import Any

__all__ = [
    "DEFAULT_JVM_OPTIONS",
    "DEFAULT_TIMEOUT_S",
    "FAST_JVM_OPTIONS",
    "JavaNotFoundError",
    "Simulator",
    "SimulatorDied",
    "find_java",
]

#: Seconds any one call to the JVM may take (loading a task takes about a second).
DEFAULT_TIMEOUT_S = 30.0
#: Seconds a fresh JVM may take to answer its first call (class loading on a busy machine).
STARTUP_TIMEOUT_S = 120.0

#: Heap cap and a single-threaded collector: ~200 MB per env and no speed loss (measured).
FAST_JVM_OPTIONS: tuple[str, ...] = ("-Xmx256m", "-XX:+UseSerialGC")

#: The simulator keeps objects in hash sets keyed by identity hash codes, which
#: the JVM draws at random: the same task then lists its objects in a different
#: order on each load. A constant identity hash makes every load, and every
#: JVM, produce the same text; it costs about a quarter of the step rate
#: (measured in benchmarks/bench_scienceworld.py). Pass FAST_JVM_OPTIONS to trade it away.
DEFAULT_JVM_OPTIONS: tuple[str, ...] = FAST_JVM_OPTIONS + (
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:hashCode=2",
)

# py4j logs a full traceback at ERROR level for every call to a dead JVM; we
# report those failures ourselves, once and in words.
for _name in ("py4j", "py4j.java_gateway", "py4j.clientserver"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


class JavaNotFoundError(RuntimeError):
    """No Java runtime is available to run ScienceWorld's simulator."""


class SimulatorDied(RuntimeError):
    """The simulator's JVM stopped answering (crashed, was killed, ran out of memory)."""


def find_java() -> str:
    """Path of the ``java`` executable (``$JAVA_HOME/bin/java`` first, then ``PATH``)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("java")
    if found:
        return found
    raise JavaNotFoundError(
        "ScienceWorld-v0 needs a Java runtime (version 8 or newer) and none was found "
        "(no $JAVA_HOME/bin/java, no 'java' on PATH). Install one, for example "
        "'sudo apt-get install default-jre-headless' on Debian/Ubuntu, "
        "'brew install openjdk' on macOS, or 'conda install -c conda-forge openjdk', "
        "then try again."
    )


def _stop_jvm(process: subprocess.Popen, gateway: Any, force: bool) -> None:
    """Stop the JVM: politely (a shutdown over the bridge, then SIGTERM) or, with ``force``
    (it no longer answers), at once with SIGKILL."""
    if force and process.poll() is None:
        process.kill()
    try:
        gateway.shutdown()
    except Exception:  # the JVM may already be gone; closing must not fail
        pass
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class Simulator:
    """A running ScienceWorld JVM and its ``PythonInterface`` object (``.server``)."""

    def __init__(
        self,
        jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
        from scienceworld.constants import JAR_PATH

        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, not {timeout_s}")
        java = find_java()
        self.jvm_options = tuple(jvm_options)
        self.timeout_s = timeout_s
        port, self.process = launch_gateway(
            classpath=JAR_PATH,
            javaopts=list(self.jvm_options),
            java_path=java,
            die_on_exit=True,
            return_proc=True,
            cwd=os.path.dirname(JAR_PATH),
        )
        # A fresh JVM loads the simulator's classes on the first call: give it longer.
        startup_s = None if timeout_s is None else max(timeout_s, STARTUP_TIMEOUT_S)
        parameters = GatewayParameters(auto_field=True, port=port, read_timeout=startup_s)
        self.gateway = JavaGateway(gateway_parameters=parameters, java_process=self.process)
        # Holds no reference to self: a collected simulator takes its JVM with it.
        self._finalizer = weakref.finalize(self, _stop_jvm, self.process, self.gateway, True)
        self.server: Any = self.gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        parameters.read_timeout = timeout_s  # for connections made from now on
        for connection in list(getattr(self.gateway._gateway_client, "deque", ())):
            connection.socket.settimeout(timeout_s)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        """Whether the JVM process is still running."""
        return self.process.poll() is None

    def describe_death(self) -> str:
        code = self.process.poll()
        if code is None:
            deadline = f" within {self.timeout_s:g} s" if self.timeout_s else ""
            return f"the ScienceWorld JVM (pid {self.pid}) stopped answering{deadline}"
        return f"the ScienceWorld JVM (pid {self.pid}) exited with code {code}"

    def resident_memory(self) -> int:
        """Resident set size of the JVM in bytes (0 once it has exited)."""
        import psutil

        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def close(self, force: bool = False) -> None:
        """Stop the JVM (idempotent); ``force`` kills it at once (for a JVM that stopped
        answering, which a polite shutdown would wait on)."""
        self._finalizer.detach()
        _stop_jvm(self.process, self.gateway, force)
