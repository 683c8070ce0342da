"""Registries: unknown names and unknown options are user mistakes (ConfigError), not tracebacks."""

from __future__ import annotations

import pytest

from facesr.errors import ConfigError
from facesr.registry import Registry


def test_names_options_and_inner_errors():
    reg: Registry[tuple] = Registry("widget")

    @reg.register()
    def square(*, side: int = 2) -> tuple:
        return (side, side)

    @reg.register("broken")
    def _broken() -> tuple:
        return len(3)  # a bug inside the factory stays a TypeError

    assert reg.build("square", side=3) == (3, 3) and reg.names() == ["broken", "square"]
    with pytest.raises(ConfigError, match="unknown widget 'sqare'") as exc:
        reg.build("sqare")
    assert exc.value.hint == "did you mean 'square'?"
    with pytest.raises(ConfigError, match="unexpected keyword argument 'sides'") as exc:
        reg.build("square", sides=3)
    assert exc.value.hint == "options: side"
    with pytest.raises(TypeError):
        reg.build("broken")
    with pytest.raises(ValueError, match="twice"):
        reg.register("square")(square)
