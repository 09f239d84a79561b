#!/usr/bin/python3
"""Which OpenBLAS kernel (core type) a program runs, in the current environment.

usage: blas_probe.py [--name] numpy | torch | exe PATH
  numpy, torch  import the module, then ask the OpenBLAS it loaded (threadpoolctl when
                installed, else openblas_get_corename through ctypes on the OpenBLAS found in
                /proc/self/maps)
  exe PATH      the OpenBLAS that the executable PATH links (ldd), loaded here through ctypes:
                same library and same environment variables as that program, so the same
                kernel (what rdmlearn and the bench drivers run)
--name prints only the kernel name (for bench_same_kernel in blas_env.sh).

Python code can also `from blas_probe import describe` (bench/rdm/anchor.py does)."""
import ctypes
import os
import subprocess
import sys


def _ctypes_info(path):
    lib = ctypes.CDLL(path)
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return {"kernel": lib.openblas_get_corename().decode(), "threads": lib.openblas_get_num_threads(),
            "config": lib.openblas_get_config().decode(), "path": path}


def _loaded_openblas():
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "openblas" in os.path.basename(p) and p.startswith("/") and p not in seen:
                seen.append(p)
    return seen


def describe():
    """The OpenBLAS this process has loaded: dict with kernel, threads, config, path."""
    try:
        import threadpoolctl
        for i in threadpoolctl.threadpool_info():
            if i.get("internal_api") == "openblas":
                return {"kernel": i.get("architecture") or "?", "threads": i.get("num_threads"),
                        "config": "OpenBLAS %s" % i.get("version"), "path": i.get("filepath")}
    except ImportError:
        pass
    for p in _loaded_openblas():
        try:
            return _ctypes_info(p)
        except (OSError, AttributeError):
            continue
    return {"kernel": "not-OpenBLAS", "threads": None, "config": "no OpenBLAS loaded", "path": None}


def describe_exe(exe):
    out = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "=>" in line and "openblas" in line:
            path = line.split("=>")[1].split("(")[0].strip()
            return _ctypes_info(path)
    return {"kernel": "not-OpenBLAS", "threads": None, "config": "links no OpenBLAS", "path": exe}


def main():
    args = sys.argv[1:]
    name_only = bool(args) and args[0] == "--name"
    if name_only:
        args = args[1:]
    if not args or args[0] not in ("numpy", "torch", "exe") or (args[0] == "exe") != (len(args) == 2):
        sys.exit(__doc__)
    if args[0] == "exe":
        info, who = describe_exe(args[1]), os.path.basename(args[1])
    else:
        __import__(args[0])
        info, who = describe(), args[0]
    if name_only:
        print(info["kernel"])
    else:
        print(f"{who} BLAS: kernel {info['kernel']}, threads {info['threads']}, {info['config']} ({info['path']})")


if __name__ == "__main__":
    main()
