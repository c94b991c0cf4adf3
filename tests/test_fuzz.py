"""Random calls, valid and invalid: every one either raises ValueError/TypeError or returns what
the reference returns. Nothing else may happen (under the debug build, an out-of-bounds access
would surface as IndexError and fail this test)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpool
from fastpool import reference

SIZE = st.one_of(st.integers(-2, 6), st.sampled_from([1.5, True, "2", None]))


def _size_argument(nd):
    return st.one_of(SIZE, st.lists(st.integers(-1, 6), min_size=nd - 1, max_size=nd + 1)
                     .map(tuple))


def _call(module, name, args, kwargs):
    try:
        return getattr(module, name)(*args, **kwargs), None
    except (ValueError, TypeError) as error:
        return None, error


def _same(fast, slow):
    fast = fast if isinstance(fast, tuple) else (fast,)
    slow = slow if isinstance(slow, tuple) else (slow,)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.shape == b.shape and a.dtype == b.dtype
        tolerance = 1e-2 if a.dtype == np.float16 else 1e-5  # float16 vs float32 accumulation
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_forward_calls(data):
    nd = data.draw(st.integers(1, 3), label="nd")
    kind = data.draw(st.sampled_from(["avg", "max", "adaptive_avg", "adaptive_max"]))
    batch = data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple))
    spatial = data.draw(st.lists(st.integers(0, 7), min_size=nd, max_size=nd).map(tuple))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.bool_]))
    x = (np.random.default_rng(0).standard_normal(batch + spatial) * 4).astype(dtype)
    name = f"{kind}_pool{nd}d"
    if kind.startswith("adaptive"):
        args, kwargs = (x, data.draw(_size_argument(nd), label="output_size")), {}
    else:
        args = (x, data.draw(_size_argument(nd), label="kernel_size"))
        kwargs = dict(stride=data.draw(st.one_of(st.none(), _size_argument(nd)), label="stride"),
                      padding=data.draw(_size_argument(nd), label="padding"),
                      ceil_mode=data.draw(st.sampled_from([False, True, 1]), label="ceil"))
        if kind == "max":
            kwargs["dilation"] = data.draw(_size_argument(nd), label="dilation")
        else:
            kwargs["divisor_override"] = data.draw(st.sampled_from([None, 0, 2, -1]))
    if kind.endswith("max"):
        kwargs["return_indices"] = data.draw(st.sampled_from([False, True, "compact", "x"]))
    fast, fast_error = _call(fastpool, name, args, kwargs)
    slow, slow_error = _call(reference, name, args, kwargs)
    # (with several faults, the two may name different ones first)
    assert (fast_error is None) == (slow_error is None), (fast_error, slow_error)
    if fast_error is None:
        _same(fast, slow)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_backward_calls(data):
    nd = data.draw(st.integers(1, 2), label="nd")
    kind = data.draw(st.sampled_from(["avg", "max"]))
    shape = (2, 2) + tuple(data.draw(st.integers(1, 7)) for _ in range(nd))
    kernel = data.draw(st.integers(1, 3), label="kernel")
    x = np.random.default_rng(1).standard_normal(shape)
    forward = getattr(fastpool, f"{kind}_pool{nd}d")
    try:
        y = forward(x, kernel, return_indices=True)[0] if kind == "max" else forward(x, kernel)
    except ValueError:
        return
    grad_shape = data.draw(st.sampled_from([y.shape, y.shape[:-1] + (y.shape[-1] + 1,),
                                            y.shape[1:]]), label="grad shape")
    g = np.ones(grad_shape)
    input_shape = data.draw(st.sampled_from([shape, shape[:-1] + (shape[-1] + 1,), shape[1:],
                                             (0,) + shape[1:]]), label="input_shape")
    name = f"{kind}_pool{nd}d_backward"
    if kind == "max":
        indices = data.draw(st.sampled_from(["valid", "random", "int32", "float"]))
        valid = forward(x, kernel, return_indices=True)[1]
        chosen = {"valid": valid, "int32": valid.astype(np.int32),
                  "float": valid.astype(np.float64),
                  "random": np.random.default_rng(2).integers(-3, x[0, 0].size + 3,
                                                              valid.shape)}[indices]
        args = (g, chosen, input_shape, kernel)
    else:
        args = (g, input_shape, kernel)
    fast, fast_error = _call(fastpool, name, args, {})
    if fast_error is None:
        assert fast.shape == tuple(input_shape)
        if kind == "avg" or indices != "random":
            _same(fast, reference.__dict__[name](*args))
