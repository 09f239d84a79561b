"""Run the rdmlearn command-line program from Python."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import lru_cache

from ._results import Results

__all__ = ["run", "find_binary", "RdmlearnError", "EXIT_CODES"]

#: The CLI's exit codes (README.md).
EXIT_CODES = {
    0: "success",
    3: "usage (bad command line)",
    4: "configuration (unknown key, malformed or out-of-range value)",
    5: "I/O (missing or unwritable file)",
    6: "format (malformed .npy, pickle, PNG, HDF5)",
    7: "data (missing subject or ROI, unusable values)",
    8: "out of memory",
    9: "MPI failure",
    10: "cancelled by a signal",
    11: "internal error (a bug: please report it)",
}


class RdmlearnError(RuntimeError):
    """The rdmlearn program failed.

    Attributes
    ----------
    message : str
        rdmlearn's error message (its stderr without mpirun's banners), naming the file,
        key or value and a fix.
    exit_code : int or None
        The program's exit status (README.md: 4 configuration, 5 I/O, 6 format, 7 data,
        8 out of memory, 9 MPI, 10 cancelled, 11 internal); negative: killed by that
        signal; None: the program could not be started.
    kind : str
        What the exit code means, e.g. "configuration (...)".
    stderr, stdout : str
        Everything the program printed.
    command : list of str
        The command line that ran.
    """

    def __init__(self, message, exit_code=None, stderr="", stdout="", command=()):
        self.message = message
        self.exit_code = exit_code
        self.kind = EXIT_CODES.get(exit_code, "") if exit_code is not None else "not started"
        self.stderr = stderr
        self.stdout = stdout
        self.command = list(command)
        head = f"rdmlearn failed (exit code {exit_code}: {self.kind})" if exit_code is not None else "rdmlearn failed"
        super().__init__(f"{head}:\n{message}" if message else head)


def _is_executable(p):
    return p and os.path.isfile(p) and os.access(p, os.X_OK)


def find_binary(binary=None) -> str:
    """The rdmlearn executable: ``binary`` if given, else ``$RDMLEARN``, else ``rdmlearn`` on
    PATH, else the build tree of the checkout this package lives in (``build/rdmlearn``),
    else ``./build/rdmlearn``. Raises FileNotFoundError saying how to point at it."""
    tried = []
    if binary is not None:
        b = shutil.which(os.fspath(binary)) or os.fspath(binary)
        if _is_executable(b):
            return os.path.abspath(b)
        raise FileNotFoundError(f"binary={binary!r}: not an executable file")
    env = os.environ.get("RDMLEARN")
    if env:
        if _is_executable(env):
            return os.path.abspath(env)
        raise FileNotFoundError(f"RDMLEARN={env!r}: not an executable file (unset it or point it at build/rdmlearn)")
    on_path = shutil.which("rdmlearn")
    if on_path:
        return on_path
    tried.append("rdmlearn on PATH")
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "build", "rdmlearn"), os.path.join(os.getcwd(), "build", "rdmlearn")):
        cand = os.path.normpath(cand)
        if _is_executable(cand):
            return cand
        tried.append(cand)
    raise FileNotFoundError("rdmlearn executable not found (tried " + ", ".join(tried) + "); build it "
                            "(bash tools/setup.sh) and pass binary=... or set RDMLEARN=/path/to/build/rdmlearn")


@lru_cache(maxsize=8)
def _is_open_mpi(mpirun):
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in out.stdout + out.stderr or "OpenRTE" in out.stdout + out.stderr


def _physical_cores():
    """Physical cores (what Open MPI counts as slots), best effort."""
    try:
        cores = set()
        phys = core = None
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                elif not line.strip():
                    if core is not None:
                        cores.add((phys, core))
                    phys = core = None
        if core is not None:
            cores.add((phys, core))
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


def _value_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(_value_text(x) for x in v)
    if v is None:
        return ""
    return str(os.fspath(v)) if isinstance(v, os.PathLike) else str(v)


def _override_args(settings, overrides):
    """--set arguments from a dict {"section.key": value} and kwargs section__key=value."""
    items = []
    for k, v in (settings or {}).items():
        if "." not in k:
            raise ValueError(f"settings key {k!r}: expected 'section.key', e.g. 'data.root'")
        items.append((k, v))
    for k, v in overrides.items():
        if "__" not in k:
            raise TypeError(f"run() got an unexpected keyword argument {k!r}: configuration overrides are "
                            f"written section__key=value, e.g. data__root='/data' (or settings={{'data.root': ...}})")
        sec, key = k.split("__", 1)
        items.append((f"{sec}.{key}", v))
    args = []
    for k, v in items:
        args += ["--set", f"{k}={_value_text(v)}"]
    return args


def _write_job(config, directory):
    """A job INI file from {section: {key: value}}."""
    lines = []
    for sec, keys in config.items():
        if not isinstance(keys, dict):
            raise TypeError(f"config[{sec!r}]: expected a dict of key -> value (one per INI section)")
        lines.append(f"[{sec}]")
        lines += [f"{k} = {_value_text(v)}" for k, v in keys.items()]
        lines.append("")
    fd, path = tempfile.mkstemp(prefix="rdmlearn-job-", suffix=".ini", dir=directory)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))
    return path


def _clean_stderr(text):
    """rdmlearn's own lines: drop mpirun's dashed banner blocks and repeated lines (every
    rank may print the same error)."""
    out, in_banner, seen = [], False, set()
    for line in text.splitlines():
        if line.startswith("-----"):
            in_banner = not in_banner
            continue
        if in_banner or not line.strip() or line in seen:
            continue
        seen.add(line)
        out.append(line)
    return "\n".join(out)


def _pump(src, sink, buf):
    for line in iter(src.readline, ""):
        buf.append(line)
        if sink is not None:
            sink.write(line)
            sink.flush()
    src.close()


def _execute(cmd, cwd, env, verbose, timeout):
    try:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace")
    except OSError as exc:
        raise RdmlearnError(f"cannot start {cmd[0]}: {exc}", None, command=cmd) from exc
    out, err = [], []
    threads = [threading.Thread(target=_pump, args=(p.stdout, sys.stdout if verbose else None, out), daemon=True),
               threading.Thread(target=_pump, args=(p.stderr, sys.stderr if verbose else None, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        rc = p.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        p.terminate()  # SIGTERM: rdmlearn finishes the tasks in progress, journals them, exits 10
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        raise
    finally:
        for t in threads:
            t.join()
    return rc, "".join(out), "".join(err)


def run(job_or_config, ranks=2, output=None, mpirun=None, binary=None, settings=None, args=(),
        cwd=None, verbose=False, timeout=None, **overrides) -> Results:
    """Run ``rdmlearn run JOB`` under MPI and return its :class:`Results`.

    Parameters
    ----------
    job_or_config : str, os.PathLike or dict
        A job INI file (``jobs/demo.ini``), or the job itself as ``{section: {key: value}}``
        (written to a temporary INI file; its relative ``experiments``/``include`` paths are
        then relative to the temporary directory, so give absolute ones).
    ranks : int
        MPI ranks (``mpirun -n ranks``). Results do not depend on it.
    output : str or os.PathLike, optional
        ``run.output``, the results file. Default: the job's ``run.output`` (relative to
        ``cwd``).
    mpirun : str or False, optional
        The MPI launcher (default ``$MPIEXEC``, else mpirun, else mpiexec on PATH); False
        runs the binary directly (one rank, MPI singleton). With Open MPI,
        ``--allow-run-as-root`` is added when running as root and ``--oversubscribe`` when
        ``ranks`` exceeds the physical cores.
    binary : str, optional
        The rdmlearn executable (default: :func:`find_binary`: ``$RDMLEARN``, PATH, the build
        tree).
    settings : dict, optional
        Overrides ``{"section.key": value}``, e.g. ``{"data.root": "/data/algonauts"}``.
    **overrides
        The same as keywords, ``section__key=value``: ``data__root="/data"``,
        ``pairs__k=20``, ``data__rois=["V1", "class:Faces"]`` (lists are joined with commas,
        booleans become true/false). Applied after ``settings``; each becomes
        ``--set section.key=value``, the last word on that key (docs/run.md).
    args : sequence of str
        More command-line arguments, e.g. ``["--force"]``, ``["--until", "embed"]``.
    cwd : str, optional
        Working directory of the run (default: the current one).
    verbose : bool
        Echo the program's output while it runs (it is captured either way).
    timeout : float, optional
        Seconds; on expiry the run is stopped with SIGTERM (finished tasks stay in the
        journal, a rerun continues) and ``subprocess.TimeoutExpired`` is raised.

    Returns
    -------
    Results
        The results file (``Results.log`` holds the program's stdout and stderr).

    Raises
    ------
    RdmlearnError
        The program failed: ``.exit_code`` (4 configuration, 5 I/O, ...) and ``.message``
        (rdmlearn's message, naming the file, key or value and a fix).
    FileNotFoundError
        No rdmlearn executable or MPI launcher.
    """
    sets = _override_args(settings, overrides)
    exe = find_binary(binary)
    cwd = os.path.abspath(cwd or os.getcwd())
    tmpdir = None
    if isinstance(job_or_config, dict):
        tmpdir = tempfile.mkdtemp(prefix="rdmlearn-")
        job = _write_job(job_or_config, tmpdir)
    else:
        job = os.path.abspath(os.path.join(cwd, os.fspath(job_or_config)))
        if not os.path.isfile(job):
            raise FileNotFoundError(f"job file {job!r} not found")
    if output is not None:
        output = os.path.abspath(os.path.join(cwd, os.fspath(output)))
        sets += ["--set", f"run.output={output}"]
    try:
        if int(ranks) < 1:
            raise ValueError(f"ranks={ranks!r}: expected at least 1")
        if mpirun is False:
            if int(ranks) != 1:
                raise ValueError("mpirun=False runs a single process: use ranks=1")
            launcher = []
        else:
            m = mpirun or os.environ.get("MPIEXEC") or shutil.which("mpirun") or shutil.which("mpiexec")
            if not m or not shutil.which(m):
                raise FileNotFoundError("no MPI launcher (mpirun) found: install openmpi-bin, pass mpirun=..., "
                                        "or mpirun=False for one rank")
            launcher = [shutil.which(m)]
            if _is_open_mpi(launcher[0]):
                if hasattr(os, "geteuid") and os.geteuid() == 0:
                    launcher.append("--allow-run-as-root")
                if int(ranks) > _physical_cores():
                    launcher.append("--oversubscribe")
            launcher += ["-n", str(int(ranks))]
        cmd = launcher + [exe, "run", job] + sets + [str(a) for a in args]
        rc, out, err = _execute(cmd, cwd, dict(os.environ), verbose, timeout)
        if rc != 0:
            raise RdmlearnError(_clean_stderr(err) or _clean_stderr(out), rc, err, out, cmd)
        if output is None:  # the job's run.output, as the program resolves it
            cfg = subprocess.run([exe, "config", "--config", job] + sets, cwd=cwd, capture_output=True, text=True)
            if cfg.returncode != 0:
                raise RdmlearnError(_clean_stderr(cfg.stderr), cfg.returncode, cfg.stderr, cfg.stdout,
                                    [exe, "config", "--config", job] + sets)
            output = _run_output(cfg.stdout, cwd)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    res = Results(output)
    res.log = out + err
    res.command = cmd
    return res


def _run_output(config_text, cwd):
    section = None
    for line in config_text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip()
        elif section == "run" and "=" in s and s.split("=", 1)[0].strip() == "output":
            v = s.split("=", 1)[1].strip().strip('"')
            return os.path.abspath(os.path.join(cwd, v or "results.h5"))
    return os.path.join(cwd, "results.h5")
