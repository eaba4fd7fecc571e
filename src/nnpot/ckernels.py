"""Compile-on-first-use C kernels (plain C + OpenMP, loaded with ctypes).

The hot loops that eager PyTorch runs as many small passes over memory (the triplet G4 sums,
the committee pullback) have hand-written C versions in ``nnpot/_csrc/*.c``. They
are compiled once per machine with the system C compiler (``$CC``, else ``cc``) into a cache
folder and loaded with :mod:`ctypes`; torch tensors are passed by ``data_ptr()``.

Everything has a pure-torch fallback: :func:`load` returns ``None`` (and warns once) when no
compiler is found, the compilation fails, or ``NNPOT_NO_CKERNELS=1``, and callers then take
their torch path. The C kernels are never used on a GPU or when a graph for higher
derivatives is needed (training on forces): those stay in torch.

Cache: ``$NNPOT_KERNEL_CACHE`` or ``~/.cache/nnpot/kernels`` (a temporary folder if that is
not writable). The file name holds a hash of the source, the flags, the compiler's version and
the CPU model, so an edited source, another compiler or another CPU (``-march=native``) gets
its own build; builds are written to a temporary name and renamed, so concurrent processes
(pytest-xdist workers) never load a half-written library.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

SOURCE_DIR = Path(__file__).with_name("_csrc")
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-std=c11"]
OPENMP = ["-fopenmp"]
_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}


def disabled() -> bool:
    """True when ``NNPOT_NO_CKERNELS`` is set to a true value (1, yes, true)."""
    return os.environ.get("NNPOT_NO_CKERNELS", "").strip().lower() in {"1", "yes", "true"}


def cache_dir() -> Path:
    """The folder holding compiled kernels (created if missing)."""
    env = os.environ.get("NNPOT_KERNEL_CACHE")
    d = Path(env) if env else Path.home() / ".cache" / "nnpot" / "kernels"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = Path(tempfile.gettempdir()) / f"nnpot-kernels-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build(name: str, cc: str) -> Path:
    src = SOURCE_DIR / f"{name}.c"
    # the source and every shared header of _csrc (kmath.h) form the cache key
    code = src.read_bytes() + b"".join(h.read_bytes() for h in sorted(SOURCE_DIR.glob("*.h")))
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    errors = []
    for extra in (OPENMP, []):
        flags = FLAGS + extra
        key = hashlib.sha256(code + " ".join(flags).encode() + version.encode()
                             + _cpu_model().encode() + platform.machine().encode())
        out = cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"
        if out.is_file():
            return out
        tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        res = subprocess.run([cc, *flags, str(src), "-o", str(tmp), "-lm"],
                             capture_output=True, text=True)
        if res.returncode == 0:
            os.replace(tmp, out)
            return out
        tmp.unlink(missing_ok=True)
        errors.append(res.stderr.strip()[-600:])
    raise RuntimeError("; ".join(errors))


def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel library ``_csrc/<name>.c`` (built on first use), or ``None`` when
    C kernels are disabled or cannot be built here (a warning says why, once per name)."""
    if disabled():
        return None
    with _lock:
        if name in _loaded:
            return _loaded[name]
        lib = None
        cc = _compiler()
        if cc is None:
            warnings.warn(f"nnpot: no C compiler found, kernel '{name}' runs in torch "
                          "(slower); install gcc or set CC", RuntimeWarning, stacklevel=2)
        else:
            try:
                lib = ctypes.CDLL(str(_build(name, cc)))
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                warnings.warn(f"nnpot: could not build C kernel '{name}' ({exc}); using the "
                              "torch path (slower)", RuntimeWarning, stacklevel=2)
        _loaded[name] = lib
        return lib


_functions: dict[tuple, object] = {}


def function(name: str, symbol: str, argtypes: list, restype=ctypes.c_int):
    """The C function ``symbol`` of kernel library ``name`` with its ctypes signature set
    (cached), or ``None`` when C kernels are disabled or the library cannot be built."""
    if disabled():
        return None
    key = (name, symbol)
    if key not in _functions:
        lib = load(name)
        fn = None
        if lib is not None:
            fn = getattr(lib, symbol)
            fn.argtypes, fn.restype = argtypes, restype
        _functions[key] = fn
    return _functions[key]


def ptr(t) -> ctypes.c_void_p:
    """The data pointer of a contiguous CPU tensor, for a ctypes call."""
    if t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError("C kernels take contiguous CPU tensors")
    return ctypes.c_void_p(t.data_ptr())


# Large per-call outputs of the kernels. glibc serves a block above its mmap threshold
# (dynamic, at most 32 MiB on 64-bit) from a fresh anonymous mapping and unmaps it on free
# (and trims a heap whose free top grows past twice the threshold), so a call's first touch
# of such a block takes one page fault per 4 KiB page: at 66k water atoms (float64, 1
# thread) ~56k faults, ~100 ms of a ~600 ms energy + forces, where writing the same bytes
# takes a few ms. Blocks of at least HUGE_MIN_BYTES come from their own mapping advised for
# transparent huge pages instead (MADV_HUGEPAGE, 2 MiB-aligned): ~500x fewer faults.
HUGE_MIN_BYTES = 8 << 20
_HUGE = 2 << 20  # bytes in one huge page (x86-64, arm64 with 4 KiB base pages)


def empty(shape, dtype, device=None):
    """``torch.empty(shape, dtype=dtype, device=device)``; on the CPU a block of at least
    :data:`HUGE_MIN_BYTES` comes from its own anonymous mapping advised for transparent
    huge pages (Linux; elsewhere, or when the mapping fails, plain ``torch.empty``). The
    mapping is released when the last tensor using its memory is freed."""
    import mmap

    import torch

    shape = tuple(int(s) for s in shape)
    nbytes = torch.Size(shape).numel() * dtype.itemsize
    if (device is not None and torch.device(device).type != "cpu") \
            or nbytes < HUGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype, device=device)
    try:
        m = mmap.mmap(-1, nbytes + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(m, dtype=torch.uint8)  # keeps m alive as long as its storage
    off = -raw.data_ptr() % _HUGE
    return raw[off:off + nbytes].view(dtype).view(shape)
