"""An expensive black box (an ODE solve of tens of milliseconds, N = 16 and 32 parameters): the forward
gradient serially, with ``workers=2`` (fdkit's spawn pool), on a local dask cluster of 2 worker
processes, and scipy's ``approx_derivative(..., workers=pool.map)`` on the same f.  The issue's
targets on this 2-core machine: workers=2 at most 0.6x serial, dask at most 0.7x
(``benchmarks/ratios.py`` prints the ratios within a run).  Results are compared with the serial
gradient."""

import multiprocessing

import numpy as np
import pytest

import fdkit

from _functions import chain_energy

ROUNDS = 3


@pytest.fixture(scope="module", params=[16, 32])
def x(request):
    return np.linspace(1.0, 2.0, request.param)


@pytest.fixture(scope="module")
def serial(x):
    pytest.importorskip("scipy.integrate")
    return fdkit.gradient(chain_energy, x, method="forward")


def test_serial(benchmark, x, serial):
    benchmark.group = f"workers-ode-{x.size}"
    g = benchmark.pedantic(fdkit.gradient, args=(chain_energy, x), kwargs=dict(method="forward"), rounds=ROUNDS,
                           iterations=1)
    np.testing.assert_array_equal(g, serial)


def test_workers_2(benchmark, x, serial):
    benchmark.group = f"workers-ode-{x.size}"
    fdkit.gradient(chain_energy, x[:2], method="forward", workers=2)  # start the pool
    g = benchmark.pedantic(fdkit.gradient, args=(chain_energy, x), kwargs=dict(method="forward", workers=2),
                           rounds=ROUNDS, iterations=1)
    np.testing.assert_array_equal(g, serial)
    fdkit.close_pools()


def test_dask_2(benchmark, x, serial):
    distributed = pytest.importorskip("distributed")
    benchmark.group = f"workers-ode-{x.size}"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        fdkit.gradient(chain_energy, x[:2], method="forward", workers=client)  # warm the workers
        g = benchmark.pedantic(fdkit.gradient, args=(chain_energy, x), kwargs=dict(method="forward", workers=client),
                               rounds=ROUNDS, iterations=1)
    np.testing.assert_array_equal(g, serial)


def test_scipy_approx_derivative_pool(benchmark, x, serial):
    numdiff = pytest.importorskip("scipy.optimize._numdiff")
    benchmark.group = f"workers-ode-{x.size}"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(chain_energy, [x, x])  # start the workers
        g = benchmark.pedantic(numdiff.approx_derivative, args=(chain_energy, x),
                               kwargs=dict(method="2-point", workers=pool.map), rounds=ROUNDS, iterations=1)
    np.testing.assert_allclose(g, serial, rtol=1e-4, atol=1e-6)
