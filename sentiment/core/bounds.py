"""Bounds of settings fields, written on the fields themselves: msgspec checks them when the settings are
read from the environment (`Settings.from_env`), which names the variable that broke one. Building a settings
struct in code does not check them."""

from typing import Annotated

import msgspec

AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Positive = Annotated[float, msgspec.Meta(gt=0)]  # NaN is refused too
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
