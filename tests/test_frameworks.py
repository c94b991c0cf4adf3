"""fastpool from NumPy frameworks: nn layers (gradients by finite differences), the autograd and
MyGrad adapters (against fastpool's own backward, and training the example model), and a
shortened run of the digits example."""

import os
import sys

import numpy as np
import pytest

import fastpool
from fastpool import nn
from cases import numeric_gradient

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")

LAYERS = [  # (layer, input shape)
    (nn.AvgPool1d(3, stride=2, padding=1), (2, 3, 9)),
    (nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), (2, 2, 5, 6)),
    (nn.AvgPool3d(2, stride=1, ceil_mode=True, divisor_override=3), (1, 2, 3, 4, 3)),
    (nn.MaxPool1d(3, stride=1, dilation=2), (2, 3, 9)),
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    (nn.MaxPool2d(17, stride=1), (1, 2, 18, 19)),  # 289 elements a window: int64 indices
    (nn.MaxPool3d((1, 2, 2), stride=1), (1, 2, 3, 4, 3)),
    (nn.AdaptiveAvgPool1d(4), (2, 3, 9)),
    (nn.AdaptiveAvgPool2d((3, None)), (2, 2, 5, 6)),
    (nn.AdaptiveAvgPool3d(2), (1, 2, 3, 5, 4)),
    (nn.AdaptiveMaxPool1d(4), (2, 3, 9)),
    (nn.AdaptiveMaxPool2d(3), (2, 2, 7, 5)),
    (nn.AdaptiveMaxPool3d((2, 1, 3)), (1, 2, 3, 4, 5)),
]


def _distinct(shape, seed=0):
    """Values 0.1 apart, shuffled: no ties, and no winner changes within a small step."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.1


@pytest.mark.parametrize("layer, shape", LAYERS, ids=[repr(layer) for layer, _ in LAYERS])
def test_layer_gradients_match_finite_differences(layer, shape):
    x = _distinct(shape)
    y = layer.forward(x)
    g = np.random.default_rng(1).standard_normal(y.shape)
    analytic = layer.backward(g)
    numeric = numeric_gradient(lambda x: layer.forward(x), x, g, h=1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


def test_max_layers_keep_compact_indices_unless_asked():
    x = _distinct((2, 3, 8, 8))
    pool = nn.MaxPool2d(2)
    pool.forward(x)
    assert pool._saved[0].dtype == np.uint8
    y, indices = nn.MaxPool2d(2, return_indices=True).forward(x)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(y, fastpool.max_pool2d(x, 2))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_layer_round_trip_and_gradient(nd):
    shape = (2, 3) + (4, 6, 4)[:nd]
    x = _distinct(shape)
    y, indices = getattr(nn, f"MaxPool{nd}d")(2, return_indices=True).forward(x)
    unpool = getattr(nn, f"MaxUnpool{nd}d")(2)
    restored = unpool.forward(y, indices)
    assert restored.shape == shape
    g = np.random.default_rng(2).standard_normal(restored.shape)
    analytic = unpool.backward(g)
    numeric = numeric_gradient(lambda v: unpool.forward(v, indices), y, g, h=1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="grad_output has shape"):
        unpool.backward(g[..., :-1])


def test_backward_before_forward_is_a_clear_error():
    for layer_class in (nn.AvgPool2d, nn.MaxPool1d, nn.AdaptiveAvgPool3d):
        layer = layer_class(2)
        with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
            layer.backward(np.ones((1, 1, 1, 1)))


def test_layers_mirror_torch_constructors():
    assert repr(nn.MaxPool2d(3, 2, 1)) == ("MaxPool2d(kernel_size=3, stride=2, padding=1, "
                                           "dilation=1, return_indices=False, ceil_mode=False)")
    assert repr(nn.AvgPool2d(2)) == ("AvgPool2d(kernel_size=2, stride=None, padding=0, "
                                     "ceil_mode=False, count_include_pad=True, "
                                     "divisor_override=None)")


# --- autograd and MyGrad adapters -------------------------------------------------------------

CALLS = [("avg_pool2d", (3, 2, 1), {"count_include_pad": False}), ("max_pool2d", (3,), {"stride": 1}),
         ("adaptive_avg_pool1d", (4,), {}), ("adaptive_max_pool3d", (2,), {}),
         ("max_pool1d", (2,), {"dilation": 2}), ("avg_pool3d", (2,), {})]


def _shape(name):
    return {"1": (2, 3, 9), "2": (2, 3, 7, 6), "3": (1, 2, 4, 5, 4)}[name[-2]]


def _expected_gradient(name, args, kwargs, x, g):
    layer = nn.layer_for_call(name, x, args, kwargs)
    layer.forward(x)
    return layer.backward(g)


@pytest.mark.parametrize("name, args, kwargs", CALLS)
def test_autograd_gradients(name, args, kwargs):
    pytest.importorskip("autograd")
    import autograd.numpy as anp
    from autograd import grad
    from fastpool import autograd_ops

    x = _distinct(_shape(name))
    g = np.random.default_rng(3).standard_normal(getattr(fastpool, name)(x, *args, **kwargs).shape)
    function = getattr(autograd_ops, name)
    np.testing.assert_array_equal(function(x, *args, **kwargs),
                                  getattr(fastpool, name)(x, *args, **kwargs))
    computed = grad(lambda x: anp.sum(function(x, *args, **kwargs) * g))(x)
    np.testing.assert_allclose(computed, _expected_gradient(name, args, kwargs, x, g))


@pytest.mark.parametrize("name, args, kwargs", CALLS)
def test_mygrad_gradients(name, args, kwargs):
    mg = pytest.importorskip("mygrad")
    from fastpool import mygrad_ops

    x = mg.tensor(_distinct(_shape(name)))
    y = getattr(mygrad_ops, name)(x, *args, **kwargs)
    np.testing.assert_array_equal(y.data, getattr(fastpool, name)(x.data, *args, **kwargs))
    g = np.random.default_rng(3).standard_normal(y.shape)
    (y * g).sum().backward()
    np.testing.assert_allclose(x.grad, _expected_gradient(name, args, kwargs, x.data, g))


def test_adapters_reject_arguments_without_a_gradient():
    with pytest.raises(TypeError, match="return_indices cannot be used in a differentiable"):
        nn.layer_for_call("max_pool2d", np.zeros((1, 1, 4, 4)), (2,), {"return_indices": True})


# --- the examples -------------------------------------------------------------------------------

@pytest.fixture
def examples():
    pytest.importorskip("sklearn")
    if not os.path.isdir(EXAMPLES):
        pytest.skip("the examples are not beside the tests")
    sys.path.insert(0, EXAMPLES)
    yield
    sys.path.remove(EXAMPLES)


def test_digits_example_trains_and_its_pooling_gradients_check(examples):
    import digits_cnn

    lines = []
    model, test_accuracy, _ = digits_cnn.train(epochs=3, log=lines.append)
    assert len(lines) == 3 and lines[0].startswith("epoch  1  loss")
    assert test_accuracy > 0.85
    _, _, test_x, test_y = digits_cnn.load_digits()
    errors = digits_cnn.check_pooling_gradients(model, test_x[:8], test_y[:8])
    assert set(errors) == {"MaxPool2d", "AvgPool2d"}
    assert max(errors.values()) < 1e-4


@pytest.mark.parametrize("library", ["autograd", "mygrad"])
def test_adapters_train_the_example_model(examples, library):
    pytest.importorskip(library)
    import digits_autodiff

    train = {"autograd": digits_autodiff.train_autograd,
             "mygrad": digits_autodiff.train_mygrad}[library]
    _, losses = train(steps=40)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
