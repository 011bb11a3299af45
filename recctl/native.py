"""LightGBM's C API through ctypes: LightGBM's own scoring without importing the lightgbm package.

``import lightgbm`` takes about 210 ms (most of it scipy), which a stream of batches pays in the
middle of its work, while loading the shared library that the package wraps takes a few ms. This
module calls that library's documented C API (``c_api.h``) directly: the same code computes the
scores, so they equal ``Booster.predict`` bit for bit (tests/test_native.py checks it).

:func:`load` returns None when the library is not where the lightgbm wheel puts it; callers then
use the lightgbm package through :class:`PackageBooster`, which answers the same calls.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB
_LIBRARY_NAMES = {"win32": "lib_lightgbm.dll", "darwin": "lib_lightgbm.dylib"}


class NativeError(RuntimeError):
    """LightGBM's C API returned an error; the message is LightGBM's."""


def library_path() -> Path | None:
    """Where the installed lightgbm wheel keeps its shared library (without importing lightgbm)."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        return None
    name = _LIBRARY_NAMES.get(sys.platform, "lib_lightgbm.so")
    for package_dir in spec.submodule_search_locations:
        for candidate in (Path(package_dir) / "lib" / name, Path(package_dir) / name):
            if candidate.is_file():
                return candidate
    return None


class NativeBooster:
    """A model loaded into LightGBM's C library. Not safe to share between threads without a lock
    (LightGBM's predictor keeps per-booster state)."""

    def __init__(self, library: ctypes.CDLL, model_text: str) -> None:
        self._library = library
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int()
        self._call(
            library.LGBM_BoosterLoadModelFromString,
            ctypes.c_char_p(model_text.encode("utf-8")),
            ctypes.byref(iterations),
            ctypes.byref(self._handle),
        )
        features = ctypes.c_int()
        self._call(library.LGBM_BoosterGetNumFeature, self._handle, ctypes.byref(features))
        self.num_features = features.value
        outputs = ctypes.c_int()
        self._call(library.LGBM_BoosterNumModelPerIteration, self._handle, ctypes.byref(outputs))
        self.num_outputs = outputs.value  # scores per row (trees per iteration): 1 for a ranker
        self.threads = 0
        """Threads per prediction (LightGBM's ``num_threads``); 0: LightGBM's default (all cores)."""

    def predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Scores of a (rows, features) matrix, NaN = missing; as ``Booster.predict(matrix)``:
        one per row, or (rows, classes) for a multiclass model."""
        scores = self._predict(matrix, _PREDICT_NORMAL)
        return scores if self.num_outputs == 1 else scores.reshape(len(matrix), -1)

    def contributions(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per-feature contributions plus the bias (last column); as ``pred_contrib=True``."""
        return self._predict(matrix, _PREDICT_CONTRIB).reshape(len(matrix), -1)

    def _predict(self, matrix: npt.NDArray[np.float64], kind: int) -> npt.NDArray[np.float64]:
        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} feature columns, got {rows.shape}")
        start, every = ctypes.c_int(0), ctypes.c_int(-1)  # all iterations, as Booster.predict
        size = ctypes.c_int64()  # LightGBM says how much it will write: the buffer is never too small
        self._call(
            self._library.LGBM_BoosterCalcNumPredict,
            self._handle,
            ctypes.c_int(rows.shape[0]),
            ctypes.c_int(kind),
            start,
            every,
            ctypes.byref(size),
        )
        out = np.empty(size.value, dtype=np.float64)
        written = ctypes.c_int64()
        self._call(
            self._library.LGBM_BoosterPredictForMat,
            self._handle,
            rows.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int(_FLOAT64),
            ctypes.c_int32(rows.shape[0]),
            ctypes.c_int32(rows.shape[1]),
            ctypes.c_int(1),  # row-major
            ctypes.c_int(kind),
            start,
            every,
            ctypes.c_char_p(f"num_threads={self.threads}".encode() if self.threads > 0 else b""),
            ctypes.byref(written),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        )
        if written.value != out.size:
            raise NativeError(f"LightGBM wrote {written.value} values, expected {out.size}")
        return out

    def _call(self, function: Callable[..., int], *arguments: object) -> None:
        if function(*arguments) != 0:
            message = self._library.LGBM_GetLastError()
            raise NativeError(message.decode("utf-8", "replace") if message else "unknown LightGBM error")

    def __del__(self) -> None:
        if getattr(self, "_handle", None) and self._handle.value:
            self._library.LGBM_BoosterFree(self._handle)


class PackageBooster:
    """The same calls through the lightgbm package, for where its library cannot be found."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster
        self.num_outputs: int = booster.num_model_per_iteration()
        self.threads = 0

    def predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        threads = {"num_threads": self.threads} if self.threads > 0 else {}
        return np.asarray(self._booster.predict(matrix, **threads), dtype=np.float64)

    def contributions(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        import lightgbm

        try:
            return np.asarray(self._booster.predict(matrix, pred_contrib=True), dtype=np.float64)
        except lightgbm.basic.LightGBMError as exc:
            raise NativeError(str(exc)) from None


def param_aliases() -> dict[str, list[str]]:
    """Every parameter LightGBM knows, canonical name -> its aliases, from LightGBM itself
    (``LGBM_DumpParamAliases`` of its C API), so recctl never keeps a list of its own."""
    library: Any = _library()
    if library is None:  # the wheel's library is elsewhere: the lightgbm package has it loaded
        from lightgbm.basic import _LIB

        library = _LIB
    size = 1 << 16
    for _attempt in range(2):
        buffer = ctypes.create_string_buffer(size)
        needed = ctypes.c_int64()
        status = library.LGBM_DumpParamAliases(ctypes.c_int64(size), ctypes.byref(needed), buffer)
        if status != 0:
            raise NativeError("LightGBM could not list its parameters")
        if needed.value <= size:
            break
        size = needed.value
    aliases: dict[str, list[str]] = json.loads(buffer.value.decode("utf-8"))
    return aliases


def _library() -> ctypes.CDLL | None:
    path = library_path()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError:
        return None
    library.LGBM_GetLastError.restype = ctypes.c_char_p
    return library


def load(model_text: str) -> NativeBooster | None:
    """The model in LightGBM's C library, or None when the library cannot be found or loaded.

    Raises :class:`NativeError` when the library refuses the model.
    """
    library = _library()
    return None if library is None else NativeBooster(library, model_text)
