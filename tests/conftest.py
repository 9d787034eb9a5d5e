"""Suite-wide set-up.

A shell starts background jobs (``pytest ... &``, ``nohup``) with SIGINT ignored, and Python
then installs no KeyboardInterrupt handler; every child inherits the ignored signal. The Ctrl-C
tests in ``test_batch.py`` send real SIGINTs and failed that way (3 tests, "assert 0 == 130",
"DID NOT RAISE KeyboardInterrupt") when the suite ran in the background. Restoring Python's
handler here also gives the children the default disposition (a handler does not survive exec).
"""

from __future__ import annotations

import signal

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
