"""One job on two hosts of this machine: network namespaces on a bridge, ranks started in them by hydra.

Each "host" is a network namespace with its own ``eth0`` (a veth whose other
end is on a bridge in the root namespace) and its own address in a private
/24 picked per run; nothing routes off the machine. Hydra starts its proxies
in the namespaces through ``scripts/netns-exec`` (``-launcher ssh
-launcher-exec``), so ``Split_type(COMM_TYPE_SHARED)`` sees two nodes, the
servers bind their ZeroMQ sockets to each namespace's ``eth0`` address, and the
parameter traffic between the nodes (and, with ``UCX_TLS=tcp``, MPI's own)
crosses the veths. ``/dev/shm`` is shared by the namespaces, so the checks for
leftovers still apply.

Needs root and iproute2 (``ip netns``); skipped with the reason elsewhere.
Every address used is one of the namespaces this module creates, or the
bridge; the module removes them (veths, bridge, namespaces) even on failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parasol_hybrid.datasets import gensim_corpus, movielens_100k, split_ratings
from parasol_hybrid.launcher import find_mpiexec, job_pids, mpich_files
from parasol_hybrid.tables import segment
from parasol_hybrid.testing import alive_pids, run_launcher, shm_leftovers, write_config

REPO = Path(__file__).resolve().parents[1]
NETNS_EXEC = REPO / "scripts" / "netns-exec"
SKIP = "needs root and iproute2 to create network namespaces"
SLOTS = 2  # ranks per host
# MPI between the hosts over TCP on eth0, as between machines (else UCX uses shared memory: one kernel)
MPI_OVER_TCP = {"UCX_TLS": "tcp", "UCX_NET_DEVICES": "eth0"}

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------- the two hosts
class SetupError(Exception):
    pass


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise SetupError(f"`ip {' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass
class Hosts:
    """Two namespaces on a bridge: names, addresses, and the root-side veth ends."""

    subnet: ipaddress.IPv4Network
    bridge: str
    namespaces: list[str]
    veths: list[str]
    addresses: list[str] = field(default_factory=list)

    @property
    def bridge_address(self) -> str:
        return str(self.subnet.network_address + 254)

    def hosts_arg(self, slots: int = SLOTS) -> str:
        """Hydra's ``-hosts``: addresses (never names: those would go to the resolver) with slots."""
        return ",".join(f"{a}:{slots}" for a in self.addresses)

    def hostfile(self, path: Path, slots: int = SLOTS) -> Path:
        path.write_text("".join(f"{a}:{slots}\n" for a in self.addresses))
        return path

    def launcher_args(self) -> list[str]:
        return ["-launcher", "ssh", "-launcher-exec", str(NETNS_EXEC), "-iface", self.bridge,
                "-hosts", self.hosts_arg()]

    def wire_bytes(self) -> int:
        """Bytes the namespaces have sent into the bridge so far (rx of the root-side veth ends)."""
        return sum(int(Path(f"/sys/class/net/{v}/statistics/rx_bytes").read_text()) for v in self.veths)


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if os.geteuid() != 0:
        return f"running as uid {os.geteuid()}, not root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on PATH"
    done = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns list` failed: {done.stderr.strip()}"
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 prefix the root namespace has a route or an address for."""
    nets = []
    for line in _ip("-4", "-o", "addr", "show").splitlines() + _ip("-4", "route", "show", "table", "all").splitlines():
        for word in line.split():
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(word, strict=False))
    return nets


def _free_subnet(rng: random.Random, avoid: set[int]) -> ipaddress.IPv4Network:
    used = _used_networks()
    for _ in range(100):
        octet = rng.randrange(1, 254)
        net = ipaddress.ip_network(f"10.250.{octet}.0/24")
        if octet not in avoid and not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise SetupError("no free 10.250.x.0/24 subnet")


def _create(hosts: Hosts) -> None:
    net = hosts.subnet
    _ip("link", "add", hosts.bridge, "type", "bridge")
    _ip("addr", "add", f"{hosts.bridge_address}/24", "dev", hosts.bridge)
    _ip("link", "set", hosts.bridge, "up")
    for i, (ns, veth) in enumerate(zip(hosts.namespaces, hosts.veths), start=1):
        address = str(net.network_address + i)
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", hosts.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        hosts.addresses.append(address)
    # a concurrent run may have picked the same subnet: then ours is not the only route to it
    routes = [r for r in _ip("-4", "route", "show", "to", "exact", str(net)).splitlines() if r.strip()]
    if len(routes) != 1:
        raise SetupError(f"subnet {net} is also routed elsewhere: {routes}")


def _remove(hosts: Hosts) -> list[str]:
    """Kill what still runs in the namespaces, delete veths, bridge, namespaces; return the problems."""
    problems = []
    existing = set(_ip("netns", "list", check=False).split())
    for ns in hosts.namespaces:
        if ns not in existing:
            continue
        pids = [int(p) for p in _ip("netns", "pids", ns, check=False).split() if p.isdigit()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if alive_pids(pids, wait=5.0):
            problems.append(f"processes still in {ns}: {alive_pids(pids)}")
    for link in [*hosts.veths, hosts.bridge]:  # veths before the namespaces: deletion is asynchronous
        if Path(f"/sys/class/net/{link}").exists():
            with contextlib.suppress(SetupError):
                _ip("link", "del", link)
            if Path(f"/sys/class/net/{link}").exists():
                problems.append(f"link {link} not deleted")
    for ns in hosts.namespaces:
        if ns in existing:
            try:
                _ip("netns", "del", ns)
            except SetupError as exc:
                problems.append(str(exc))
    return problems


@pytest.fixture(scope="module")
def hosts():
    """Two namespaces ``psh<pid>n1``/``n2`` with ``eth0`` at 10.250.X.1/.2, bridge ``psh<pid>b`` at .254."""
    why = _why_not()
    if why:
        pytest.skip(f"{SKIP}: {why}")
    tag = f"psh{os.getpid()}"
    rng = random.Random(os.getpid() ^ time.time_ns())
    tried: set[int] = set()
    made = None
    for _ in range(3):
        made = Hosts(_free_subnet(rng, tried), f"{tag}b", [f"{tag}n1", f"{tag}n2"], [f"{tag}v1", f"{tag}v2"])
        tried.add(int(str(made.subnet).split(".")[2]))
        try:
            _create(made)
            break
        except SetupError as exc:
            problems = _remove(made)
            if "also routed elsewhere" in str(exc) and not problems:
                made = None
                continue
            pytest.skip(f"{SKIP}: {exc}" + (f" (and clean-up: {problems})" if problems else ""))
        except BaseException:  # a timeout, Ctrl-C: nothing half-made stays behind
            _remove(made)
            raise
    if made is None:
        pytest.skip(f"{SKIP}: every subnet tried was also in use")
    try:
        yield made
    finally:
        problems = _remove(made)
        assert not problems, f"tearing down the namespaces: {problems}"


# ---------------------------------------------------------------- running a job
def _kill_job(proc: subprocess.Popen, job_id: str) -> None:
    """SIGKILL mpiexec's session and every process of the job (ranks run in sessions of their own)."""
    pids = job_pids(job_id)
    files = mpich_files(pids)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    alive_pids(pids, wait=5.0)
    for f in files:  # MPICH's own segments: removed by the ranks only when they end normally
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)


def run_mpiexec(args: list[str], env: dict[str, str], job_id: str, timeout: float) -> subprocess.CompletedProcess:
    """Run ``mpiexec *args`` with ``PARASOL_JOB_ID=job_id``; on timeout kill the job and raise AssertionError.

    However the wait ends (timeout, pytest-timeout, Ctrl-C), processes of the
    job still running are killed; if any were, the job's segments are removed.
    """
    argv = [find_mpiexec(), *args]
    env = dict(env, PARASOL_JOB_ID=job_id)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_job(proc, job_id)
        out, err = proc.communicate()
        removed = segment.sweep(job_id)
        raise AssertionError(f"mpiexec timed out after {timeout:g} s (removed segments: {removed}): {argv}\n"
                             f"--- stdout ---\n{out}\n--- stderr ---\n{err}") from None
    finally:
        if proc.poll() is None or job_pids(job_id):
            _kill_job(proc, job_id)
            proc.wait()
            segment.sweep(job_id)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of mpiexec: this one, plus a log of the calls to netns-exec."""
    return dict(os.environ, NETNS_EXEC_LOG=str(tmp_path / "netns-exec.log"))


def _proxy_namespaces(tmp_path: Path) -> list[str]:
    log = tmp_path / "netns-exec.log"
    return sorted(line.split()[1] for line in log.read_text().splitlines()) if log.exists() else []


def _expected_counts(path: Path) -> Counter:
    c = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        c.update(re.findall(r"[-a-zA-Z0-9_]+", line))
    return c


def _wordcount_config(tmp_path: Path, **keys) -> Path:
    return write_config(tmp_path / "wordcount.json", nworker=2, nserver=2, input=str(gensim_corpus()),
                        output=str(tmp_path / "out"), topk=0, **keys)


# ---------------------------------------------------------------- tests
def test_wordcount_on_two_hosts(hosts, tmp_path):
    """mpiexec straight: 4 ranks on 2 namespaces, interface from PARASOL_INTERFACE; exact counts."""
    cfg = _wordcount_config(tmp_path)
    job_id = segment.new_job_id()
    genv = [a for k, v in {"PARASOL_INTERFACE": "eth0", **MPI_OVER_TCP}.items() for a in ("-genv", k, v)]
    wire_before = hosts.wire_bytes()
    started = time.monotonic()
    done = run_mpiexec([*hosts.launcher_args(), "-n", str(2 * SLOTS), *genv,
                        sys.executable, str(REPO / "algs" / "wordcount.py"), "--config", str(cfg)],
                       _env(tmp_path), job_id, timeout=180)
    elapsed = time.monotonic() - started
    wire = hosts.wire_bytes() - wire_before
    assert done.returncode == 0, done.stdout + done.stderr
    assert _proxy_namespaces(tmp_path) == sorted(hosts.namespaces), "one hydra proxy per namespace"

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["nodes"] == 2, metrics
    assert (metrics["nworker"], metrics["nserver"]) == (2, 2), metrics
    assert metrics["cross_node_bytes"] > 0, metrics
    assert wire >= metrics["cross_node_bytes"], (wire, metrics)  # it really went through the veths

    expected = _expected_counts(gensim_corpus())
    assert metrics["total_words"] == sum(expected.values())
    assert metrics["distinct_words"] == len(expected)
    got = [line.split("\t") for line in (tmp_path / "out" / "topk.tsv").read_text().splitlines()]
    assert [(w, int(c)) for w, c in got] == sorted(expected.items(), key=lambda wc: (-wc[1], wc[0]))
    assert shm_leftovers(job_id) == []
    print(f"wordcount on 2 namespaces: {elapsed:.1f} s, {metrics['cross_node_bytes']:,} B between nodes, "
          f"{wire:,} B on the veths")


def test_mf_on_two_hosts_with_run_parasol(hosts, tmp_path):
    """run_parasol with a hostfile and launcher given through HYDRA_* variables; interface from the config."""
    train, test = split_ratings(movielens_100k(), tmp_path / "ml-100k")
    cfg = write_config(tmp_path / "mf.json", nworker=2, nserver=2, input=str(train), test_input=str(test),
                       output=str(tmp_path / "out"), rounds=20, k=16, alpha=0.01, beta=0.05, seed=0,
                       interface="eth0")
    env = dict(_env(tmp_path), **MPI_OVER_TCP,
               HYDRA_HOST_FILE=str(hosts.hostfile(tmp_path / "hosts")), HYDRA_LAUNCHER="ssh",
               HYDRA_LAUNCHER_EXEC=str(NETNS_EXEC), HYDRA_IFACE=hosts.bridge)
    env.pop("PARASOL_INTERFACE", None)
    started = time.monotonic()
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "mf.py")], timeout=240, cwd=REPO,
                        env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert _proxy_namespaces(tmp_path) == sorted(hosts.namespaces), "one hydra proxy per namespace"
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["nodes"] == 2, metrics
    assert metrics["cross_node_bytes"] > 0, metrics
    assert metrics["test_rmse"] <= 0.93, metrics
    job_ids = re.findall(r"run_parasol: job ([0-9a-f]+):", done.stderr)
    assert len(job_ids) == 1, done.stderr
    assert shm_leftovers(job_ids[0]) == []
    print(f"mf on 2 namespaces: {elapsed:.1f} s, test_rmse {metrics['test_rmse']:.4f}, "
          f"{metrics['cross_node_bytes']:,} B between nodes")


def test_simulate_nodes_is_refused_on_two_hosts(hosts, tmp_path):
    """simulate_nodes splits one host; on a job that already spans two hosts it is a config error."""
    cfg = _wordcount_config(tmp_path, simulate_nodes=2)
    job_id = segment.new_job_id()
    done = run_mpiexec([*hosts.launcher_args(), "-n", str(2 * SLOTS), "-genv", "PARASOL_INTERFACE", "eth0",
                        sys.executable, str(REPO / "algs" / "wordcount.py"), "--config", str(cfg)],
                       _env(tmp_path), job_id, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "simulate_nodes" in done.stderr and "several hosts" in done.stderr, done.stderr
    assert shm_leftovers(job_id) == []


def test_netns_exec_runs_commands_only_in_namespaces(hosts):
    """The launcher helper maps an address to its namespace and refuses anything else."""
    for ns, address in zip(hosts.namespaces, hosts.addresses):
        done = subprocess.run([str(NETNS_EXEC), "-x", address, "ip", "-4", "-o", "addr", "show", "dev", "eth0"],
                              check=False, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert f"inet {address}/24" in done.stdout, done.stdout
    unused = str(hosts.subnet.network_address + 99)
    for host, why in [(unused, "no network namespace"), ("localhost", "not an IPv4 address")]:
        done = subprocess.run([str(NETNS_EXEC), "-x", host, "true"], check=False, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 255 and why in done.stderr, (host, done.returncode, done.stderr)


def test_missing_interface_is_an_error_on_two_hosts(hosts, tmp_path):
    """Without 'interface' (nor PARASOL_INTERFACE) a job on several hosts must stop with a message naming it."""
    cfg = _wordcount_config(tmp_path)
    job_id = segment.new_job_id()
    env = _env(tmp_path)
    env.pop("PARASOL_INTERFACE", None)
    done = run_mpiexec([*hosts.launcher_args(), "-n", str(2 * SLOTS),
                        sys.executable, str(REPO / "algs" / "wordcount.py"), "--config", str(cfg)],
                       env, job_id, timeout=20)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "interface" in done.stderr, done.stderr
    assert shm_leftovers(job_id) == []


def test_push_to_a_remote_owner_right_after_declaring(hosts, tmp_path):
    """A table is usable on every node as soon as sparse_table()/table() returns, even if another host is slower."""
    cfg = write_config(tmp_path / "race.json", nworker=2, nserver=2, output=str(tmp_path / "out"))
    job_id = segment.new_job_id()
    done = run_mpiexec([*hosts.launcher_args(), "-n", str(2 * SLOTS), "-genv", "PARASOL_INTERFACE", "eth0",
                        sys.executable, str(REPO / "tests" / "jobs" / "netns_declare_race.py"), "--config", str(cfg)],
                       _env(tmp_path), job_id, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["nodes"], metrics["sum"], metrics["keys"]) == (2, 20, 10), metrics
    assert shm_leftovers(job_id) == []
