"""Every public function has a numpydoc docstring whose example runs."""

import doctest

import pytest

import fastpool
from fastpool import _config, functional


def test_public_functions_have_numpydoc_docstrings():
    for name in fastpool.__all__:
        doc = getattr(fastpool, name).__doc__ or ""
        for section in ("Parameters", "Returns", "Examples"):
            assert f"\n    {section}\n    ---" in doc, f"{name} lacks a {section} section"


@pytest.mark.parametrize("module", [functional, _config])
def test_docstring_examples_run(module):
    failures, attempted = doctest.testmod(module, raise_on_error=False)
    assert attempted > 0 and failures == 0
