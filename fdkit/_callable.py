"""The user's f: jitted or plain, checked once, called through a cached entry point.

* A numba dispatcher is compiled *into* the kernel as a private copy (numba does not inline
  a function that was already compiled for Python callers), through a small jitted entry
  point kept per (kernel, f): calling it from Python costs ~0.4 us, against ~6-15 us for
  passing the dispatcher itself as a kernel argument.  f's return type is read from the
  signature numba compiled for it (no evaluation of f is spent on checks).
* A plain Python callable runs the same stencils: vectorised in numpy for elementwise
  derivatives when f accepts arrays, and otherwise the kernels' own Python code
  (``kernel.py_func``) with every value f returns checked (type, shape, complex).
"""

from __future__ import annotations

import functools
import inspect
import numbers
import threading
import types as pytypes
import warnings

import numba
import numpy as np
from numba import types
from numba.core.dispatcher import Dispatcher
from numba.core.errors import NumbaError

__all__ = [
    "is_jitted", "jitted_entry", "kernel_copy", "run_jitted", "checked_scalar_f", "checked_array_f",
    "deriv_numpy", "python_kernel",
]

_LOCK = threading.Lock()
_ENTRIES: dict = {}
_CHECKED: dict = {}
_COPIES: dict = {}

_COMPLEX_HINT = (
    "complex step needs f to accept complex input and stay analytic: use numpy or cmath "
    "functions (np.sin, np.exp, np.sqrt) instead of math.sin/math.exp, avoid ordered "
    "comparisons (<, max, min, abs) on the input, and do not take .real; or use "
    "method='central'"
)


def is_jitted(f) -> bool:
    """True for a numba ``@njit`` dispatcher, whose code fdkit compiles into its kernels."""
    return isinstance(f, Dispatcher)


def _fname(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _return_type(f, argtype, what: str, complex_step: bool):
    """Compile f for ``argtype`` (no evaluation) and return its numba return type."""
    cres = f.overloads.get((argtype,))
    if cres is not None:
        return cres.signature.return_type
    try:
        f.compile((argtype,))
        return f.overloads[(argtype,)].signature.return_type
    except (NumbaError, NotImplementedError) as exc:  # typing errors, and lowering gaps (complex >)
        first = str(exc).strip().splitlines()
        detail = next((ln for ln in first if "No implementation" in ln or "Cannot" in ln), first[0] if first else "")
        detail = detail.replace("\x1b[1m", "").replace("\x1b[0m", "").strip()
        if complex_step:
            raise TypeError(
                f"{what}: {_fname(f)} cannot take complex input ({argtype}); {_COMPLEX_HINT}. numba said: {detail}"
            ) from None
        raise TypeError(f"{what}: {_fname(f)} cannot be compiled for {argtype}: {detail}") from exc


def check_jitted_return(f, argtype, expect: str, what: str, complex_step: bool = False) -> None:
    """Raise TypeError unless jitted f returns a scalar (``expect='scalar'``) or an array.

    With ``complex_step`` the result must be complex: a real result for complex input means f
    dropped the imaginary part (``.real``, ``abs``), which would silently give a zero derivative.
    """
    key = (f, argtype, expect, complex_step)
    if key in _CHECKED:
        return
    rt = _return_type(f, argtype, what, complex_step)
    if expect == "scalar":
        ok = isinstance(rt, (types.Float, types.Integer, types.Complex)) and not isinstance(rt, types.Boolean)
        if not ok:
            extra = "; for a vector-valued f use jacobian" if isinstance(rt, types.Array) else ""
            raise TypeError(f"{what} needs f to return a scalar number, but {_fname(f)}({argtype}) returns {rt}{extra}")
        dtype = rt
    else:
        if not isinstance(rt, types.Array) or isinstance(rt.dtype, types.Boolean):
            extra = "; for a scalar f use gradient" if isinstance(rt, types.Number) else ""
            raise TypeError(f"{what} needs f to return an array, but {_fname(f)}({argtype}) returns {rt}{extra}")
        dtype = rt.dtype
    if complex_step and not isinstance(dtype, types.Complex):
        raise TypeError(
            f"{what}: {_fname(f)} returns {rt} for complex input ({argtype}), so the imaginary part "
            f"that carries the derivative is lost; {_COMPLEX_HINT}"
        )
    if not complex_step and isinstance(dtype, types.Complex):
        raise TypeError(f"{what} needs a real-valued f, but {_fname(f)}({argtype}) returns {rt}")
    _CHECKED[key] = True


def kernel_copy(f):
    """A private copy of the user's dispatcher, compiled only inside fdkit's kernels.

    numba inlines a jitted f into a kernel only if f has not been compiled for a call from
    Python before (measured with numba 0.68: a cheap f that the user had called once ran 4x
    slower inside the kernel).  Users try their f before differentiating it, so the kernels
    get their own copy, with f's options, that Python never calls.
    """
    c = _COPIES.get(f)
    if c is None:
        opts = {k: v for k, v in f.targetoptions.items() if k != "nopython"}  # njit implies it
        c = _COPIES[f] = numba.njit(**opts)(f.py_func)
    return c


def run_jitted(kernel, f, args, argtype, expect: str, what: str, complex_step: bool = False):
    """``kernel(copy of f, *args)`` through the cached entry; f's return type is checked on the
    copy's compiled signature (no evaluation and no extra compilation spent), and a kernel
    that fails to compile is explained by compiling the user's f alone."""
    fk = kernel_copy(f)
    try:
        res = jitted_entry(kernel, fk)(*args)
    except (NumbaError, NotImplementedError):
        check_jitted_return(f, argtype, expect, what, complex_step)  # raises the clear TypeError
        raise
    # read the return type off the copy's signature; never compile the copy alone (that would
    # stop it being inlined into the next kernel), ask the user's f if the signature is absent
    check_jitted_return(fk if (argtype,) in fk.overloads else f, argtype, expect, what, complex_step)
    return res


_ENTRY_SRC = "def entry({a}):\n    return kernel(f, {a})\n"


def jitted_entry(kernel, f):
    """A jitted function ``entry(*args) = kernel(f, *args)``, kept per (kernel, f).

    f is frozen into the entry as a compile-time constant, so numba inlines it into the kernel
    and a call from Python does not box a dispatcher (~0.4 us instead of ~6-15 us).  Arguments
    are spelled out (no *args, which makes numba fall back to first-class function types).

    The first call for a (kernel, f) pair calls the kernel directly instead: that compiles the
    same specialisation of the kernel the entry will use, and spares the first answer the
    entry's own compilation (~0.15 s), which happens on the second call.
    """
    key = (kernel, f)
    e = _ENTRIES.get(key)
    if e is not None:
        return e
    with _LOCK:
        if key not in _ENTRIES:
            _ENTRIES[key] = None  # seen once: the next call builds the entry
            return functools.partial(kernel, f)
        nargs = len(inspect.signature(kernel.py_func).parameters) - 1
        a = ", ".join(f"a{i}" for i in range(nargs))
        ns = {"kernel": kernel, "f": f}
        exec(_ENTRY_SRC.format(a=a), ns)  # noqa: S102 - fixed template, no user text
        e = _ENTRIES[key] = numba.njit(error_model="numpy")(ns["entry"])
    return e


# ------------------------------------------------------------------ plain Python callables

_PY_NS: dict = {}


def python_kernel(kernel):
    """A pure-Python twin of a jitted kernel, for a plain Python f.

    ``kernel.py_func`` alone would still call the jitted helpers that take f (numba cannot
    type a Python function).  The twin runs the kernel's own code with every jitted function
    of its module replaced by its Python code, so there is one implementation of each loop.
    """
    src = kernel.py_func.__globals__
    ns = _PY_NS.get(id(src))
    if ns is None:
        ns = dict(src)
        for name, obj in src.items():
            if isinstance(obj, Dispatcher) and obj.py_func.__globals__ is src:
                pf = obj.py_func
                ns[name] = pytypes.FunctionType(pf.__code__, ns, pf.__name__, pf.__defaults__, pf.__closure__)
        _PY_NS[id(src)] = ns
    return ns[kernel.py_func.__name__]



def _is_real_number(r) -> bool:
    return isinstance(r, numbers.Real) and not isinstance(r, (bool, np.bool_))


def _call(f, xw, what: str, name: str, complex_step: bool):
    """f(xw); with the complex step, f's failure to take complex input becomes a TypeError
    that says why (including numpy's ComplexWarning when f casts the input to float)."""
    if not complex_step:
        return f(xw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            return f(xw)
    except (TypeError, np.exceptions.ComplexWarning) as exc:
        raise TypeError(f"{what}: {name} cannot take complex input; {_COMPLEX_HINT}. It raised: {exc}") from None


def checked_scalar_f(f, what: str, complex_step: bool = False):
    """Wrap a plain f: R^N -> R so every value it returns is checked (a scalar real number,
    or complex for the complex step) and returned as float/complex."""
    name = _fname(f)

    def g(xw):
        r = _call(f, xw, what, name, complex_step)
        if isinstance(r, np.ndarray):
            if r.ndim != 0:
                extra = "; for a vector-valued f use jacobian" if what != "jacobian" else ""
                raise TypeError(f"{what} needs f to return a scalar, but {name}(x) has shape {r.shape}{extra}")
            r = r[()]
        if complex_step:
            if not isinstance(r, (numbers.Complex, np.complexfloating)) or isinstance(r, numbers.Real):
                raise TypeError(
                    f"{what}: {name} returned {type(r).__name__} {r!r} for complex input, so the imaginary "
                    f"part that carries the derivative is lost; {_COMPLEX_HINT}"
                )
            return complex(r)
        if not _is_real_number(r):
            raise TypeError(f"{what} needs f to return a real number, but {name}(x) returned {type(r).__name__} {r!r}")
        return float(r)

    return g


def checked_array_f(f, what: str, complex_step: bool = False):
    """Wrap a plain f: R^N -> R^M (jacobian) so every value is checked and returned as a 1-D array."""
    name = _fname(f)

    def g(xw):
        r = _call(f, xw, what, name, complex_step)
        r = np.asarray(r)
        if r.ndim == 0:
            raise TypeError(f"{what} needs f to return an array, but {name}(x) returned a scalar; for a scalar f use gradient")
        if complex_step:
            if r.dtype.kind != "c":
                raise TypeError(
                    f"{what}: {name} returned dtype {r.dtype} for complex input, so the imaginary part "
                    f"that carries the derivative is lost; {_COMPLEX_HINT}"
                )
            return r.ravel()
        if r.dtype.kind not in "iuf":
            raise TypeError(f"{what} needs f to return real numbers, but {name}(x) returned dtype {r.dtype}")
        return r.astype(np.float64).ravel()

    return g


def _vector_call(f, pts):
    """f on a whole array, or None when f raises on arrays or does not map them elementwise."""
    try:
        r = np.asarray(f(pts))
    except Exception:  # a scalar-only f (math.sin on an array, ...): the caller loops instead
        return None
    return r if r.shape == pts.shape and r.dtype.kind in "iufc" else None


def deriv_numpy(f, x, h, rel, stencil, what: str = "derivative"):
    """Elementwise derivative of a plain callable: the stencil of ``kernels.deriv_stencil``
    in numpy, one call of f per stencil point when f maps arrays elementwise, else a loop.

    Returns ``(value, nfev)``: value of x's shape, nfev counted per point f was evaluated at.
    """
    hv = h * np.maximum(1.0, np.abs(x)) if rel else np.broadcast_to(h, x.shape)
    complex_step = stencil.method == "complex"
    scalar_f = checked_scalar_f(f, what, complex_step)
    nfev = 0
    vectorised = x.ndim > 0

    def call(pts):
        nonlocal nfev, vectorised
        if vectorised:
            r = _vector_call(f, pts)
            if r is not None:
                nfev += pts.size
                if complex_step and r.dtype.kind != "c":
                    scalar_f(pts.flat[0])  # raises the TypeError that says why
                if not complex_step and r.dtype.kind == "c":
                    raise TypeError(f"{what} needs a real-valued f, but {_fname(f)}(x) returned dtype {r.dtype}")
                return r
            vectorised = False
        out = np.empty(pts.shape, dtype=np.complex128 if complex_step else np.float64)
        for idx in np.ndindex(pts.shape):
            out[idx] = scalar_f(pts[idx].item())
            nfev += 1
        return out

    if complex_step:
        return call(x + 1j * hv).imag / hv, nfev
    hh = (x + hv) - x
    acc = np.zeros(x.shape)
    for o, w in zip(stencil.offsets, stencil.weights):
        acc = acc + w * call(x + o * hh)
    return acc / hh**stencil.n, nfev

