"""The digits CNN of digits_cnn.py, differentiated by HIPS autograd and by MyGrad, with fastpool's
pooling inside their graphs (fastpool.autograd_ops and fastpool.mygrad_ops).

    python examples/digits_autodiff.py           # a few epochs with each library

Needs ``autograd`` and ``mygrad`` (``pip install fastpool[autograd,mygrad]``) and scikit-learn.
"""

import argparse
import time

import numpy as np

from digits_cnn import load_digits


def initial_parameters(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv1": rng.standard_normal((16, 1, 3, 3)) * np.sqrt(2 / 9),
            "conv2": rng.standard_normal((32, 16, 3, 3)) * np.sqrt(2 / 144),
            "dense": rng.standard_normal((128, 10)) * np.sqrt(1 / 128),
            "bias": np.zeros(10)}


def batches(images, labels, batch_size, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        chosen = rng.choice(len(images), batch_size, replace=False)
        yield images[chosen], labels[chosen]


# --- HIPS autograd ------------------------------------------------------------------------------

def autograd_logits(parameters, x):
    import autograd.numpy as anp
    from fastpool import autograd_ops as fp

    def conv(x, weight):  # 3x3, padding 1, as a sum over the nine shifted copies
        h, w = x.shape[2:]
        padded = anp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), "constant")
        taps = anp.stack([padded[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], 2)
        return anp.einsum("ncthw,oct->nohw", taps, anp.reshape(weight, weight.shape[:2] + (9,)))

    x = fp.max_pool2d(anp.maximum(conv(x, parameters["conv1"]), 0), 2)
    x = fp.avg_pool2d(anp.maximum(conv(x, parameters["conv2"]), 0), 2)
    return anp.dot(anp.reshape(x, (x.shape[0], -1)), parameters["dense"]) + parameters["bias"]


def autograd_loss(parameters, x, labels):
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    logits = autograd_logits(parameters, x)
    return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(labels)), labels])


def train_autograd(steps, batch_size=32, rate=0.1, seed=0):
    """Plain SGD with momentum; returns the parameters and the loss at each step."""
    from autograd import value_and_grad

    train_x, train_y, _, _ = load_digits(seed)
    parameters, velocity = initial_parameters(seed), None
    step = value_and_grad(autograd_loss)
    losses = []
    for x, labels in batches(train_x, train_y, batch_size, steps, seed):
        loss, grads = step(parameters, x, labels)
        velocity = {k: 0.9 * velocity[k] + g for k, g in grads.items()} if velocity else grads
        parameters = {k: v - rate * velocity[k] for k, v in parameters.items()}
        losses.append(float(loss))
    return parameters, losses


# --- MyGrad -----------------------------------------------------------------------------------

def mygrad_logits(parameters, x):
    import mygrad as mg
    from mygrad.nnet.layers import conv_nd
    from fastpool import mygrad_ops as fp

    x = fp.max_pool2d(mg.maximum(conv_nd(x, parameters["conv1"], stride=1, padding=1), 0), 2)
    x = fp.avg_pool2d(mg.maximum(conv_nd(x, parameters["conv2"], stride=1, padding=1), 0), 2)
    return mg.matmul(x.reshape(x.shape[0], -1), parameters["dense"]) + parameters["bias"]


def train_mygrad(steps, batch_size=32, rate=0.1, seed=0):
    """Plain SGD with momentum; returns the parameters and the loss at each step."""
    import mygrad as mg
    from mygrad.nnet.losses import softmax_crossentropy

    train_x, train_y, _, _ = load_digits(seed)
    parameters = {k: mg.tensor(v) for k, v in initial_parameters(seed).items()}
    velocity = {k: np.zeros(v.shape) for k, v in parameters.items()}
    losses = []
    for x, labels in batches(train_x, train_y, batch_size, steps, seed):
        loss = softmax_crossentropy(mygrad_logits(parameters, x), labels)
        loss.backward()
        for k, p in parameters.items():
            velocity[k] = 0.9 * velocity[k] + p.grad
            p.data -= rate * velocity[k]
        losses.append(float(loss.item()))
    return parameters, losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    options = parser.parse_args(argv)
    _, _, test_x, test_y = load_digits()
    for name, train, logits in (("autograd", train_autograd, autograd_logits),
                                ("MyGrad", train_mygrad, mygrad_logits)):
        start = time.perf_counter()
        parameters, losses = train(options.steps)
        predicted = np.asarray(logits(parameters, test_x)).argmax(axis=1)
        print(f"{name}: loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}, "
              f"test accuracy {(predicted == test_y).mean():.3f} "
              f"({options.steps} steps, {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
