"""Errors a researcher can act on: each names the offending key or file and the valid choices."""
from __future__ import annotations

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """Bad input found before any training starts."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """The standard 'unknown X' error: the name, a suggestion and every valid choice."""
    choices = sorted(str(c) for c in choices)
    return ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; valid: {', '.join(choices)}")


def disk_full(e: BaseException | None) -> bool:
    """A full disk however the writer reports it: an OSError (ENOSPC, EDQUOT), or a library's own error around one
    (safetensors, writing a checkpoint, raises SafetensorError "... No space left on device (os error 28)")."""
    import errno

    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(e) for text in ("No space left on device", "Disk quota exceeded")):
            return True
        e = e.__cause__ or e.__context__
    return False
