"""Every public function has a numpydoc docstring whose example runs."""

import doctest
import importlib

import pytest

import fastpool


def test_public_functions_have_numpydoc_docstrings():
    for name in fastpool.__all__:
        doc = getattr(fastpool, name).__doc__ or ""
        for section in ("Parameters", "Returns", "Examples"):
            assert f"\n    {section}\n    ---" in doc, f"{name} lacks a {section} section"


@pytest.mark.parametrize("module", ["functional", "_config", "_output_cache", "nn", "autograd_ops",
                                    "mygrad_ops"])
def test_docstring_examples_run(module):
    if module.endswith("_ops"):
        pytest.importorskip(module.split("_")[0])
    module = importlib.import_module(f"fastpool.{module}")
    failures, attempted = doctest.testmod(module, raise_on_error=False)
    assert attempted > 0 and failures == 0


def test_layers_have_docstrings_with_examples():
    from fastpool import nn
    for name in nn.__all__:
        doc = getattr(nn, name).__doc__
        assert doc and "Examples" in doc and ">>>" in doc, name
