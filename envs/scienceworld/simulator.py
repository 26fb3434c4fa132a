"""One ScienceWorld simulator: a JVM running the jar shipped by ``scienceworld``.

We launch the JVM ourselves (rather than through ``scienceworld.ScienceWorldEnv``)
for three reasons: to cap its heap (an uncapped JVM grows past 1 GB within a
few hundred steps), to keep the process handle so a dead JVM is detected and
replaced, and to call the simulator's cheap methods directly instead of a
``step`` that always builds the ~2,700-entry valid-action list.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

__all__ = [
    "DEFAULT_JVM_OPTIONS",
    "FAST_JVM_OPTIONS",
    "JavaNotFoundError",
    "Simulator",
    "SimulatorDied",
    "find_java",
]

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


class Simulator:
    """A running ScienceWorld JVM and its ``PythonInterface`` object (``.server``)."""

    def __init__(self, jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
        from scienceworld.constants import JAR_PATH

        java = find_java()
        self.jvm_options = tuple(jvm_options)
        port, self.process = launch_gateway(
            classpath=JAR_PATH,
            javaopts=list(self.jvm_options),
            java_path=java,
            die_on_exit=True,
            return_proc=True,
            cwd=os.path.dirname(JAR_PATH),
        )
        self.gateway = JavaGateway(
            gateway_parameters=GatewayParameters(auto_field=True, port=port),
            java_process=self.process,
        )
        self.server: Any = self.gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        """Whether the JVM process is still running."""
        return self.process.poll() is None

    def describe_death(self) -> str:
        code = self.process.poll()
        if code is None:
            return f"the ScienceWorld JVM (pid {self.pid}) stopped answering"
        return f"the ScienceWorld JVM (pid {self.pid}) exited with code {code}"

    def resident_memory(self) -> int:
        """Resident set size of the JVM in bytes (0 once it has exited)."""
        import psutil

        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def close(self) -> None:
        """Stop the JVM (idempotent)."""
        try:
            self.gateway.shutdown()
        except Exception:  # the JVM may already be gone; closing must not fail
            pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except Exception:
                self.process.kill()
                self.process.wait(timeout=5)
