"""fastpool inside HIPS autograd: every pooling function as an autograd primitive.

Requires the ``autograd`` package (``pip install fastpool[autograd]``). Each function here has
the name and pooling arguments of its fastpool counterpart, returns the pooled values, and has a
VJP (``defvjp``) that runs the matching :mod:`fastpool.nn` layer's backward pass; for max
pooling the VJP finds the winners again from the input (with exactly the forward's tie and NaN
rules), so no indices are kept between the passes.

Examples
--------
>>> import numpy as np
>>> import autograd.numpy as anp
>>> from autograd import grad
>>> from fastpool import autograd_ops as fp
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> grad(lambda x: anp.sum(fp.max_pool2d(x, 2)))(x)[0, 0]
array([[0., 0., 0., 0.],
       [0., 1., 0., 1.],
       [0., 0., 0., 0.],
       [0., 1., 0., 1.]])
"""

from autograd.extend import defvjp, primitive

from .nn import LAYER_OF, layer_for_call

__all__ = sorted(LAYER_OF)


def _primitive(name):
    @primitive
    def pooled(x, *args, **kwargs):
        return layer_for_call(name, x, args, kwargs).forward(x)

    def vjp_maker(ans, x, *args, **kwargs):
        layer = layer_for_call(name, x, args, kwargs)
        layer.forward(x)
        return layer.backward

    defvjp(pooled, vjp_maker)
    pooled.__name__ = pooled.__qualname__ = name
    pooled.__doc__ = (f"autograd primitive for :func:`fastpool.{name}` (same arguments, values "
                      f"only); differentiable with respect to ``x``.")
    return pooled


globals().update({name: _primitive(name) for name in __all__})
