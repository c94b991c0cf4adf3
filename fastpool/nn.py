"""Pooling layers for NumPy networks: ``forward(x)`` then ``backward(grad_output)``.

Each layer mirrors the constructor of its torch.nn namesake and keeps only what its backward
pass needs: the input's shape, and for max pooling the winners' indices in compact uint8 form
(windows of up to 256 elements; int64 otherwise, or when ``return_indices=True`` asks for them).
Calling ``backward`` before ``forward`` raises RuntimeError.

Examples
--------
>>> import numpy as np
>>> from fastpool import nn
>>> pool = nn.MaxPool2d(2)
>>> y = pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))
>>> pool.backward(np.ones_like(y))[0, 0]
array([[0., 0., 0., 0.],
       [0., 1., 0., 1.],
       [0., 0., 0., 0.],
       [0., 1., 0., 1.]])
"""

import inspect
import math

import numpy as np

from . import _arguments as args
from . import functional as F

__all__ = [f"{kind}{nd}d" for kind in ("AvgPool", "MaxPool", "AdaptiveAvgPool",
                                       "AdaptiveMaxPool", "MaxUnpool") for nd in (1, 2, 3)]


class _Layer:
    """forward/backward bookkeeping shared by every layer; subclasses define ``_forward``
    (returning the output and what backward needs) and ``_backward``."""

    nd = None  # spatial dimensions, set by each concrete class

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *inputs):
        """Pool the input and keep what :meth:`backward` needs."""
        output, self._saved = self._forward(*inputs)
        return output

    def backward(self, grad_output):
        """The gradient with respect to the last :meth:`forward` input."""
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        return self._backward(grad_output, *saved)

    def _function(self, family, backward=False):
        """fastpool's function of ``family`` (e.g. "max_pool") for this layer's dimensions."""
        return getattr(F, f"{family}{self.nd}d" + ("_backward" if backward else ""))

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                              if not k.startswith("_"))
        return f"{type(self).__name__}({arguments})"


class _AvgPool(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def _arguments(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def _forward(self, x):
        return self._function("avg_pool")(x, *self._arguments()), (np.shape(x),)

    def _backward(self, grad_output, shape):
        return self._function("avg_pool", True)(grad_output, shape, *self._arguments())


class _MaxPool(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def _arguments(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def _window_elements(self, x):
        return math.prod(args.spatial_tuple("kernel_size", self.kernel_size, self.nd, 1))

    def _forward(self, x):
        return _max_forward(self, x, self._function("max_pool"), *self._arguments())

    def _backward(self, grad_output, indices, shape):
        return self._function("max_pool", True)(grad_output, indices, shape,
                                                *self._arguments())


class _AdaptiveAvgPool(_Layer):
    def __init__(self, output_size):
        self.output_size = output_size

    def _forward(self, x):
        return self._function("adaptive_avg_pool")(x, self.output_size), (np.shape(x),)

    def _backward(self, grad_output, shape):
        return self._function("adaptive_avg_pool", True)(grad_output, shape)


class _AdaptiveMaxPool(_Layer):
    def __init__(self, output_size, return_indices=False):
        self.output_size, self.return_indices = output_size, return_indices

    def _window_elements(self, x):
        spatial = np.shape(x)[np.ndim(x) - self.nd:]
        return args.adaptive_plan(spatial, args.adaptive_output_size(self.output_size, spatial)
                                  ).largest_window()

    def _forward(self, x):
        return _max_forward(self, x, self._function("adaptive_max_pool"), self.output_size)

    def _backward(self, grad_output, indices, shape):
        return self._function("adaptive_max_pool", True)(grad_output, indices, shape)


def _max_forward(layer, x, pool, *arguments):
    """A max layer's forward: the values (and the flat indices, if the layer returns them),
    keeping the smallest indices backward can use."""
    if layer.return_indices:
        y, indices = pool(x, *arguments, return_indices=True)
        return (y, indices), (indices, np.shape(x))
    x = np.asarray(x)
    compact = x.ndim > layer.nd and layer._window_elements(x) <= 256
    y, indices = pool(x, *arguments, return_indices="compact" if compact else True)
    return y, (indices, x.shape)


class _MaxUnpool(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        """Unpool ``x`` to the positions ``indices`` (from a MaxPool layer with
        ``return_indices=True``)."""
        return super().forward(x, indices, output_size)

    def _forward(self, x, indices, output_size):
        y = self._function("max_unpool")(x, indices, self.kernel_size, self.stride,
                                         self.padding, output_size)
        return y, (indices, np.shape(x), y.shape)

    def _backward(self, grad_output, indices, shape, output_shape):
        # Each input went to one output position: its gradient is read back from there.
        grad_output = np.asarray(grad_output)
        args.check_grad_shape(grad_output, output_shape)
        planes = math.prod(shape[:len(shape) - self.nd])
        gathered = np.take_along_axis(grad_output.reshape(planes, -1),
                                      np.asarray(indices).reshape(planes, -1), axis=1)
        return gathered.reshape(shape)


_LAYER_DOC = """{torch_name}-style {what} layer for {batched} or {unbatched} arrays.

    Constructor arguments mirror ``torch.nn.{torch_name}``; the computation is
    :func:`fastpool.{function}`. ``forward`` keeps only what ``backward`` needs ({keeps}).

    Examples
    --------
    >>> import numpy as np
    >>> from fastpool import nn
    >>> layer = nn.{torch_name}({example})
    >>> x = np.random.default_rng(0).standard_normal({shape})
    >>> y = layer.forward(x)
    >>> layer.backward(np.ones_like(y)).shape == x.shape
    True
    """

_FAMILIES = {
    "AvgPool": ("average pooling", "avg_pool{nd}d", "the input shape", "2"),
    "MaxPool": ("max pooling", "max_pool{nd}d", "compact uint8 indices where windows hold at "
                "most 256 elements, else int64 ones", "2"),
    "AdaptiveAvgPool": ("adaptive average pooling", "adaptive_avg_pool{nd}d",
                        "the input shape", "3"),
    "AdaptiveMaxPool": ("adaptive max pooling", "adaptive_max_pool{nd}d",
                        "compact or int64 indices", "3"),
}
_SHAPES = {1: ("(N, C, L)", "(C, L)", (2, 3, 8)), 2: ("(N, C, H, W)", "(C, H, W)", (2, 3, 8, 8)),
           3: ("(N, C, D, H, W)", "(C, D, H, W)", (2, 3, 8, 8, 8))}


def _documented(layer):
    family, nd = layer.__name__[:-2], int(layer.__name__[-2])
    batched, unbatched, shape = _SHAPES[nd]
    if family == "MaxUnpool":
        layer.__doc__ = (f"torch.nn.{layer.__name__}-style max unpooling layer: "
                         f"``forward(x, indices, output_size=None)`` is "
                         f":func:`fastpool.max_unpool{nd}d`; ``backward`` returns the gradient "
                         f"with respect to ``x`` (read back at ``indices``).\n\n"
                         f"    Examples\n    --------\n"
                         f"    >>> import numpy as np\n    >>> from fastpool import nn\n"
                         f"    >>> x = np.random.default_rng(0).standard_normal({shape})\n"
                         f"    >>> y, indices = nn.MaxPool{nd}d(2, return_indices=True)"
                         f".forward(x)\n"
                         f"    >>> unpool = nn.{layer.__name__}(2)\n"
                         f"    >>> unpool.forward(y, indices).shape == x.shape\n    True\n")
        return layer
    what, function, keeps, example = _FAMILIES[family]
    layer.__doc__ = _LAYER_DOC.format(torch_name=layer.__name__, what=what, batched=batched,
                                      unbatched=unbatched, function=function.format(nd=nd),
                                      keeps=keeps, example=example, shape=shape)
    return layer


@_documented
class AvgPool1d(_AvgPool):
    nd = 1


@_documented
class AvgPool2d(_AvgPool):
    nd = 2


@_documented
class AvgPool3d(_AvgPool):
    nd = 3


@_documented
class MaxPool1d(_MaxPool):
    nd = 1


@_documented
class MaxPool2d(_MaxPool):
    nd = 2


@_documented
class MaxPool3d(_MaxPool):
    nd = 3


@_documented
class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    nd = 1


@_documented
class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    nd = 2


@_documented
class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    nd = 3


@_documented
class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    nd = 1


@_documented
class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    nd = 2


@_documented
class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    nd = 3


@_documented
class MaxUnpool1d(_MaxUnpool):
    nd = 1


@_documented
class MaxUnpool2d(_MaxUnpool):
    nd = 2


@_documented
class MaxUnpool3d(_MaxUnpool):
    nd = 3


# --- for the autodiff adapters ---------------------------------------------------------------

# The forward functions that have a layer, by name: what the autograd and MyGrad adapters wrap.
LAYER_OF = {f"{function}{nd}d": globals()[f"{layer}{nd}d"]
            for function, layer in (("avg_pool", "AvgPool"), ("max_pool", "MaxPool"),
                                    ("adaptive_avg_pool", "AdaptiveAvgPool"),
                                    ("adaptive_max_pool", "AdaptiveMaxPool"))
            for nd in (1, 2, 3)}


def layer_for_call(name, x, args, kwargs):
    """The layer that computes ``fastpool.<name>(x, *args, **kwargs)``.

    The autograd and MyGrad adapters run their calls through it: the call's pooling arguments
    are bound by name to the matching layer's constructor.

    Parameters
    ----------
    name : str
        A forward function with a layer, a key of ``LAYER_OF`` (e.g. ``"max_pool2d"``).
    x : array_like
        The call's input (only bound, not read).
    args, kwargs : tuple, dict
        The call's other arguments, as for ``fastpool.<name>``.

    Returns
    -------
    layer
        A fresh :mod:`fastpool.nn` layer.

    Raises
    ------
    TypeError
        For arguments that do not fit the function, or ``return_indices``, ``out`` or
        ``num_threads``, which have no place in a differentiable call.

    Examples
    --------
    >>> from fastpool import nn
    >>> nn.layer_for_call("max_pool2d", None, (3,), {"stride": 2, "padding": 1})
    MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, return_indices=False, ceil_mode=False)
    """
    bound = inspect.signature(getattr(F, name)).bind(x, *args, **kwargs)
    unsupported = [k for k in ("return_indices", "out", "num_threads")
                   if bound.arguments.get(k) not in (None, False)]
    if unsupported:
        raise TypeError(f"{name}: {', '.join(unsupported)} cannot be used in a "
                        f"differentiable call")
    layer = LAYER_OF[name]
    accepted = inspect.signature(layer).parameters
    return layer(**{k: v for k, v in bound.arguments.items() if k in accepted})
