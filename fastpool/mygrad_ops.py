"""fastpool inside MyGrad: every pooling function as a MyGrad operation.

Requires the ``mygrad`` package (``pip install fastpool[mygrad]``). Each function here has the
name and pooling arguments of its fastpool counterpart, takes and returns ``mygrad.Tensor``
(or array-likes), and back-propagates through the matching :mod:`fastpool.nn` layer, which
keeps only what backward needs (compact indices for max pooling).

Examples
--------
>>> import mygrad as mg
>>> import numpy as np
>>> from fastpool import mygrad_ops as fp
>>> x = mg.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
>>> fp.max_pool2d(x, 2).sum().backward()
>>> x.grad[0, 0]
array([[0., 0., 0., 0.],
       [0., 1., 0., 1.],
       [0., 0., 0., 0.],
       [0., 1., 0., 1.]])
"""

import mygrad
from mygrad.operation_base import Operation

from .nn import LAYER_OF, layer_for_call

__all__ = sorted(LAYER_OF)


class _Pooling(Operation):
    """A MyGrad operation running one fastpool layer: forward in the graph, backward through
    the layer's own backward pass."""

    def __call__(self, x, layer):
        self.variables = (x,)
        self.layer = layer
        return layer.forward(x.data)

    def backward_var(self, grad, index, **kwargs):
        return self.layer.backward(grad)


def _operation(name):
    def pooled(x, *args, constant=None, **kwargs):
        layer = layer_for_call(name, x, args, kwargs)
        return mygrad.Tensor._op(_Pooling, x, op_kwargs={"layer": layer}, constant=constant)

    pooled.__name__ = pooled.__qualname__ = name
    pooled.__doc__ = (f"MyGrad operation for :func:`fastpool.{name}` (same arguments, values "
                      f"only; ``constant`` as in MyGrad); differentiable with respect to ``x``.")
    return pooled


globals().update({name: _operation(name) for name in __all__})
