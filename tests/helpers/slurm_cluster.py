"""A throw-away single-node SLURM cluster on this machine, for tests.

`SlurmCluster(root).start()` installs the Debian packages if they are missing
(slurmctld, slurmd, slurm-client, munge; needs root and apt-get), writes a
munge key and a slurm.conf under `root`, and starts munged, slurmctld and
slurmd by hand: the package scripts cannot start them without systemd. The
settings are the ones seen working on these machines (docs/cluster.md): no cgroups (proctrack/linuxproc, task/none), no
accounting database (so `sacct` does not work and the Snakemake plugin must
poll with `squeue`), a job completion log (jobcomp/filetxt) that tells which
jobs ran and how they ended, DefMemPerCPU so that one job does not take the
whole node's memory.

Everything is private to `root`: munged listens on its own socket (not
/run/munge), the daemons use ports 16817/16818, state and logs live under
`root`. So a system SLURM or munge, if any, is left alone, and leftovers of an
earlier run (same `root`) are found by their pid files and ended before a new
start. `stop()` runs `scontrol shutdown` and ends munged by its pid file.
The ports and /etc/slurm/slurm.conf allow one such cluster per machine: a lock
file (/tmp/wmmt-slurm-cluster.lock, held from start to stop) makes a second test
process wait for the first one instead of tearing its cluster down; whoever holds
it also ends a leftover cluster of another root (found through the conf link).

Every failure to get a working cluster raises `SlurmUnavailable` with the
reason, so a test can skip with a clear message. Clients (sbatch, squeue,
scontrol, the Snakemake SLURM plugin) find the cluster through the
environment in `cluster.env()` (SLURM_CONF).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged", "munge", "unmunge")
# Inside a job, the Snakemake jobstep plugin calls `srun` with every SLURM_* variable removed
# (SLURM_CONF included), so srun only finds the default path: link it to our private conf.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
CTLD_PORT = 16817
SLURMD_PORT = 16818
NODE_NAME = "wmmtnode"
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full")
# One test cluster per machine (fixed ports, /etc/slurm/slurm.conf): one lock for all roots.
LOCK_PATH = Path("/tmp/wmmt-slurm-cluster.lock")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why."""


def _run(cmd: list[str], timeout: float, env: dict | None = None, check: bool = True,
         input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run a command under `timeout -k` so that nothing here can hang a test."""
    full = ["timeout", "-k", "5", str(int(timeout)), *cmd]
    proc = subprocess.run(full, capture_output=True, text=True, env=env, input=input_text)
    if check and proc.returncode != 0:
        raise SlurmUnavailable(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}"
        )
    return proc


def ensure_installed(timeout: float = 300) -> None:
    """Install the SLURM and munge Debian packages when a binary is missing (root and apt-get needed)."""
    if all(shutil.which(b) for b in BINARIES):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("SLURM is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable("SLURM is not installed and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], timeout=timeout, env=env)
    _run(["apt-get", "install", "-y", "-qq", *PACKAGES], timeout=timeout, env=env)
    missing = [b for b in BINARIES if not shutil.which(b)]
    if missing:
        raise SlurmUnavailable(f"apt-get installed {PACKAGES} but these are still missing: {missing}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _end_pid(pid: int, grace: float = 5.0) -> None:
    """SIGTERM one process we started, then SIGKILL if it is still there after `grace` seconds."""
    if not _pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line names `marker` (our private conf or socket path): our own leftovers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def _mem_total_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise SlurmUnavailable("cannot read MemTotal from /proc/meminfo")


class SlurmCluster:
    """One slurmctld + one slurmd + one munged, all private to the folder `root`.

    cpus: the CPUs the node announces. It may exceed the real cores
    (SlurmdParameters=config_overrides), so that a profile written for a GPU
    node (e.g. 9 CPUs per extraction job) is accepted on a 2-core test machine;
    the jobs then share the real cores.
    partitions: names of the partitions, all on the one node; the first is the default.
    gpus: stand-in GPU GRES the node announces (no GPU behind them, at most 3): lets a test
    check that GPU jobs ask for and get a GPU (`--gpus`, `--gres`) without having one.
    """

    def __init__(self, root: Path, cpus: int = 16, partitions: tuple[str, ...] = ("cpu",),
                 gpus: int = 0, mem_fraction: float = 0.9, min_job_age: int = 300):
        self.root = Path(root)
        self.cpus = cpus
        self.gpus = gpus
        self.partitions = tuple(dict.fromkeys(partitions))  # unique, order kept
        self.mem_fraction = mem_fraction
        self.min_job_age = min_job_age
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.munge_dir / "munge.socket"
        self.munge_pid = self.munge_dir / "munged.pid"
        self.ctld_pid = self.root / "run" / "slurmctld.pid"
        self.slurmd_pid = self.root / "run" / "slurmd.pid"
        self.jobcomp = self.root / "log" / "jobcomp.txt"
        self.lock_path = LOCK_PATH
        self._lock = None
        self.started = False

    # -- environment for clients ------------------------------------------------------------
    def env(self, base: dict | None = None) -> dict:
        """The environment a SLURM client needs to talk to this cluster (and only to it)."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        return env

    # -- start / stop ------------------------------------------------------------------------
    def acquire(self, wait: float) -> None:
        """Take the machine-wide test-cluster lock, waiting up to `wait` s for another test process."""
        self._lock = open(self.lock_path, "w")  # held open until release()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.release()
                    raise SlurmUnavailable(
                        f"another process has held the test cluster ({self.lock_path}) for over {wait:.0f} s"
                    ) from None
                time.sleep(1.0)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def start(self, timeout: float = 60, lock_wait: float = 420) -> SlurmCluster:
        """Install if needed, take the lock, clean leftovers, start the daemons, wait for the node."""
        if os.geteuid() != 0:
            raise SlurmUnavailable("starting slurmctld/slurmd/munged needs root")
        self.acquire(lock_wait)
        try:
            ensure_installed()  # under the lock: two apt-get runs at once would fail on apt's own lock
            try:
                pwd.getpwnam("munge")
            except KeyError as exc:
                raise SlurmUnavailable("the munge package did not create the 'munge' user") from exc
            self._stop_linked_leftover()
            self.stop()  # leftovers of an earlier run with the same root
            if self.root.exists():
                shutil.rmtree(self.root)
            self._write_files()
            self._link_system_conf()
            self._start_munge(timeout)
            self._start_slurm(timeout)
        except SlurmUnavailable:
            self.stop()
            self.release()
            raise
        except Exception as exc:  # anything unexpected while starting: clean up, report as unavailable
            self.stop()
            self.release()
            raise SlurmUnavailable(f"starting SLURM failed: {exc!r}") from exc
        self.started = True
        return self

    def stop(self) -> None:
        """Cancel our jobs, `scontrol shutdown`, end munged; then end whatever of ours is still running."""
        env = self.env()
        if self.conf.exists() and shutil.which("scontrol"):
            if shutil.which("scancel") and self.ctld_pid.exists():
                _run(["scancel", "--full", "--user", pwd.getpwuid(os.getuid()).pw_name],
                     timeout=15, env=env, check=False)
            _run(["scontrol", "shutdown"], timeout=15, env=env, check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                pids = [_read_pid(p) for p in (self.ctld_pid, self.slurmd_pid)]
                if not any(p and _pid_alive(p) for p in pids):
                    break
                time.sleep(0.2)
        for pid_file in (self.ctld_pid, self.slurmd_pid, self.munge_pid):
            pid = _read_pid(pid_file)
            if pid:
                _end_pid(pid)
        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
            SYSTEM_CONF.unlink()
        # Daemons or job steps that lost their pid file but still name our private paths.
        for marker in (str(self.conf), str(self.munge_socket)):
            for pid in _pids_using(marker):
                _end_pid(pid, grace=2.0)
        self.started = False

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.release()

    # -- inspection --------------------------------------------------------------------------
    def jobcomp_records(self) -> list[dict[str, str]]:
        """The job completion log (jobcomp/filetxt): one dict per finished job (JobId, JobName, JobState...)."""
        if not self.jobcomp.exists():
            return []
        records = []
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields:
                records.append(fields)
        return records

    def logs(self) -> str:
        """The tail of each daemon's log, for failure messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / "log" / name
            if path.exists():
                parts.append(f"--- {path} ---\n" + "\n".join(path.read_text().splitlines()[-25:]))
        log = self.munge_dir / "munged.log"
        if log.exists():
            parts.append(f"--- {log} ---\n" + "\n".join(log.read_text().splitlines()[-10:]))
        return "\n".join(parts)

    # -- internals ---------------------------------------------------------------------------
    def _write_files(self) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        munge = pwd.getpwnam("munge")
        self.munge_dir.mkdir()
        self.munge_dir.chmod(0o755)  # clients need to reach the socket; the key itself stays 0400
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (self.munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)

        real_mb = int(_mem_total_mb() * self.mem_fraction)
        # DefMemPerCPU: without it a job that asks for no memory gets the whole node.
        def_mem = max(256, real_mb // max(1, self.cpus))
        host = socket.gethostname()
        lines = [
            "# Written by tests/helpers/slurm_cluster.py: a private single-node test cluster.",
            "ClusterName=wmmttest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={CTLD_PORT}",
            f"SlurmdPort={SLURMD_PORT}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.ctld_pid}",
            f"SlurmdPidFile={self.slurmd_pid}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            # No cgroups in a container: track processes through /proc, no task binding.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp}",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={def_mem}",
            "MailProg=/bin/true",
            "MpiDefault=none",
            # squeue (the plugin's status command here) sees finished jobs for this long.
            f"MinJobAge={self.min_job_age}",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            # Announce the configured CPUs even where the machine has fewer cores.
            "SlurmdParameters=config_overrides",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=5",
        ]
        gres = ""
        if self.gpus:
            # Stand-in GPUs: slurmd only counts GRES that have a device file, so harmless
            # character devices play the GPUs (nothing binds them: TaskPlugin is task/none).
            if self.gpus > len(FAKE_GPU_FILES):
                raise SlurmUnavailable(f"at most {len(FAKE_GPU_FILES)} stand-in GPUs, not {self.gpus}")
            files = ",".join(FAKE_GPU_FILES[: self.gpus])
            lines += ["GresTypes=gpu"]
            gres = f" Gres=gpu:{self.gpus}"
            (self.root / "gres.conf").write_text(f"NodeName={NODE_NAME} Name=gpu File={files}\n")
        lines.append(f"NodeName={NODE_NAME} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={self.cpus} "
                     f"RealMemory={real_mb}{gres} State=UNKNOWN")
        for i, name in enumerate(self.partitions):
            default = "YES" if i == 0 else "NO"
            lines.append(f"PartitionName={name} Nodes={NODE_NAME} Default={default} MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    def _stop_linked_leftover(self) -> None:
        """A test cluster of another root left running (its conf still linked): end it, we hold the lock."""
        if not SYSTEM_CONF.is_symlink():
            return
        target = Path(os.readlink(SYSTEM_CONF))
        if target != self.conf and target.name == "slurm.conf" and (target.parent / "munge").is_dir():
            SlurmCluster(target.parent).stop()

    def _link_system_conf(self) -> None:
        """Point /etc/slurm/slurm.conf at our conf; refuse to touch a real one."""
        if SYSTEM_CONF.is_symlink():
            target = Path(os.readlink(SYSTEM_CONF))
            if target.name == "slurm.conf" and (target.parent / "munge").is_dir() and not target.exists():
                SYSTEM_CONF.unlink()  # a dangling link left by an earlier test cluster
            elif target != self.conf:
                raise SlurmUnavailable(f"{SYSTEM_CONF} links to {target}, not ours; not touching it")
        if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
            raise SlurmUnavailable(f"{SYSTEM_CONF} exists (a real SLURM here?); not touching it")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if not SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.symlink_to(self.conf)

    def _start_munge(self, timeout: float) -> None:
        munged = shutil.which("munged")
        cmd = [
            "runuser", "-u", "munge", "--", munged,
            f"--socket={self.munge_socket}",
            f"--key-file={self.munge_dir / 'munge.key'}",
            f"--pid-file={self.munge_pid}",
            f"--log-file={self.munge_dir / 'munged.log'}",
            f"--seed-file={self.munge_dir / 'munged.seed'}",
            "--force",
        ]
        _run(cmd, timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            cred = _run(["munge", "-n", f"--socket={self.munge_socket}"], timeout=10, check=False)
            if cred.returncode == 0:
                check = _run(["unmunge", f"--socket={self.munge_socket}"], timeout=10, check=False,
                             input_text=cred.stdout)
                if check.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"munged does not answer: {cred.stderr.strip()}\n{self.logs()}")
            time.sleep(0.3)

    def _start_slurm(self, timeout: float) -> None:
        env = self.env()
        _run([shutil.which("slurmctld"), "-f", str(self.conf)], timeout=30, env=env)
        _run([shutil.which("slurmd"), "-f", str(self.conf), "-N", NODE_NAME], timeout=30, env=env)
        started = time.monotonic()
        deadline = started + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, pid_file in (("slurmctld", self.ctld_pid), ("slurmd", self.slurmd_pid)):
                # A daemon that died at start-up (bad config, port taken) fails fast.
                pid = _read_pid(pid_file)
                died = pid_file.exists() and not (pid and _pid_alive(pid))
                never_came = not pid_file.exists() and time.monotonic() > started + 10
                if died or never_came:
                    raise SlurmUnavailable(f"{name} is not running\n{self.logs()}")
            proc = _run(["sinfo", "--noheader", "-N", "-o", "%t"], timeout=10, env=env, check=False)
            state = proc.stdout.strip()
            if proc.returncode == 0 and state and all(s.rstrip("*") in ("idle", "mix", "alloc")
                                                      for s in state.split()):
                return
            if any(s.startswith(("drain", "down", "fail")) for s in state.split()):
                # A node that comes up drained (e.g. after an unclean earlier run) is resumed once.
                _run(["scontrol", "update", f"NodeName={NODE_NAME}", "State=RESUME"], timeout=10, env=env,
                     check=False)
            time.sleep(0.5)
        raise SlurmUnavailable(f"the SLURM node did not become idle (state {state!r})\n{self.logs()}")


def submit_and_wait(cluster: SlurmCluster, script: str, timeout: float = 60) -> dict[str, str]:
    """Submit a batch script, wait until the job leaves the queue; return its jobcomp record."""
    env = cluster.env()
    proc = _run(["sbatch", "--parsable", "--wrap", script, "-o", "/dev/null"], timeout=15, env=env)
    job_id = proc.stdout.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in cluster.jobcomp_records():
            if rec.get("JobId") == job_id:
                return rec
        time.sleep(0.3)
    raise SlurmUnavailable(f"job {job_id} did not finish within {timeout} s\n{cluster.logs()}")


if __name__ == "__main__":  # manual check: python -m tests.helpers.slurm_cluster
    c = SlurmCluster(Path("/tmp/wmmt-slurm-manual"), partitions=("cpu", "gpu"))
    try:
        c.start()
        print("started; SLURM_CONF =", c.conf)
        print(submit_and_wait(c, "hostname"))
    finally:
        c.stop()
        c.release()
        print("stopped")
