"""A real single-node Slurm cluster bound to 127.0.0.1, for testing the workflow's SLURM profile.

Debian's slurm-wlm (slurmctld, slurmd, slurmdbd with accounting in MariaDB) and munge, installed
with apt-get and started from a private folder: every configuration, socket, pid, log and state
file lives under ``root``, except two runtime paths: munged's default socket in /run/munge (a
munged already running there is used instead of starting one) and the link ``/run/slurm/conf``
that slurmd makes to its cached configuration (it runs "configless", as many clusters do; removed
on stop). Nothing in /etc is edited and no system service is started. Every daemon runs in the foreground as a child of this
process, is stopped by its pid, and is killed by the kernel if this process dies first
(``PR_SET_PDEATHSIG``).

The cluster refuses to start unless ``localhost`` and this machine's host name resolve to
127.0.0.1 only, or where a Slurm is already configured or running, and it stops again if any of
its daemons listens on anything but 127.0.0.1.

It has two partitions over the one node (``ci-cpu``, the default, and ``ci-gpu``) and a fake GPU
(``gres.conf``: ``Name=gpu Type=fake File=/dev/null``), so ``sbatch --gpus=fake:1`` is scheduled
and accounted like a real GPU request while no GPU exists (the job sees CUDA_VISIBLE_DEVICES=0,
and torch finds no device and trains on the CPU).

Used by ``tools/slurm_cluster_test.py`` and ``tests/workflow/test_cluster.py``; the project's shared notes
on Slurm (SLURM.md) describe what was measured on this kind of machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server"]
PORTS = {"slurmctld": 6817, "slurmd": 6818, "slurmdbd": 6819}
LOOPBACK = "127.0.0.1"
CPU_PARTITION = "ci-cpu"
GPU_PARTITION = "ci-gpu"
GPU_TYPE = "fake"
ACCOUNT = "ci"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
CONF_CACHE = Path("/run/slurm/conf")  # where a configless slurmd links its cached configuration


class Unavailable(Exception):
    """This machine cannot host the test cluster; the message says why (tests skip with it)."""


def _run(cmd, *, timeout=60, check=True, env=None, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def _resolves_to_loopback_only(name: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except socket.gaierror:
        return False
    return addresses == {LOOPBACK}


def _munge_answers() -> bool:
    if shutil.which("munge") is None or not MUNGE_SOCKET.exists():
        return False
    result = _run(["munge", "-n", "-S", str(MUNGE_SOCKET)], check=False, timeout=10)
    return result.returncode == 0


def _listening(port: int) -> list[str]:
    """Local addresses listening on a TCP port (IPv4 and IPv6), from ``ss``."""
    result = _run(["ss", "-Hltn", f"sport = :{port}"], check=False)
    return [line.split()[3].rsplit(":", 1)[0] for line in result.stdout.splitlines() if line.strip()]


def preflight() -> None:
    """Raise Unavailable with a clear reason when this machine cannot host the cluster."""
    if platform.system() != "Linux":
        raise Unavailable(f"needs Linux, this is {platform.system()}")
    if os.geteuid() != 0:
        raise Unavailable("needs root (installs Debian packages and starts Slurm daemons)")
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        raise Unavailable("needs Debian with apt-get (installs slurm-wlm, slurmdbd, munge, mariadb)")
    for tool in ("ss", "timeout", "dpkg-query"):
        if shutil.which(tool) is None:
            raise Unavailable(f"needs '{tool}' on PATH")
    for name in ("localhost", socket.gethostname()):
        if not _resolves_to_loopback_only(name):
            raise Unavailable(
                f"'{name}' does not resolve to {LOOPBACK} only; the test cluster binds to "
                "loopback only and refuses to start otherwise"
            )
    if SYSTEM_CONF.exists():
        raise Unavailable(
            f"{SYSTEM_CONF} exists: a Slurm is configured on this machine, and srun inside the "
            "test's jobs would read it instead of the test cluster's configuration"
        )
    if CONF_CACHE.is_symlink() and not CONF_CACHE.exists():
        CONF_CACHE.unlink()  # left by an earlier run that was killed; points nowhere
    if CONF_CACHE.exists():
        raise Unavailable(f"{CONF_CACHE} exists: another configless slurmd runs on this machine")
    busy = {daemon: port for daemon, port in PORTS.items() if _listening(port)}
    if busy:
        raise Unavailable(f"ports already in use (another Slurm running?): {busy}")


def missing_packages() -> list[str]:
    missing = []
    for package in PACKAGES:
        result = _run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install_packages(timeout: float = 300) -> float:
    """apt-get install what is missing; returns the seconds it took. Unavailable if apt fails.

    Package scripts must not start system services: a ``policy-rc.d`` that denies them is put
    in place for the install when the machine has none, and removed afterwards.
    """
    missing = missing_packages()
    if not missing:
        return 0.0
    start = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\n# Temporary: no service starts while the test installs.\nexit 101\n")
        policy.chmod(0o755)
    try:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        result = _run(install, timeout=timeout, check=False, env=env)
        if result.returncode != 0:
            update = _run(["apt-get", "update", "-q"], timeout=timeout, check=False, env=env)
            result = _run(install, timeout=timeout, check=False, env=env)
            if result.returncode != 0:
                raise Unavailable(
                    f"Debian packages not reachable or not installable ({' '.join(missing)}):\n"
                    f"{update.stderr[-1000:]}\n{result.stdout[-1000:]}\n{result.stderr[-1000:]}"
                )
    except subprocess.TimeoutExpired as error:
        raise Unavailable(f"apt-get did not finish in {timeout} s: {error}") from error
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    return time.monotonic() - start


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL when the process that started us dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class LoopbackSlurm:
    """Start with ``with LoopbackSlurm() as cluster:``; ``cluster.env`` for client commands.

    ``root``: folder for its files (default: a new one under /tmp, removed on stop);
    ``logs_to``: where the daemons' logs are copied on stop.
    """

    root: Path | None = None
    logs_to: Path | None = None
    daemons: list[Daemon] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reused_munged: bool = False
    made_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self):
        # A folder of its own under /tmp unless given: MariaDB runs as user mysql and must reach
        # it, which a private scratch folder (mode 0700, like pytest's) would not allow.
        self.own_root = self.root is None
        if self.own_root:
            self.root = Path(tempfile.mkdtemp(prefix="mlip-slurm-"))
        self.root = Path(self.root).resolve()
        self.conf = self.root / "etc" / "slurm.conf"

    # -- configuration ---------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment for sbatch, squeue, sacct and for Snakemake (jobs inherit it)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _hardware(self) -> tuple[int, int]:
        fields = dict(
            item.split("=", 1)
            for item in _run(["slurmd", "-C"]).stdout.split()
            if "=" in item
        )
        return int(fields["CPUs"]), int(fields["RealMemory"])

    def write_config(self) -> None:
        root = self.root
        for sub in ("etc", "log", "run", "ctld", "spool", "dbd", "munge", "mysql", "mysql-run"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # the mysql user must reach its folders
        cpus, memory = self._hardware()
        self.conf.write_text(
            f"""# Test cluster: one node, loopback only (written by tools/loopback_slurm.py).
ClusterName=mlipci
SlurmctldHost=localhost({LOOPBACK})
SlurmctldPort={PORTS["slurmctld"]}
SlurmdPort={PORTS["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=300
ReturnToService=2
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={PORTS["slurmdbd"]}
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
StateSaveLocation={root}/ctld
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# slurmd runs "configless" (fetches this file from slurmctld, caches it under /run/slurm/conf):
# that is where srun inside a job finds it, since the executor plugin's job step drops SLURM_CONF.
SlurmctldParameters=enable_configless
NodeName=localhost NodeAddr={LOOPBACK} CPUs={cpus} RealMemory={memory} Gres=gpu:{GPU_TYPE}:1 State=UNKNOWN
PartitionName={CPU_PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes=localhost MaxTime=INFINITE State=UP
"""
        )
        (root / "etc" / "gres.conf").write_text(
            f"NodeName=localhost Name=gpu Type={GPU_TYPE} File=/dev/null\n"
        )
        dbd = root / "etc" / "slurmdbd.conf"
        dbd.write_text(
            f"""AuthType=auth/munge
DbdHost=localhost
DbdAddr={LOOPBACK}
DbdPort={PORTS["slurmdbd"]}
CommunicationParameters=NoInAddrAny
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
LogFile={root}/log/slurmdbd.log
PidFile={root}/run/slurmdbd.pid
"""
        )
        dbd.chmod(0o600)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        shutil.chown(root / "mysql", "mysql", "mysql")
        shutil.chown(root / "mysql-run", "mysql", "mysql")

    # -- daemons ---------------------------------------------------------------------------------

    def _start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Daemon:
        log = self.root / "log" / f"{name}.out"
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env or self.env,
                preexec_fn=_die_with_parent,
            )
        daemon = Daemon(name, process, log)
        self.daemons.append(daemon)
        return daemon

    def _wait(self, what: str, check, timeout: float = 30, daemon: Daemon | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if daemon is not None and daemon.process.poll() is not None:
                raise RuntimeError(
                    f"{daemon.name} exited ({daemon.process.returncode}) before {what}:\n"
                    + self.logs_tail()
                )
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n" + self.logs_tail())

    def _start_munge(self) -> None:
        """munged on its default socket: a configless slurmd authenticates before it has a
        configuration that could name another. A munged already serving there is used as it is."""
        if _munge_answers():
            self.reused_munged = True
            return
        if not MUNGE_SOCKET.parent.exists():
            MUNGE_SOCKET.parent.mkdir(mode=0o755, parents=True)
            self.made_dirs.append(MUNGE_SOCKET.parent)
        root = self.root
        munged = self._start(
            "munged",
            [
                "munged", "--foreground", "--force", f"--socket={MUNGE_SOCKET}",
                f"--key-file={root}/munge/munge.key", f"--pid-file={root}/run/munged.pid",
                f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/munged.seed",
            ],
        )
        self._wait("munged", _munge_answers, daemon=munged)

    def start(self) -> None:
        start = time.monotonic()
        self.write_config()
        root = self.root
        self._start_munge()

        mysql_socket = root / "mysql-run" / "mysqld.sock"
        _run(
            [
                "mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={root}/mysql",
                "--auth-root-authentication-method=socket", "--skip-test-db",
            ],
            timeout=120,
        )
        mariadb = self._start(
            "mariadbd",
            [
                "mariadbd", "--no-defaults", "--user=mysql", f"--datadir={root}/mysql",
                f"--socket={mysql_socket}", f"--pid-file={root}/mysql-run/mariadbd.pid",
                "--skip-networking", f"--log-error={root}/log/mariadbd.log",
            ],
        )
        self._wait("MariaDB's socket", mysql_socket.exists, daemon=mariadb)

        # slurmdbd reaches MariaDB through its unix socket (no TCP at all).
        dbd_env = {**self.env, "MYSQL_UNIX_PORT": str(mysql_socket)}
        slurmdbd = self._start("slurmdbd", ["slurmdbd", "-D"], env=dbd_env)
        self._wait("slurmdbd's port", lambda: _listening(PORTS["slurmdbd"]), daemon=slurmdbd)
        slurmctld = self._start("slurmctld", ["slurmctld", "-D", "-i"])
        self._wait("slurmctld's port", lambda: _listening(PORTS["slurmctld"]), daemon=slurmctld)
        if not CONF_CACHE.parent.exists():
            self.made_dirs.append(CONF_CACHE.parent)  # slurmd makes it
        slurmd_env = {k: v for k, v in self.env.items() if k != "SLURM_CONF"}
        slurmd = self._start(
            "slurmd",
            ["slurmd", "-D", "-N", "localhost", "--conf-server", f"{LOOPBACK}:{PORTS['slurmctld']}"],
            env=slurmd_env,
        )
        self._wait("slurmd's port", lambda: _listening(PORTS["slurmd"]), daemon=slurmd)
        self.check_loopback_only()

        def node_idle() -> bool:
            result = _run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, check=False)
            return result.returncode == 0 and "idle" in result.stdout

        self._wait("the node to be idle", node_idle, timeout=60)
        self.timings["daemons_up_s"] = time.monotonic() - start
        self._add_account()

    def _add_account(self) -> None:
        """An account for root, so the profile's slurm_account path is exercised too."""

        def sacctmgr(*args):
            return _run(["sacctmgr", "-i", *args], env=self.env, check=False)

        def registered() -> bool:
            return ACCOUNT in sacctmgr("-n", "list", "account", "format=account").stdout

        self._wait(
            "the cluster to register in slurmdbd",
            lambda: "mlipci" in sacctmgr("-n", "list", "cluster", "format=cluster").stdout,
        )
        sacctmgr("add", "account", ACCOUNT, "Description=test", "Organization=ci")
        sacctmgr("add", "user", "root", f"Account={ACCOUNT}")
        self._wait("the account", registered)

    def check_loopback_only(self) -> None:
        """Stop everything and fail if a daemon of ours listens beyond 127.0.0.1."""
        wrong = {
            daemon: addresses
            for daemon, port in PORTS.items()
            if (addresses := [a for a in _listening(port) if a != LOOPBACK])
        }
        if wrong:
            self.stop()
            raise RuntimeError(f"refusing to run: listening beyond {LOOPBACK}: {wrong}")

    def cancel_all_jobs(self, timeout: float = 30) -> None:
        if not any(d.name == "slurmctld" and d.process.poll() is None for d in self.daemons):
            return
        _run(["scancel", "--user", "root"], env=self.env, check=False)

        def queue_empty() -> bool:
            result = _run(["squeue", "-h"], env=self.env, check=False)
            return result.returncode != 0 or not result.stdout.strip()

        try:
            self._wait("cancelled jobs to leave the queue", queue_empty, timeout=timeout)
        except RuntimeError:
            pass

    def stop(self, timeout: float = 20) -> None:
        """Cancel jobs, then stop every daemon this object started, by pid, newest first."""
        self.cancel_all_jobs()
        for daemon in reversed(self.daemons):
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
                try:
                    daemon.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    daemon.process.kill()
                    daemon.process.wait(timeout=timeout)
        self.daemons.clear()
        if CONF_CACHE.is_symlink() and str(self.root) in os.readlink(CONF_CACHE):
            CONF_CACHE.unlink()
        for folder in self.made_dirs:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        self.made_dirs.clear()
        if self.logs_to is not None and (self.root / "log").is_dir():
            shutil.copytree(self.root / "log", self.logs_to, dirs_exist_ok=True)
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def logs_tail(self, lines: int = 15) -> str:
        parts = []
        for log in sorted((self.root / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def __enter__(self) -> LoopbackSlurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------------------------

    def sacct(self, job_id: str, fields: str = "JobID,State,ExitCode,AllocTRES%80") -> list[dict]:
        """Accounting records of one job (allocation line only)."""
        result = _run(
            ["sacct", "-X", "-n", "-P", "-j", job_id, f"--format={fields}"], env=self.env
        )
        names = [name.split("%")[0] for name in fields.split(",")]
        return [dict(zip(names, line.split("|"))) for line in result.stdout.splitlines() if line]
