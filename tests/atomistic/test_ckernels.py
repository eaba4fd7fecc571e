"""The compile-on-first-use C kernel loader: builds, caches, falls back with a warning."""

import ctypes

import pytest
import torch

from nnpot import ckernels

DOT = """
#include <stddef.h>
double dot(const double *a, const double *b, long n) {
    double s = 0.0;
    for (long i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}
"""


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.setattr(ckernels, "SOURCE_DIR", src)
    monkeypatch.setattr(ckernels, "_loaded", {})
    monkeypatch.setenv("NNPOT_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNPOT_NO_CKERNELS", raising=False)
    return src


def test_builds_caches_and_computes(sandbox):
    if ckernels._compiler() is None:
        pytest.skip("no C compiler on this machine")
    (sandbox / "dot.c").write_text(DOT)
    lib = ckernels.load("dot")
    assert lib is not None
    lib.dot.restype = ctypes.c_double
    a = torch.arange(5, dtype=torch.float64)
    b = torch.linspace(-1, 1, 5, dtype=torch.float64)
    assert lib.dot(ckernels.ptr(a), ckernels.ptr(b), ctypes.c_long(5)) == pytest.approx(
        float(a @ b), abs=1e-14)
    built = list((sandbox.parent / "cache").glob("dot-*.so"))
    assert len(built) == 1 and not list((sandbox.parent / "cache").glob("*.tmp"))
    # an edited source gets a new build, the old one is not reused
    ckernels._loaded.clear()
    (sandbox / "dot.c").write_text(DOT + "\nint unused_symbol(void) { return 1; }\n")
    assert ckernels.load("dot") is not None
    assert len(list((sandbox.parent / "cache").glob("dot-*.so"))) == 2


def test_broken_source_warns_and_falls_back(sandbox):
    if ckernels._compiler() is None:
        pytest.skip("no C compiler on this machine")
    (sandbox / "bad.c").write_text("this is not C;\n")
    with pytest.warns(RuntimeWarning, match="could not build C kernel 'bad'"):
        assert ckernels.load("bad") is None
    assert ckernels.load("bad") is None  # remembered: no second attempt, no second warning


def test_disabled_by_environment(sandbox, monkeypatch):
    (sandbox / "dot.c").write_text(DOT)
    monkeypatch.setenv("NNPOT_NO_CKERNELS", "1")
    assert ckernels.load("dot") is None


def test_ptr_refuses_non_contiguous():
    with pytest.raises(ValueError, match="contiguous CPU"):
        ckernels.ptr(torch.zeros(4, 4).T)
