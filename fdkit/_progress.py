"""Progress bars: tqdm's, on a terminal (silent otherwise), for long runs of the API and the CLI.

tqdm is the optional extra ``fdkit[progress]`` (in the test and distributed extras).  The API's
``progress=None`` shows a bar when stderr is a terminal and tqdm is installed, ``True`` always
(and says how to install tqdm if it is missing), ``False`` never.
"""

from __future__ import annotations


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def check_progress(progress) -> bool | None:
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (a bar on a terminal), got {progress!r}")
    return progress


def bar(total: int, desc: str, progress: bool | None):
    """A tqdm bar of ``total`` steps, or a silent stand-in (see the module docstring)."""
    if progress is False:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install 'fdkit[progress]'") from None
        return _Silent()
    return tqdm(total=total, desc=desc, disable=None if progress is None else False, leave=False, unit="task")


class Progress:
    """The CLI's bar as a callback ``progress(done, total, label)`` (the harness and the report
    call it after every cell): tqdm on a terminal, silent otherwise or without tqdm."""

    def __init__(self):
        self._bar = None

    def __call__(self, done: int, total: int, label: str) -> None:
        if self._bar is None:
            self._bar = bar(total, "fdkit", None)
        if hasattr(self._bar, "n"):
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix_str(label[:40])
        if done >= total:
            self._bar.close()
            self._bar = None
