import math

import numba
import numpy as np
import pytest

import fdkit

from oracles import jsin, math_sin, rosen, sq, vec_f


@numba.njit
def vector_valued(x):
    return x * 2.0


@numba.njit
def drops_imag(x):
    return np.sin(x).real


@numba.njit
def nan_at_zero(x):
    return np.sqrt(x[0]) + x[1]  # nan for x[0] < 0 (numba returns nan, no exception)


@numba.njit
def ragged(x):
    return np.zeros(2 if x[0] > 0.5 else 3)


ENTRY_POINTS = [
    lambda **kw: fdkit.derivative(jsin, 1.0, **kw),
    lambda **kw: fdkit.gradient(rosen, np.ones(3), **kw),
    lambda **kw: fdkit.jacobian(vec_f, np.ones(2), **kw),
    lambda **kw: fdkit.hessian(rosen, np.ones(3), **kw),
]


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize("h", [0.0, -1e-3])
def test_h_not_positive(call, h):
    with pytest.raises(ValueError, match="h must be positive and finite"):
        call(h=h)


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize("h", [np.nan, np.inf, -np.inf])
def test_h_not_finite(call, h):
    with pytest.raises(ValueError, match="h must be positive and finite"):
        call(h=h)


def test_h_array_with_a_bad_entry_and_wrong_shape_and_type():
    with pytest.raises(ValueError, match="h must be positive"):
        fdkit.gradient(rosen, np.ones(3), h=[1e-6, 0.0, 1e-6])
    with pytest.raises(ValueError, match="cannot be broadcast to x's shape"):
        fdkit.gradient(rosen, np.ones(3), h=[1e-6, 1e-6])
    with pytest.raises(TypeError, match="h must be a positive float"):
        fdkit.derivative(jsin, 1.0, h="small")
    with pytest.raises(TypeError, match="h must be a positive float"):
        fdkit.derivative(jsin, 1.0, h=True)


@pytest.mark.parametrize("call", ENTRY_POINTS[:3])
def test_unknown_method(call):
    with pytest.raises(ValueError, match=r"unknown method 'centre'; choose one of 'forward', 'backward', 'central', 'complex', 'richardson'"):
        call(method="centre")


def test_method_not_a_string():
    with pytest.raises(TypeError, match="method must be a string"):
        fdkit.derivative(jsin, 1.0, method=["central"])


@pytest.mark.parametrize("method,order,n", [("central", 3, 1), ("central", 8, 1), ("forward", 5, 1), ("backward", 2, 3),
                                            ("central", 2, 5), ("complex", 4, 1), ("richardson", None, 3)])
def test_unsupported_order_n(method, order, n):
    with pytest.raises(ValueError, match="is not available for method"):
        fdkit.derivative(jsin, 1.0, method=method, order=order, n=n)


def test_gradient_unsupported_order():
    with pytest.raises(ValueError, match="order=3 is not available for method='central'"):
        fdkit.gradient(rosen, np.ones(3), order=3)


def test_complex_with_n2():
    with pytest.raises(ValueError, match="complex step gives first derivatives only"):
        fdkit.derivative(jsin, 1.0, method="complex", n=2)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(bad):
    with pytest.raises(ValueError, match=r"x must be finite, got (nan|inf|-inf) at index \(1,\)"):
        fdkit.gradient(rosen, np.array([1.0, bad, 2.0]))
    with pytest.raises(ValueError, match="x must be finite"):
        fdkit.derivative(jsin, bad)
    with pytest.raises(ValueError, match="x must be finite"):
        fdkit.derivative(np.sin, [0.0, bad])
    with pytest.raises(ValueError, match="x must be finite"):
        fdkit.hessian(rosen, [bad, 1.0])


def test_non_real_x():
    with pytest.raises(TypeError, match="x must be real, got complex"):
        fdkit.gradient(rosen, np.array([1 + 1j, 2.0]))
    with pytest.raises(TypeError, match="x must be a real number"):
        fdkit.derivative(jsin, "1.0")
    with pytest.raises(TypeError, match="got booleans"):
        fdkit.derivative(jsin, True)


def test_f_not_callable():
    with pytest.raises(TypeError, match="needs a callable f"):
        fdkit.gradient(np.ones(3), np.ones(3))


def test_flags_must_be_bool():
    with pytest.raises(TypeError, match="parallel must be True or False"):
        fdkit.gradient(rosen, np.ones(3), parallel="yes")
    with pytest.raises(TypeError, match="full_output must be True or False"):
        fdkit.derivative(jsin, 1.0, full_output=1)


def test_f_returning_wrong_shape_jitted():
    with pytest.raises(TypeError, match=r"gradient needs f to return a scalar number, .* returns array\(float64, 1d, C\); for a vector-valued f use jacobian"):
        fdkit.gradient(vector_valued, np.ones(3))
    with pytest.raises(TypeError, match="jacobian needs f to return an array.*for a scalar f use gradient"):
        fdkit.jacobian(rosen, np.ones(3))
    with pytest.raises(TypeError, match="hessian needs f to return a scalar"):
        fdkit.hessian(vector_valued, np.ones(3))


def test_f_returning_wrong_shape_plain():
    with pytest.raises(TypeError, match=r"gradient needs f to return a scalar, but .* has shape \(3,\)"):
        fdkit.gradient(lambda v: v * 2, np.ones(3))
    with pytest.raises(TypeError, match="jacobian needs f to return an array"):
        fdkit.jacobian(lambda v: 1.0, np.ones(3))


def test_f_returning_arrays_of_different_sizes():
    with pytest.raises(ValueError, match="different sizes"):
        fdkit.jacobian(ragged, np.array([0.5, 0.0]), method="forward", h=0.25)
    with pytest.raises(ValueError, match="different sizes"):
        fdkit.jacobian(lambda v: np.zeros(2 if v[0] > 0.5 else 3), np.array([0.5, 0.0]), method="forward", h=0.25)


def test_f_returning_a_non_number():
    with pytest.raises(TypeError, match="needs f to return a real number, but .* returned str"):
        fdkit.gradient(lambda v: "loss", np.ones(3))
    with pytest.raises(TypeError, match="returned NoneType"):
        fdkit.derivative(lambda t: None, 1.0)
    with pytest.raises(TypeError, match="returned NoneType"):
        fdkit.derivative(lambda t: None, np.ones(4))


def test_f_nan_at_base_point_warns():
    with pytest.warns(RuntimeWarning, match="f returned NaN or inf at or near x"):
        g = fdkit.gradient(lambda v: np.nan, np.ones(3), method="forward")
    assert np.isnan(g).all()
    with pytest.warns(RuntimeWarning, match="f returned NaN or inf"):
        fdkit.gradient(nan_at_zero, np.array([-1.0, 1.0]), method="forward")
    with pytest.warns(RuntimeWarning, match="f returned NaN or inf"):
        fdkit.derivative(lambda t: np.nan * t, -1.0)


def test_tiny_h_warns():
    with pytest.warns(RuntimeWarning, match="below eps"):
        fdkit.derivative(jsin, 1.0, h=1.5e-16)  # > half an ulp of 1: the step survives


def test_h_that_vanishes_next_to_x():
    with pytest.raises(ValueError, match=r"h=1e-15 vanishes next to x=1000: \(x \+ h\) - x == 0"):
        fdkit.derivative(jsin, 1e3, h=1e-15)
    with pytest.raises(ValueError, match="vanishes next to x"):
        fdkit.gradient(rosen, np.array([1.0, 1e6]), h=1e-12)


def test_complex_step_on_math_sin_jitted():
    with pytest.raises(TypeError, match=r"cannot take complex input.*use numpy or cmath functions.*instead of math.sin"):
        fdkit.derivative(math_sin, 1.0, method="complex")
    with pytest.raises(TypeError, match="cannot take complex input"):
        fdkit.gradient(numba.njit(lambda v: math.sin(v[0])), np.ones(2), method="complex")


def test_complex_step_on_math_sin_plain():
    with pytest.raises(TypeError, match="cannot take complex input"):
        fdkit.derivative(math.sin, 1.0, method="complex")
    with pytest.raises(TypeError, match="cannot take complex input"):
        fdkit.gradient(lambda v: math.sin(v[0]), np.ones(2), method="complex")


def test_complex_step_on_f_that_drops_the_imaginary_part():
    with pytest.raises(TypeError, match="imaginary part that carries the derivative is lost"):
        fdkit.derivative(drops_imag, 1.0, method="complex")
    with pytest.raises(TypeError, match="imaginary part that carries the derivative is lost"):
        fdkit.derivative(lambda t: np.real(np.sin(t)), np.ones(3), method="complex")
    with pytest.raises(TypeError, match="imaginary part that carries the derivative is lost"):
        fdkit.gradient(lambda v: float(np.sum(np.abs(v))), np.ones(3), method="complex")


def test_complex_step_on_ordered_comparison_jitted():
    @numba.njit
    def relu_sum(v):
        s = 0.0
        for t in v:
            s += max(t, 0.0)
        return s

    with pytest.raises(TypeError, match="cannot take complex input"):
        fdkit.gradient(relu_sum, np.ones(2), method="complex")


def test_check_gradient_bad_inputs():
    with pytest.raises(ValueError, match="grad has shape"):
        fdkit.check_gradient(rosen, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="rtol must be positive"):
        fdkit.check_gradient(rosen, np.ones(3), np.ones(3), rtol=-1.0)


def test_errors_leave_x_untouched():
    x = np.ones(3)
    with pytest.raises(TypeError):
        fdkit.gradient(lambda v: v, x)
    np.testing.assert_array_equal(x, np.ones(3))
    assert fdkit.derivative(sq, 2.0) == pytest.approx(4.0)


# ------------------------------------------------------------ messages a newcomer hits


class ScalarLike:
    """Stands for a JAX or PyTorch scalar: shape (), converts with float(), is not a number."""

    shape = ()

    def __init__(self, v):
        self.v = v

    def __float__(self):
        return float(self.v)


def test_scalar_results_that_are_not_python_numbers_are_accepted():
    x = np.array([1.0, -2.0, 0.5])
    for f in (lambda w: np.array(np.sum(w**2)), lambda w: ScalarLike(np.sum(w**2))):
        np.testing.assert_allclose(fdkit.gradient(f, x), 2 * x, rtol=1e-8)
    np.testing.assert_allclose(fdkit.derivative(lambda t: ScalarLike(t * t), 3.0), 6.0, rtol=1e-8)

    @numba.njit
    def zero_d(w):
        return np.asarray(np.sum(w**2))

    np.testing.assert_allclose(fdkit.gradient(zero_d, x), 2 * x, rtol=1e-8)


def test_a_scalar_like_object_holding_many_values_is_refused():
    class Many(ScalarLike):
        shape = (3,)

    with pytest.raises(TypeError, match=r"needs f to return a scalar, but .* of shape \(3,\)"):
        fdkit.gradient(lambda w: Many(w), np.ones(3))


def test_derivative_of_a_function_of_a_vector_points_to_gradient():
    optimize = pytest.importorskip("scipy.optimize")
    with pytest.raises(TypeError, match="elementwise.*raised IndexError.*use gradient"):
        fdkit.derivative(optimize.rosen, np.ones(3))
    with pytest.raises(TypeError, match=r"cannot be compiled for float64.*f: R -> R.*use gradient"):
        fdkit.derivative(rosen, np.ones(3))


def test_jitted_f_that_does_not_compile_for_the_argument_names_type_and_need():
    with pytest.raises(TypeError, match=r"math_sin cannot be compiled for array\(float64, 1d, C\).*"
                                        r"gradient evaluates f: R\^N -> R.*use derivative"):
        fdkit.gradient(math_sin, np.ones(3))
    with pytest.raises(TypeError, match=r"cannot be compiled for array\(float32, 2d, C\)"):
        fdkit.hessian(math_sin, np.ones((2, 2), dtype=np.float32))


def test_parallel_with_a_plain_f_says_it_runs_serially():
    for fn, f in ((fdkit.gradient, np.sum), (fdkit.derivative, np.sin), (fdkit.jacobian, np.sin),
                  (fdkit.hessian, np.sum)):
        with pytest.warns(RuntimeWarning, match="parallel=True runs serially for a plain Python f"):
            fn(f, np.ones(3), parallel=True)


def test_caches_keyed_by_f_do_not_keep_it_alive():
    import gc

    from fdkit.engine import runner

    def make(a):
        @numba.njit
        def f(x):
            return np.sum(x * x) * a

        return f

    x = np.ones(3)
    fdkit.gradient(make(0.5), x)  # warm the kernels
    gc.collect()
    before = len(runner._ENTRIES), len(runner._COPIES), len(runner._RESULTS)
    for k in range(5):
        f = make(float(k))
        for _ in range(2):  # the second call builds the entry point
            np.testing.assert_allclose(fdkit.gradient(f, x), 2 * k * x, atol=1e-6)
        del f
    gc.collect()
    after = len(runner._ENTRIES), len(runner._COPIES), len(runner._RESULTS)
    assert after <= before
