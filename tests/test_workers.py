"""workers=: a real spawn process pool, a thread pool, a map-like callable and a real local dask
cluster (no mocks).  Every result is compared with the serial one and with an oracle
(scipy's rosen_der, closed forms); failures come back as one error naming the parameter."""

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fdkit
from fdkit.study.problems import rosen_batch, rosen_np

optimize = pytest.importorskip("scipy.optimize")


def fails_above(v):
    """Rosenbrock, except that it raises where x_3 is stepped upwards."""
    if v[3] > 0.5:
        raise ZeroDivisionError("f broke here")
    return rosen_np(v)


def slow_rosen(v):
    """Rosenbrock that takes 40 ms: long enough to lose a worker in the middle of a gradient."""
    time.sleep(0.04)
    return rosen_np(v)


@pytest.fixture(scope="module")
def x():
    return np.linspace(-1.0, 1.0, 12)


def test_process_pool(x):
    x0 = x.copy()
    for method, count in (("forward", 13), ("central", 25), ("complex", 13)):  # with the probe at x
        serial = fdkit.gradient(rosen_np, x, method=method, full_output=True)
        r = fdkit.gradient(rosen_np, x, method=method, workers=2, full_output=True)
        np.testing.assert_array_equal(r.value, serial.value)
        assert r.nfev == serial.nfev == count
        np.testing.assert_allclose(r.value, optimize.rosen_der(x), rtol=1e-5, atol=1e-6)
    H = fdkit.hessian(rosen_np, x[:5], workers=2)
    np.testing.assert_allclose(H, optimize.rosen_hess(x[:5]), rtol=1e-5, atol=1e-5)
    J = fdkit.jacobian(np.sin, x, workers=2, method="central")
    np.testing.assert_allclose(J, np.diag(np.cos(x)), atol=1e-9)
    np.testing.assert_allclose(fdkit.derivative(np.exp, x, workers=2), np.exp(x), rtol=1e-9)
    f32 = fdkit.gradient(rosen_np, x.astype(np.float32), workers=2)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, fdkit.gradient(rosen_np, x.astype(np.float32)), rtol=1e-6)
    np.testing.assert_array_equal(x, x0)


def test_executor_map_like_and_batched(x):
    serial = fdkit.gradient(rosen_np, x)
    with ThreadPoolExecutor(2) as ex:
        np.testing.assert_array_equal(fdkit.gradient(rosen_np, x, workers=ex), serial)
        b = fdkit.gradient(rosen_batch, x, workers=ex, vectorized=True, full_output=True)
        # the batched loss sums in another order: its rounding (a few eps |f|) over the step
        eps = np.finfo(float).eps
        np.testing.assert_allclose(b.value, serial, rtol=0, atol=16 * eps * abs(rosen_np(x)) / np.sqrt(eps))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        np.testing.assert_array_equal(fdkit.gradient(rosen_np, x, workers=pool.map), serial)


def test_failures(x):
    x0 = x.copy()
    with pytest.raises(TypeError, match="cannot be pickled.*module level.*dask Client"):
        fdkit.gradient(lambda v: np.sum(v), x, workers=2)
    with pytest.raises(RuntimeError, match=r"ZeroDivisionError.*parameter 3 \(flat index into x\), step") as e:
        fdkit.gradient(fails_above, np.full(6, 0.5), workers=2)
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    np.testing.assert_array_equal(x, x0)
    with pytest.raises(ValueError, match="workers= runs the fixed stencils"):
        fdkit.gradient(rosen_np, x, method="richardson", workers=2)
    with pytest.raises(TypeError, match="workers must be"):
        fdkit.gradient(rosen_np, x, workers="two")
    with pytest.raises(ValueError, match="at least 1"):
        fdkit.gradient(rosen_np, x, workers=0)


def test_dask_local_cluster(x, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from fdkit.engine import workers as engine_workers

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        serial = fdkit.gradient(rosen_np, x, method="central", full_output=True)
        r = fdkit.gradient(rosen_np, x, method="central", workers=client, full_output=True)
        np.testing.assert_array_equal(r.value, serial.value)
        assert r.nfev == serial.nfev
        with monkeypatch.context() as m:  # x scattered to the workers (a large x), not sent in the tasks
            m.setattr(engine_workers, "SCATTER_BYTES", 0)
            np.testing.assert_array_equal(fdkit.gradient(rosen_np, x, method="central", workers=client), serial.value)
        shift = 0.25  # a closure travels too (cloudpickle)
        g = fdkit.gradient(lambda v: rosen_np(v + shift), x, workers=client)
        np.testing.assert_allclose(g, optimize.rosen_der(x + shift), rtol=1e-5, atol=1e-6)
        with pytest.raises(RuntimeError, match="parameter 3") as e:
            fdkit.gradient(fails_above, np.full(6, 0.5), workers=client)
        assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_dask_survives_losing_a_worker():
    distributed = pytest.importorskip("distributed")
    x = np.linspace(-1.0, 1.0, 20)
    serial = fdkit.gradient(rosen_np, x, method="central")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        client.run(lambda: None)  # both workers up
        victim = next(iter(client.run(os.getpid).values()))
        killer = threading.Timer(0.3, os.kill, (victim, signal.SIGKILL))  # 40 points of 40 ms: ~0.8 s in all
        killer.start()
        g = fdkit.gradient(slow_rosen, x, method="central", workers=client)
        killer.join()
        assert victim not in client.run(os.getpid).values()  # the worker was lost (and replaced)
    np.testing.assert_array_equal(g, serial)


@pytest.fixture(autouse=True, scope="module")
def _close():
    yield
    fdkit.close_pools()
