"""The shipped models: a JSON card and a safetensors file of weights per model (package data).

A regular package, not a namespace one, so that ``importlib.resources.files("walloc_cli.models")``
is a plain folder in an installed wheel (:func:`walloc_cli.model.zoo.models_dir`); in a namespace
package it is a ``MultiplexedPath`` whose ``str()`` names no folder, and no model was found.
"""
