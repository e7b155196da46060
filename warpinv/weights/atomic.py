"""Writing a file atomically: into a temporary file beside the target, renamed into place on success.

A reader never sees a half-written file, and a failure (an exception, a failed check inside the
block, an interruption) leaves no temporary file behind.

>>> import tempfile
>>> from pathlib import Path
>>> target = Path(tempfile.mkdtemp()) / "note.txt"
>>> with atomic_path(target) as tmp:
...     _ = tmp.write_text("hello")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('hello', ['note.txt'])
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``target``; rename it onto ``target`` when the block succeeds.

    The temporary file is named ``<target name>.<random><suffix>`` in ``target``'s folder (so the
    rename stays on one file system) and is removed if the block raises.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
