"""Every file rgsd writes outside a store (JSON, Markdown, CSV, images, checkpoints' sidecars)
goes through here: written under a temporary name in the same folder, checked, then renamed
into place.  A full disk, a read-only folder or an image that fails to encode leaves nothing
behind -- neither a half-written file nor a temporary one -- and raises :class:`WriteError`
(one line, which the ``gen`` command line prints as ``error: ...`` with exit status 1).

OpenCV's ``imwrite`` reports failure only by returning False; images are therefore encoded
in memory (``imencode``) and written as bytes, so that every failure is an exception."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


class WriteError(Exception):
    """An output that could not be written (a fault of the machine, not of the user)."""


def temp_name(path) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``: hidden,
    in the same folder (a rename within one file system is atomic), unique per process."""
    p = Path(path)
    return p.with_name(f".{p.name}.partial-{os.getpid()}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path to write ``path``'s content to; on success it is renamed to
    ``path``, on any error it is removed and :class:`WriteError` raised (KeyboardInterrupt
    passes through, after the removal)."""
    tmp = temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise WriteError(f"cannot write {path}: nothing was written")
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, (WriteError, KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {path}: {_reason(exc)}") from None
        raise


def write_bytes(path, data: bytes) -> Path:
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # a full disk may show only here (delayed allocation)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(obj, indent=indent))


def encode_image(path, image, params=()) -> bytes:
    """``image`` (OpenCV's channel order: BGR/BGRA, or one channel) encoded in the format
    ``path``'s extension names."""
    import cv2
    import numpy as np
    ext = Path(path).suffix.lower()
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(image), list(params))
    except cv2.error as exc:
        raise WriteError(f"cannot write {path}: {_reason(exc)}") from None
    if not ok:
        raise WriteError(f"cannot write {path}: OpenCV could not encode it as {ext}")
    return buf.tobytes()


def write_image(path, image, params=()) -> Path:
    """Encode then write atomically: ``image`` in OpenCV's channel order (BGR)."""
    return write_bytes(path, encode_image(path, image, params))


def write_rgb(path, rgb) -> Path:
    """An RGB(A) or grey uint8/uint16 array as an image file (format from the extension)."""
    if rgb.ndim == 3 and rgb.shape[2] in (3, 4):
        rgb = rgb[..., [2, 1, 0, 3][:rgb.shape[2]]]
    return write_image(path, rgb)
