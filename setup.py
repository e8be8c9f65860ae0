# A shim for tools that still call `python setup.py ...`: everything is in pyproject.toml.
from setuptools import setup; setup()
