"""walloc: a command-line learned lossy codec (WaLLoC) for photos, audio and volumes."""

__version__ = "0.1.0"
