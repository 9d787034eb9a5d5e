"""The version of walloc: the one place it is written (``pyproject.toml`` repeats it).

Every module imports it from here, never from the package root: importing the root runs its
``__init__`` (the Pillow registration, the lazy API table), which is what tied eight modules
into one import cycle.
"""

__version__ = "0.1.0"
