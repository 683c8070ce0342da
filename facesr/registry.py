"""Name → factory registries (models, losses, metrics, prior providers), in the style of timm/BasicSR."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from facesr.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories. Duplicate names raise; unknown names get a close-match hint."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            key = name or fn.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(self._items))}"
            raise ConfigError(f"unknown {self.kind} {name!r}", hint=hint) from None

    def build(self, name: str, /, **kwargs) -> T:
        fn = self.get(name)
        try:  # check the options before calling: a TypeError from inside the factory is a bug, not a user's
            signature = inspect.signature(fn)
            signature.bind(**kwargs)
        except TypeError as exc:
            known = [p.name for p in signature.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
            raise ConfigError(f"{self.kind} {name!r}: {exc}", hint=f"options: {', '.join(known) or 'none'}") from None
        except ValueError:  # no signature to inspect (some builtins): let the call speak
            pass
        try:
            return fn(**kwargs)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            if not kwargs or isinstance(exc, ConfigError):  # the defaults failing is a bug: keep its traceback
                raise
            # a value the factory cannot use (base_channels=-3 → torch "negative dimension"): the user's options
            raise ConfigError(f"{self.kind} {name!r} cannot be built with {kwargs}: {exc}",
                              hint="check the values of its options (model.args)") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
