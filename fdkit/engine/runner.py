"""How the user's f is run: jitted (called through a pointer, or compiled into the kernels) or
plain (the kernels' Python twins).

* A numba dispatcher runs first through the shared kernels of :mod:`fdkit.engine.entries`: one
  compiled kernel per (prep, body) and signature of f, kept in numba's disk cache, calls f
  through the address of f's compiled code.  A new f costs its own compilation only (0.07-0.4 s
  measured, nothing if the user called f already) instead of 0.8-2.7 s for a kernel specialised
  on it.  After ``INLINE_AFTER`` seconds of run time with one elementwise or complex-step kernel
  (see :func:`_tiers_up`), f is compiled *into* a kernel specialised on it (inlined: a very
  cheap f runs up to 5x faster, measured), kept only if its first timed run is faster
  (:data:`TRIAL_MARGIN`), as a private copy (numba does not inline a function that was already
  compiled for Python callers) behind a small jitted entry point kept per (driver, prep, body,
  f): calling it from Python costs ~0.4 us, against ~6-15 us for passing dispatchers as
  arguments.  f's result type (and so
  the working precision) is read from the signature numba compiles for the user's f (no
  evaluation of f is spent on it).
* A plain Python callable runs the *same* kernel code: :func:`python_kernel` gives the Python
  twin of a jitted function, in which every jitted function of :mod:`fdkit.engine` is replaced by
  its Python code, so each loop exists once.  Every value a plain f returns is checked (a number,
  the right shape, complex for the complex step) by the wrappers :func:`scalar_f` and
  :func:`array_f`.  A plain f is probed once at x (:func:`probe`) for its result's dtype.
* The caches keyed by a user's f hold it weakly: a loop that makes closures does not grow them.
"""

from __future__ import annotations

import functools
import numbers
import threading
import time
import warnings
import weakref

import numba
import numpy as np
from numba import types
from numba.core.dispatcher import Dispatcher
from numba.core.errors import NumbaError

from . import entries as E
from . import kernels as K
from . import richardson as RI
from . import threads as TH

__all__ = [
    "is_jitted", "kernel_copy", "jitted_result", "run", "python_kernel", "scalar_f", "array_f", "probe", "bind",
    "COMPLEX_HINT", "fname", "direct", "bake",
]

_LOCK = threading.Lock()
# per user f (weakly): {key: value}; the values never refer to f itself (only to its private
# copy, which refers to f.py_func), so f can be collected and its entries with it
_ENTRIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_RESULTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_COPIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

COMPLEX_HINT = (
    "complex step needs f to accept complex input and stay analytic: use numpy or cmath "
    "functions (np.sin, np.exp, np.sqrt) instead of math.sin/math.exp, avoid ordered "
    "comparisons (<, max, min, abs) on the input, and do not take .real; or use "
    "method='central'"
)

_NEEDS = {
    "derivative": "derivative evaluates f: R -> R at one number at a time (x's points elementwise)",
    "gradient": "gradient evaluates f: R^N -> R at an array of x's shape and needs a scalar result",
    "jacobian": "jacobian evaluates f: R^N -> R^M at an array of x's shape and needs an array result",
    "hessian": "hessian evaluates f: R^N -> R at an array of x's shape and needs a scalar result",
}


def is_jitted(f) -> bool:
    """True for a numba ``@njit`` dispatcher, whose code fdkit compiles into its kernels."""
    return isinstance(f, Dispatcher)


def fname(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _numba_detail(exc) -> str:
    lines = str(exc).strip().splitlines()
    detail = next((ln for ln in lines if "No implementation" in ln or "Cannot" in ln or "Invalid" in ln),
                  lines[0] if lines else "")
    return detail.replace("\x1b[1m", "").replace("\x1b[0m", "").strip()


def _cache(table, f) -> dict:
    d = table.get(f)
    if d is None:
        d = table[f] = {}
    return d


def jitted_result(f, argtype, expect: str, what: str, complex_step: bool = False, key=None, extra=()) -> np.dtype:
    """The numpy dtype of jitted f's result for ``argtype``, checked for what the quantity needs.

    f (the user's dispatcher, not the kernels' copy) is compiled for argtype, no evaluation.
    ``expect`` is 'scalar' or 'array'.  Raises a TypeError that names the argument type, what the
    quantity needs and what numba said; with ``complex_step`` the result must be complex (a real
    result for complex input means f dropped the imaginary part).  ``key`` (hashable, fast) stands
    for argtype in the cache when given (hashing numba types is slow).
    """
    cache = _cache(_RESULTS, f)
    key = (argtype if key is None else key, expect, complex_step, what)
    out = cache.get(key)
    if out is not None:
        return out
    sig = (argtype, *extra)  # f(x, *args): the extra arguments' numba types
    cres = f.overloads.get(sig)
    if cres is None:
        try:
            f.compile(sig)
        except (NumbaError, NotImplementedError, TypeError) as exc:  # typing errors, lowering gaps, arity
            detail = _numba_detail(exc)
            if complex_step:
                raise TypeError(f"{what}: {fname(f)} cannot take complex input ({argtype}); {COMPLEX_HINT}. "
                                f"numba said: {detail}") from None
            hint = ""
            if what == "derivative" and isinstance(argtype, types.Number):
                hint = "; for a function of a whole vector use gradient (or jacobian)"
            elif what != "derivative" and isinstance(argtype, types.Array):
                hint = "; for a function of one number at each point use derivative"
            raise TypeError(f"{what}: the @njit function {fname(f)} cannot be compiled for {argtype}, which is "
                            f"what {_NEEDS[what]}{hint}. numba said: {detail}") from None
        cres = f.overloads[sig]
    rt = cres.signature.return_type
    if expect == "scalar":
        if isinstance(rt, types.Array) and rt.ndim == 0:
            rt = rt.dtype
        if not isinstance(rt, (types.Float, types.Integer, types.Complex)) or isinstance(rt, types.Boolean):
            extra = "; for a vector-valued f use jacobian" if isinstance(rt, types.Array) else ""
            raise TypeError(f"{what} needs f to return a scalar number, but {fname(f)}({argtype}) returns {rt}{extra}")
        dtype = rt
    else:
        if not isinstance(rt, types.Array) or isinstance(rt.dtype, types.Boolean):
            extra = "; for a scalar f use gradient" if isinstance(rt, types.Number) else ""
            raise TypeError(f"{what} needs f to return an array, but {fname(f)}({argtype}) returns {rt}{extra}")
        dtype = rt.dtype
    if complex_step and not isinstance(dtype, types.Complex):
        raise TypeError(
            f"{what}: {fname(f)} returns {rt} for complex input ({argtype}), so the imaginary part "
            f"that carries the derivative is lost; {COMPLEX_HINT}"
        )
    if not complex_step and isinstance(dtype, types.Complex):
        raise TypeError(f"{what} needs a real-valued f, but {fname(f)}({argtype}) returns {rt}")
    out = cache[key] = np.dtype(str(dtype))
    return out


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


_ENTRY_SRC = "def entry(n, {a}):\n    return driver(f, prep, body, n, {a})\n"


def _entry(driver, prep, body, f, nargs: int, parallel: bool):
    """A jitted ``entry(n, *args) = driver(f, prep, body, n, *args)``, kept per (driver, prep,
    body, f); the dispatchers are compile-time constants in it, so numba inlines f into the body
    and a call from Python boxes no dispatcher (~0.4 us instead of ~6-15 us per dispatcher).

    The first call of a combination runs the driver directly instead: that compiles the same
    specialisation the entry will use and spares the first answer the entry's own compilation
    (~0.15 s), which happens on the second call.
    """
    cache = _cache(_ENTRIES, f)
    key = (prep, body, nargs, parallel)
    e = cache.get(key)
    if e is not None:
        return e
    with _LOCK:
        if key not in cache:
            cache[key] = None  # seen once: the next call builds the entry
            fk = kernel_copy(f)
            return lambda n, *args: driver(fk, prep, body, n, *args)
        a = ", ".join(f"a{i}" for i in range(nargs))
        ns = {"driver": driver, "prep": prep, "body": body, "f": kernel_copy(f)}
        exec(_ENTRY_SRC.format(a=a), ns)  # noqa: S102 - fixed template, no user text
        e = cache[key] = numba.njit(error_model="numpy")(ns["entry"])
    return e


#: a parallel run is worth its threads only when the serial run takes at least this long
#: (seconds): starting numba's threads costs ~15-20 us on this 2-core machine (measured: N = 10
#: and 30 ran 1.2x slower in parallel, N = 100 broke even at ~27 us serially, N = 300 took 0.62x);
#: 0 turns the cut-off off (the tests do, to run the parallel kernels at every size)
PARALLEL_MIN_SECONDS = 50e-6
#: from this many items on, parallel=True runs in parallel without a timed serial run first (the
#: decision's serial run would cost a large gradient twice its parallel time: measured, the mlp at
#: N = 10^5 spent 9 minutes on it)
PARALLEL_ALWAYS = 4096
_PARALLEL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _serial_seconds(f, prep, body, args: tuple, n: int, sig=None):
    """The time of a serial run of this f, kernel and size, which decides whether
    ``parallel=True`` runs serially (the cut-off ``PARALLEL_MIN_SECONDS``): measured once per
    (f, prep, body, n) from one timed serial run with the serial kernel already compiled.
    Returns (seconds or None, nfev of a run made here or None)."""
    key = (prep, body, len(args), n)
    d = _PARALLEL.get(f, {}).get(key)
    if d is not None:
        return d, None
    p = _POINTERS.get(f, {}).get((prep, body, sig[0], False)) if sig is not None else None
    if _ENTRIES.get(f, {}).get((prep, body, len(args), False)) is None and (p is None or not p.calls):
        return None, run(f, prep, body, args, n, parallel=False, sig=sig)  # not compiled yet: decide later
    t0 = time.perf_counter()
    cnt = run(f, prep, body, args, n, parallel=False, sig=sig)
    _cache(_PARALLEL, f)[key] = time.perf_counter() - t0
    return None, cnt


#: seconds a jitted f may run in the shared kernels of :mod:`fdkit.engine.entries` (f called
#: through a pointer) for one (prep, body) that tiers up (see :func:`_tiers_up`; and the
#: gradient's fast path, see ``fdkit.api._fast_gradient``) before fdkit compiles the kernel
#: specialised on f (f inlined; faster for a very cheap f, but 0.5-4 s of compilation per f):
#: the classic tiering of a JIT, paid only where the run time it may save is already larger
#: than it.  None: never specialise; 0: specialise at once (the behaviour before the shared
#: kernels)
INLINE_AFTER = 1.0
_POINTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _tiers_up(body, args: tuple) -> bool:
    """Whether a body's pointer kernel gives way to the specialised one after ``INLINE_AFTER``
    (on trial, see :data:`TRIAL_MARGIN`): where f is called per point on a number (elementwise
    derivatives; a cheap f ran 5x faster inlined, x*x + 3x at 13.3 against 2.4 ns per point),
    and for the complex step of a gradient or Jacobian (Rosenbrock at N = 10^4: 324-397 ms
    inlined against 420-505 through the pointer, 193-201 against 268-280 in parallel; the mlp's
    no faster).  Where a real f is called on whole vectors (forward, central, Richardson
    gradients, Jacobians, Hessians) inlining gained nothing or lost, measured on Rosenbrock at
    N = 10^4 and the mlp at N = 1000: forward 102-118 ms through the pointer against 108-109
    inlined, 53-59 against 70-72 in parallel; mlp 17-20 against 28-30 ms; and the specialised
    kernel costs 2-4 s to compile."""
    if body is K.deriv_body or body is RI.deriv_body:
        return True
    return (body is K.grad_body or body is K.jac_body) and np.iscomplexobj(args[3])  # the offsets


#: a kernel specialised on f is kept only if its first timed run (its third call: the first two
#: compile) takes at most this fraction of the pointer kernel's best time per item at the same
#: number of items (if the pointer kernel ran at that size); else the pointer kernel comes back
#: for good
TRIAL_MARGIN = 1.0
_TRIALS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Pointer:
    """f's compiled code for one signature, run by a shared cached entry ``e(*head, n, args,
    nthreads)``: ``calls`` holds the entry's compiled overloads by :func:`_shape` of args (a call
    with the overload itself skips numba's type dispatch: ~3 us against ~11 us), ``spent`` the
    seconds run."""

    __slots__ = ("entry", "head", "calls", "spent", "parallel", "code", "best")

    def __init__(self, entry, head, parallel, code):
        self.entry, self.head, self.calls, self.spent, self.parallel = entry, head, {}, 0.0, parallel
        self.code = code  # f's compile result: keeps the machine code at head's addresses alive
        # the best seconds per item of a counted run, by number of items (a gradient's or
        # Jacobian's time per item grows with N: the trial compares like with like)
        self.best: dict = {}


def _shape(args: tuple) -> tuple:
    """What tells the entry's overloads for one f signature apart: the lengths of the tuples in
    args (stencils, controls) and whether x is writeable; the arrays' dtypes and ranks follow
    from the signature (the API makes them)."""
    return (args[0].flags.writeable, *[len(v) if type(v) is tuple else 0 for v in args])


def _pointer(f, prep, body, sig, parallel: bool):
    """The shared entry for f (of signature ``sig = (key, argument types)``), or None where there
    is none (a pair the API runs no other way, f not compiled for sig, or specialised already)."""
    cache = _cache(_POINTERS, f)
    key = (prep, body, sig[0], parallel)
    p = cache.get(key, False)
    if p is not False:
        return p
    e = E.entry(prep, body, parallel)
    cres = f.overloads.get(tuple(sig[1]))
    if e is None or cres is None:
        cache[key] = None
        return None
    lib = cres.library
    try:
        ca = lib.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
    except Exception:  # noqa: BLE001 - f compiled without its C wrapper: the jit address serves
        ca = 0
    ja = lib.get_pointer_to_function(cres.fndesc.llvm_func_name)
    if not ja:
        cache[key] = None
        return None
    p = cache[key] = _Pointer(e, (ca or 0, ja, types.FunctionType(cres.signature)), parallel, cres)
    return p


def _run_pointer(f, p, args, n, key) -> int | None:
    """Run through the shared entry; None (and the entry dropped for f) if numba cannot type the
    body with f as a pointer, so the caller specialises instead."""
    nt = numba.get_num_threads() if p.parallel else 1
    shape = _shape(args)
    call = p.calls.get(shape)
    if call is None:  # compiles the entry or loads it from numba's cache: not counted as run time
        e = p.entry
        try:
            cnt = e(*p.head, n, args, nt)
        except NumbaError:
            _POINTERS[f][key] = None
            return None
        cres = e.overloads.get(tuple(e.typeof_pyval(a) for a in (*p.head, n, args, nt)))
        if cres is not None:
            p.calls[shape] = cres.entry_point
        return int(cnt)
    t0 = time.perf_counter()
    cnt = call(*p.head, n, args, nt)
    dt = time.perf_counter() - t0
    p.spent += dt
    p.best[n] = min(p.best.get(n, np.inf), dt / max(n, 1))
    if INLINE_AFTER is not None and p.spent > INLINE_AFTER and _tiers_up(key[1], args):
        _POINTERS[f][key] = None  # from the next call on: the specialised kernel, on trial
        _cache(_TRIALS, f)[(key[0], key[1], len(args), key[3])] = [p, key, 0]
    return int(cnt)


def _judge(f, tkey, trial, n, seconds_per_item) -> None:
    """The trial of a specialised kernel (see :data:`TRIAL_MARGIN`): its third run decides,
    against the pointer kernel's best at the same number of items n (none there: the
    specialised kernel stays, as :func:`_tiers_up` expects it to be faster)."""
    trial[2] += 1
    if trial[2] < 3:
        return
    del _TRIALS[f][tkey]
    p, key = trial[0], trial[1]
    if seconds_per_item > TRIAL_MARGIN * p.best.get(n, np.inf):
        p.spent = -np.inf  # never again
        _POINTERS[f][key] = p


def direct(f, prep, body, args: tuple, sig=None, baked_later: bool = False):
    """The compiled overload a serial :func:`run` of these args last used, bound for a repeated
    call: ``go(n, args) -> nfev``; None if there is none yet (not run, or not jitted); False
    where the kernel tiers up (:func:`_tiers_up`), so that the caller keeps calling run(),
    which owns the tiering and its trial, unless ``baked_later`` (the caller will replace the
    kernel by its own specialisation, :func:`bake`).  It skips run()'s lookups (~2-4 us at
    N = 10)."""
    if _tiers_up(body, args) and not baked_later:
        return False
    if sig is not None and INLINE_AFTER != 0:
        p = _POINTERS.get(f, {}).get((prep, body, sig[0], False))
        if p is not None:
            call = p.calls.get(_shape(args))
            return None if call is None else functools.partial(_direct_pointer, call, p.head)
    e = _ENTRIES.get(f, {}).get((prep, body, len(args), False))
    if e is None:
        return None
    cres = e.overloads.get(tuple(e.typeof_pyval(a) for a in (0, *args)))  # n: an int
    return None if cres is None else functools.partial(_direct_entry, cres.entry_point)


_BAKE_SRC = """
def baked(x, out):
    driver(f, prep, body, n, {a})
    return count_nonfinite(x) + count_nonfinite(out)
"""


def bake(f, prep, body, args: tuple, out_at: int):
    """A jitted ``baked(x, out) -> number of NaN/inf in x and out``: a serial run of ``body`` on
    a copy of x (args[0]'s place) into ``out`` (args[out_at]'s place), every other argument of
    args frozen into the machine code as a constant, f inlined.  Two arrays cross from Python
    instead of eight (their unboxing costs ~1.4 us; returning a new array would cost ~1 us), in
    one call instead of two: for a small gradient called very often (compiles f into it:
    0.5-2 s)."""
    parts = []
    ns = {"np": np, "driver": K.driver(len(args), False), "prep": prep, "body": body, "f": kernel_copy(f),
          "n": args[out_at].size, "count_nonfinite": K.count_nonfinite}  # n: a constant too
    for i, a in enumerate(args):
        if i == 0:
            parts.append("x.copy()")  # f may write to its input
        elif i == out_at:
            parts.append("out")
        else:
            ns[f"c{i}"] = a  # a global: numba freezes it (arrays, tuples, numbers) into the code
            parts.append(f"c{i}")
    exec(_BAKE_SRC.format(a=", ".join(parts)), ns)  # noqa: S102 - fixed template, no user text
    return numba.njit(error_model="numpy")(ns["baked"])


def _direct_pointer(call, head, n, args):
    return call(*head, n, args, 1)


def _direct_entry(call, n, args):
    return call(n, *args)


def run(f, prep, body, args: tuple, n: int, *, parallel: bool = False, sig=None) -> int:
    """Run ``body`` over n items with ``prep`` (see :mod:`fdkit.engine.kernels`): jitted f through
    a shared cached entry that calls f by pointer (``sig = (key, argument types)`` of the
    overload of f the kernels call, see :mod:`fdkit.engine.entries`), or through an entry point
    specialised on f (no ``sig``, a pair without a shared entry, or ``INLINE_AFTER`` seconds
    spent in a kernel that tiers up, see :func:`_tiers_up`); serial or prange driver
    (``parallel=True`` runs serially where the serial run is too short for threads to pay, see
    ``PARALLEL_MIN_SECONDS``; OpenBLAS's idle threads are stopped before a long parallel run and
    numba's OpenMP threads paused after one, see :mod:`fdkit.engine.threads`).  A plain
    (already wrapped) f runs through the Python twins, serially.  Returns nfev."""
    if not is_jitted(f):
        with np.errstate(all="ignore"):  # numba's float semantics: NaN and inf propagate silently
            return int(K.driver(len(args), jitted=False)(f, python_kernel(prep), python_kernel(body), n, *args))
    if not parallel:
        return _run_jitted(f, prep, body, args, n, False, sig)
    seconds = None
    if PARALLEL_MIN_SECONDS > 0 and n <= PARALLEL_ALWAYS:
        seconds, cnt = _serial_seconds(f, prep, body, args, n, sig)
        if cnt is not None:
            return cnt
        if seconds < PARALLEL_MIN_SECONDS:
            return _run_jitted(f, prep, body, args, n, False, sig)
    if n > PARALLEL_ALWAYS or (seconds is not None and seconds >= TH.QUIET_BLAS_MIN_SECONDS):
        TH.quiet_blas()  # OpenBLAS's threads may still spin on the cores the kernel is about to use
    t0 = time.perf_counter()
    try:
        return _run_jitted(f, prep, body, args, n, True, sig)
    finally:
        if time.perf_counter() - t0 >= TH.REST_OPENMP_MIN_SECONDS:
            TH.rest_openmp()  # its threads would spin on for ~10 ms, on the cores the caller's next work needs


def _run_jitted(f, prep, body, args: tuple, n: int, parallel: bool, sig) -> int:
    """:func:`run` for a jitted f, once serial or parallel is decided."""
    if sig is not None and INLINE_AFTER != 0:
        p = _pointer(f, prep, body, sig, parallel)
        if p is not None:
            cnt = _run_pointer(f, p, args, n, (prep, body, sig[0], parallel))
            if cnt is not None:
                return cnt
    ekey = (prep, body, len(args), parallel)
    e = _ENTRIES.get(f, {}).get(ekey)
    if e is None:
        e = _entry(K.driver(len(args), parallel), prep, body, f, len(args), parallel)
    trial = _TRIALS.get(f, {}).get(ekey)
    if trial is None:
        return int(e(n, *args))
    t0 = time.perf_counter()
    cnt = int(e(n, *args))
    _judge(f, ekey, trial, n, (time.perf_counter() - t0) / max(n, 1))
    return cnt


# ------------------------------------------------------------------ plain Python callables

_PY_NS: dict = {}  # the twins' namespaces, by id of the originals


def python_kernel(kernel):
    """A pure-Python twin of a jitted engine function, for a plain Python f.

    ``kernel.py_func`` alone would still call the jitted helpers that take f (numba cannot type
    a Python function).  The twin runs the kernel's own code with every jitted function of
    :mod:`fdkit.engine` replaced by its Python code (the precision helpers are plain functions
    with numba overloads, so they serve both), so there is one implementation of each loop.
    """
    if not isinstance(kernel, Dispatcher):
        return kernel
    return E.rebound(kernel.py_func.__globals__, _PY_NS, E.retarget)[kernel.py_func.__name__]


class bind:  # noqa: N801 - behaves as a function
    """A plain f with its extra arguments bound: ``bind(f, args, kwargs)(x) = f(x, *args, **kwargs)``
    (scipy's convention), keeping f's name for messages."""

    def __init__(self, f, args: tuple, kwargs: dict):
        self.f, self.args, self.kwargs = f, args, kwargs
        self.__name__ = fname(f)

    def __call__(self, x):
        return self.f(x, *self.args, **self.kwargs)


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
        raise TypeError(f"{what}: {name} cannot take complex input; {COMPLEX_HINT}. It raised: {exc}") from None


def as_scalar(r, what: str, name: str, complex_step: bool = False):
    """One value of a scalar f as a Python float (complex for the complex step).

    Accepts numbers, 0-d arrays and any object that ``float()`` (``complex()``) accepts and that
    holds one value (a JAX or PyTorch scalar); refuses arrays of more than one value with the
    shape, and everything else with its type.
    """
    if isinstance(r, np.ndarray):
        if r.ndim != 0:
            extra = "; for a vector-valued f use jacobian" if what != "jacobian" else ""
            raise TypeError(f"{what} needs f to return a scalar, but {name}(x) has shape {r.shape}{extra}")
        r = r[()]
    elif not isinstance(r, (numbers.Number, np.generic)):
        shape = getattr(r, "shape", None)
        if shape is not None and int(np.prod(shape)) != 1:
            raise TypeError(f"{what} needs f to return a scalar, but {name}(x) returned a "
                            f"{type(r).__name__} of shape {tuple(shape)}")
        try:
            r = complex(r) if complex_step else float(r)
        except (TypeError, ValueError):
            raise TypeError(f"{what} needs f to return a real number, but {name}(x) returned "
                            f"{type(r).__name__} {r!r}") from None
    if complex_step:
        if not isinstance(r, (numbers.Complex, np.complexfloating)) or isinstance(r, numbers.Real):
            raise TypeError(
                f"{what}: {name} returned {type(r).__name__} {r!r} for complex input, so the imaginary "
                f"part that carries the derivative is lost; {COMPLEX_HINT}"
            )
        return complex(r)
    if not _is_real_number(r):
        raise TypeError(f"{what} needs f to return a real number, but {name}(x) returned {type(r).__name__} {r!r}")
    return float(r)


def scalar_f(f, what: str, complex_step: bool = False):
    """Wrap a plain f: R^N -> R so every value it returns is checked and returned as a Python
    float (complex for the complex step)."""
    name = fname(f)

    def g(xw):
        return as_scalar(_call(f, xw, what, name, complex_step), what, name, complex_step)

    return g


def array_f(f, what: str, complex_step: bool = False):
    """Wrap a plain f: R^N -> R^M (jacobian) so every value is checked and returned as a new
    1-D array (a copy: an f that returns its input or a view of it is safe)."""
    name = fname(f)

    def g(xw):
        r = np.array(_call(f, xw, what, name, complex_step), copy=True)
        if r.ndim == 0:
            raise TypeError(f"{what} needs f to return an array, but {name}(x) returned a scalar; for a scalar f use gradient")
        if complex_step:
            if r.dtype.kind != "c":
                raise TypeError(
                    f"{what}: {name} returned dtype {r.dtype} for complex input, so the imaginary part "
                    f"that carries the derivative is lost; {COMPLEX_HINT}"
                )
            return r.ravel()
        if r.dtype.kind not in "iuf":
            raise TypeError(f"{what} needs f to return real numbers, but {name}(x) returned dtype {r.dtype}")
        return r.astype(np.float64).ravel()

    return g


def result_dtype(r) -> np.dtype | None:
    """The floating dtype of one value f returned (None for a Python number or an integer:
    those count as float64)."""
    dt = getattr(r, "dtype", None)
    if dt is None:
        return None
    try:
        dt = np.dtype(dt)
    except TypeError:  # a framework's own dtype object (torch.float32, ...): read its name
        name = str(dt).rsplit(".", 1)[-1]
        return np.dtype(name) if name in ("float16", "float32", "float64") else None
    return dt if dt.kind in "fc" else None


def probe(f, x0, what: str):
    """Evaluate a plain f once at x0 (a point of x's dtype), to learn its result's dtype.

    Returns ``(value, dtype or None)``.  An exception from f on a scalar point in ``derivative``
    is explained (``derivative`` is elementwise; a function of a vector wants ``gradient``).
    """
    try:
        r = f(x0)
    except (IndexError, TypeError, ValueError) as exc:
        if what == "derivative":
            raise TypeError(
                f"derivative evaluates f: R -> R at one number at a time (x's points elementwise), but "
                f"{fname(f)}({x0!r}) raised {type(exc).__name__}: {exc}; for a function of a whole vector "
                "use gradient (or jacobian)"
            ) from exc
        raise
    return r, result_dtype(r)
