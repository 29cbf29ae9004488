"""A real local Kafka broker without Docker: KRaft, one combined broker+controller node.

The jars come from Maven Central through ``kafka/pom.xml`` (copied once into ``kafka/lib``);
``LocalBroker`` formats the storage, starts ``kafka.Kafka`` with java, waits until it answers,
records its PID, and stops only that PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from streams.kafka_clients import MAX_MESSAGE_BYTES

KAFKA_DIR = Path(__file__).resolve().parents[1] / "kafka"

# Settings that docker-compose.yml must mirror (tests/test_docker_compose.py checks).
SHARED_SETTINGS = {
    "message.max.bytes": str(MAX_MESSAGE_BYTES),
    "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
    "num.partitions": "4",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}

_LOG4J = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


class BrokerError(RuntimeError):
    """The local broker could not be set up, started or stopped; the message says why."""


class LocalBroker:
    """One local KRaft broker whose files live under ``home``."""

    def __init__(self, home: str | Path, port: int = 9092, kafka_dir: Path = KAFKA_DIR, heap: str = "768m"):
        self.home = Path(home).resolve()
        self.port = port
        self.controller_port = port + 1
        self.kafka_dir = kafka_dir
        self.heap = heap
        self.pid_file = self.home / "broker.pid"
        self.log_file = self.home / "kafka.log"
        self.config_file = self.home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            **SHARED_SETTINGS,
        }

    # -- set-up --------------------------------------------------------------------------

    def jars(self) -> list[Path]:
        """The server's jars, fetched with Maven on first use."""
        lib = self.kafka_dir / "lib"
        if not list(lib.glob("kafka_2.13-*.jar")):
            cmd = ["mvn", "-q", "-B", "-f", str(self.kafka_dir / "pom.xml"), "dependency:copy-dependencies"]
            try:
                subprocess.run(cmd, check=True, capture_output=True, text=True)
            except FileNotFoundError:
                raise BrokerError("Maven (mvn) is not installed; it fetches the Kafka jars") from None
            except subprocess.CalledProcessError as exc:
                raise BrokerError(f"mvn could not fetch the Kafka jars: {exc.stderr.strip()[-300:]}") from None
        return sorted(lib.glob("*.jar"))

    def _java(self, *args: str) -> list[str]:
        classpath = os.pathsep.join(str(j) for j in self.jars())
        return ["java", f"-Xmx{self.heap}", f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp", classpath, *args]

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.home / "log4j2.properties").write_text(_LOG4J.format(log=self.log_file))
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = uuid.uuid4().hex[:22]
            cmd = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file))
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise BrokerError(f"formatting the KRaft storage failed: {(done.stderr or done.stdout).strip()[-300:]}")

    # -- life cycle ----------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The PID of this broker if it runs, else None (a stale PID file is ignored)."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        return pid if "kafka.Kafka" in cmdline and str(self.config_file) in cmdline else None

    def answers(self) -> bool:
        """Whether the broker accepts connections on its port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, timeout_s: float = 90.0) -> int:
        """Start the broker (or find it running) and wait until it answers; return its PID."""
        running = self.pid()
        if running:
            return running
        if self.answers():
            raise BrokerError(f"port {self.port} is taken by another process; choose another with --port")
        self._prepare()
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(self._java("kafka.Kafka", str(self.config_file)),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(f"the broker exited with code {proc.returncode}; see {self.log_file}")
            if self.answers() and _metadata_ready(self.bootstrap):
                return proc.pid
            time.sleep(0.3)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop this broker's process (and only it); True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _metadata_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def free_port_pair() -> int:
    """A port P such that P (clients) and P + 1 (the controller) are both free right now."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise BrokerError("found no two adjacent free ports on 127.0.0.1")
