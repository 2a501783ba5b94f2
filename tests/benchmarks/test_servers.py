"""Ports for the test servers and Ray nodes: never two alike in one run, and a server that cannot bind
its port is started again on fresh ones.

A clean-clone CI run once lost every cluster test because the worker node's `dashboard_agent_grpc`
and `runtime_env_agent` were both given port 33079 (the OS hands a just-released port out again).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from benchmarks.servers import free_ports, start_on_fresh_ports, start_process, stop_tree, wait_for_http
from tests.topology import node_port_flags

STARTS = 200


def cluster_start_ports() -> list[int]:
    """The ports one start of tests/topology's cluster takes, asked as it asks them: PostgreSQL, S3,
    the MLflow server (one each), then the head node's and a worker node's (all of a node at once)."""
    servers = [port for _ in ("postgres", "s3", "mlflow") for port in free_ports(1)]
    nodes = [port for head in (True, False) for port in free_ports(len(node_port_flags(head=head)))]
    return servers + nodes


def test_port_allocation_of_many_cluster_starts_never_collides():
    handed_out: set[int] = set()
    for start in range(STARTS):
        ports = cluster_start_ports()
        assert len(set(ports)) == len(ports), (start, sorted(ports))
        assert not handed_out & set(ports), (start, sorted(handed_out & set(ports)))
        assert all(1024 <= port <= 65535 for port in ports), ports
        handed_out |= set(ports)


class HttpServers:
    """`python -m http.server` on the ports it is given: a real server that cannot start where its port
    is taken. The first `take` attempts find their port held by this test."""

    def __init__(self, log: Path, *, take: int):
        self.log, self.take = log, take
        self.attempts: list[list[int]] = []
        self.holders: list[socket.socket] = []
        self.process = None

    def __call__(self, ports: list[int]):
        self.attempts.append(ports)
        (port,) = ports
        if len(self.attempts) <= self.take:  # another process got there first
            holder = socket.socket()
            holder.bind(("127.0.0.1", port))
            holder.listen()
            self.holders.append(holder)
        self.process = start_process(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], log=self.log
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/", timeout=30, process=self.process)
        except BaseException:
            stop_tree(self.process, grace=2)
            raise
        return port

    def close(self):
        for holder in self.holders:
            holder.close()
        if self.process is not None and self.process.poll() is None:
            stop_tree(self.process, grace=2)


@pytest.fixture
def servers(tmp_path):
    made: list[HttpServers] = []

    def make(take: int) -> HttpServers:
        made.append(HttpServers(tmp_path / f"server-{len(made)}.log", take=take))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_server_whose_port_was_taken_starts_again_on_fresh_ports(servers):
    server = servers(take=1)
    port = start_on_fresh_ports(server, count=1, what="the test server", log=server.log)
    first, second = server.attempts
    assert port == second[0] and not set(first) & set(second)
    wait_for_http(f"http://127.0.0.1:{port}/", timeout=10)


def test_a_server_that_fails_twice_says_so_with_its_log(servers):
    server = servers(take=2)
    with pytest.raises(RuntimeError) as failure:
        start_on_fresh_ports(server, count=1, what="the test server", log=server.log)
    assert len(server.attempts) == 2 and server.attempts[0] != server.attempts[1]
    message = str(failure.value)
    assert message.startswith("the test server failed to start twice, on fresh ports each time")
    assert "Address already in use" in message, message  # http.server's own words, from its log
