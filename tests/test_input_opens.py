"""A photo's compress reads its input as few times as it can: once to sniff it, once to decode
it (the sniffed bytes are handed to the reader). It opened the input four times before the
redesign (bench/compress_trace.py, bench/results/compress_trace.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from walloc_cli.files import sniff
from walloc_cli.files.volumes import CONTAINER_BYTES

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "photo.png"

# Counts "open" audit events on the input in a fresh interpreter (an audit hook cannot be removed
# again, so it must not be installed in the test process).
PROBE = r"""
import sys
from pathlib import Path
src, dst = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
opens = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, Path)) and Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()).resolve() == src:
        opens.append(args[1])
sys.addaudithook(hook)
from walloc_cli.api.files import compress_file
compress_file(src, dst, overwrite=True, measure=False)
print(len(opens))
"""


def test_a_photo_compress_opens_its_input_twice(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(SAMPLE), str(tmp_path / "photo.wlc")],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) == 2  # identify() + the decoder; 4 before


def test_the_sniffed_prefix_is_what_the_volume_test_reads() -> None:
    """identify() hands its bytes to sniff_volume, which then does not read the file: they must
    be as many as the volume sniffer would read itself."""
    assert sniff.PREFIX_BYTES == CONTAINER_BYTES


def test_identify_reports_the_bytes_it_read(tmp_path: Path) -> None:
    found = sniff.identify(SAMPLE)
    assert found.kind is sniff.Kind.IMAGE and found.prefix == SAMPLE.read_bytes()[: sniff.PREFIX_BYTES]
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert sniff.identify(empty) == sniff.Sniffed(empty, sniff.Kind.UNKNOWN, b"")
