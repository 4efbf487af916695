"""VOI window functions (PS3.3 C.11.2.1.2 and C.11.2.1.3) mapping onto the 8-bit display range.

All functions take modality values (after the Modality LUT / rescale, PS3.3 C.11.1) as a
float64 array of any shape and return float64 values in ``[0, 255]`` of the same shape,
unrounded: rounding to 8 bits is the caller's last step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
VoiFunction = Literal["linear", "linear-exact", "sigmoid"]

#: The ``window`` query parameter's function names (PS3.18 §8.3.5.1.4), which are the VOI LUT
#: Function values (0028,1056) LINEAR, LINEAR_EXACT and SIGMOID of PS3.3 C.11.2.1.3.
FUNCTIONS: Final[dict[str, VoiFunction]] = {
    "linear": "linear",
    "linear-exact": "linear-exact",
    "sigmoid": "sigmoid",
}
DISPLAY_MAX: Final = 255.0


@dataclass(frozen=True, slots=True)
class Window:
    """A window centre and width in modality units, and the VOI function applying them."""

    center: float
    width: float
    function: VoiFunction = "linear"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width)):
            raise ValueError("window center and width must be finite numbers")
        if self.function == "linear" and self.width < 1:
            raise ValueError("a linear window needs a width of at least 1 (PS3.3 C.11.2.1.2.1)")
        if self.width <= 0:
            raise ValueError(f"a {self.function} window needs a width above 0 (C.11.2.1.3)")


def apply_window(values: FloatArray, window: Window) -> FloatArray:
    """Window *values* into ``[0, 255]`` with the function of *window*."""
    x = np.asarray(values, dtype=np.float64)
    c, w = window.center, window.width
    if window.function == "linear":  # C.11.2.1.2.1
        # With a width of 1 the two outer cases below cover every value.
        y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * DISPLAY_MAX if w > 1 else np.zeros_like(x)
        y = np.where(x <= c - 0.5 - (w - 1.0) / 2.0, 0.0, y)
        y = np.where(x > c - 0.5 + (w - 1.0) / 2.0, DISPLAY_MAX, y)
    elif window.function == "linear-exact":  # C.11.2.1.3.2
        y = ((x - c) / w + 0.5) * DISPLAY_MAX
        y = np.where(x <= c - w / 2.0, 0.0, y)
        y = np.where(x > c + w / 2.0, DISPLAY_MAX, y)
    else:  # C.11.2.1.3.1 sigmoid: 1 / (1 + exp(-4(x - c)/w)) written with tanh (no overflow)
        y = 0.5 * (1.0 + np.tanh((x - c) / (w / 2.0))) * DISPLAY_MAX
    return np.clip(y, 0.0, DISPLAY_MAX).astype(np.float64, copy=False)


def scale_range(values: FloatArray, low: float, high: float) -> FloatArray:
    """Map ``[low, high]`` linearly onto ``[0, 255]`` (clipped); a flat range maps to 0."""
    x = np.asarray(values, dtype=np.float64)
    if not high > low:
        return np.zeros_like(x)
    return np.clip((x - low) * (DISPLAY_MAX / (high - low)), 0.0, DISPLAY_MAX)


def to_uint8(values: FloatArray) -> npt.NDArray[np.uint8]:
    """Round display values in ``[0, 255]`` to 8 bits."""
    return np.rint(values).astype(np.uint8)
