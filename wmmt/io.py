"""Safe file I/O: atomic writes, and torch checkpoints loaded without arbitrary unpickling."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputError(RuntimeError):
    """An output could not be written (unwritable folder, disk full, ...)."""


def output_error(path, exc: OSError) -> OutputError:
    """The one-line OutputError for an OSError met while writing ``path`` (full disk, read-only folder, ...)."""
    if exc.errno == errno.ENOSPC:
        reason = "no space left on device"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "folder is not writable"
    else:
        reason = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write output: {reason}")


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary file path beside ``path``; rename it onto ``path`` on success.

    A crash or an exception leaves no file at ``path`` (and removes the temporary one),
    so a half-written output never looks finished.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    except OSError as exc:
        raise output_error(path, exc) from exc
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(path, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path, obj, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=indent)
            fh.write("\n")


def read_json(path, what: str, error: type[Exception] = ValueError):
    """A JSON file's content; ``error`` (naming the file and ``what`` it should hold) when it is
    missing, a folder, or not JSON."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: {what} path is a folder, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint needs full unpickling and the user did not trust it."""


def load_checkpoint(path, map_location="cpu", trust: bool = False):
    """Load a torch checkpoint in weights-only mode.

    A file that needs full unpickling (numpy or mmengine objects in its metadata,
    arbitrary classes) is refused with a clear message unless ``trust`` is set for
    it: unpickling runs code from the file.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not _is_torch_file(path):
        # Checked first: weights-only mode refuses any non-pickle too, and "needs full unpickling,
        # pass --trust-checkpoint" would be the wrong advice for an HTML page saved as .pth.
        raise RuntimeError(f"{path}: not a readable torch checkpoint (neither a zip archive nor a pickle: "
                           "truncated, or another kind of file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust:
            raise UnsafeCheckpointError(
                f"{path}: checkpoint needs full unpickling, which can run code from the file; beyond tensors "
                f"and plain containers it holds {_unsafe_globals_text(path, exc)}. Allow it only if you "
                "trust where the file came from: --trust-checkpoint on the command line, or "
                "trust_checkpoint: true in the workflow config's extraction section (extractor checkpoints)."
            ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise RuntimeError(f"{path}: not a readable torch checkpoint: {exc}") from exc
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # full unpickling can fail in any way: a corrupt stream, a class that is gone
        raise RuntimeError(f"{path}: not a readable torch checkpoint: {type(exc).__name__}: {exc}") from exc


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _unsafe_globals_text(path: Path, exc: Exception, most: int = 5) -> str:
    """The classes and functions a checkpoint needs unpickled, for the refusal: plain text, named.

    torch's own message carries terminal colour codes and, in its first line, no name at all.
    The one torch stopped at is read from its message; a zip checkpoint (torch.save since 1.6)
    is also scanned for every other such name, without unpickling anything.
    """
    import torch

    names = re.findall(r"GLOBAL ([\w.]+)", _ANSI.sub("", str(exc)))  # the one torch stopped at first
    try:
        names += sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint, or a torch without the scan
        pass
    names = list(dict.fromkeys(names))
    if not names:
        return "other objects"
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _is_torch_file(path: Path) -> bool:
    """A zip archive (torch.save since 1.6), a pickle (older torch.save) or a tar (oldest)."""
    import tarfile
    import zipfile

    with open(path, "rb") as fh:
        if fh.read(1) == b"\x80":  # pickle protocol 2+ opcode
            return True
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)
