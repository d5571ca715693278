"""One small lazy registry, used for detectors, effects and masks.

A name maps to "module:attribute" plus the extra that installs what the module needs, so
front ends can list choices without importing any heavy dependency.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import ConfigError, MissingDependencyError

# what each extra's implementations import, to tell without importing it whether it is there
_EXTRA_MODULES = {"people": "dlib"}


def extra_installed(extra: str | None) -> bool:
    """Whether the optional part `extra` is installed (found, not imported)."""
    module = _EXTRA_MODULES.get(extra or "")
    return module is None or importlib.util.find_spec(module) is not None

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute"
    extra: str | None
    help: str


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}  # former names, still accepted, never listed

    def register(self, name: str, target: str, *, extra: str | None = None, help: str = "",
                 aliases: tuple[str, ...] = ()) -> None:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, extra, help)
        self._aliases.update(dict.fromkeys(aliases, name))

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[self._aliases.get(name, name)]
        except KeyError:
            choices = ", ".join(self._entries)
            raise ConfigError(f"unknown {self.kind} {name!r} (choose from: {choices})") from None

    def load(self, name: str) -> type[T]:
        """Import and return the implementation registered under name."""
        entry = self.entry(name)
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if entry.extra is None or isinstance(exc, MissingDependencyError):
                raise  # the backend's own message already names what to install
            raise MissingDependencyError(
                f"the {self.kind} {name!r} needs an optional part that is not installed "
                f"({exc.name or exc}); install it with: pip install 'faceveil[{entry.extra}]'"
            ) from exc
        return getattr(module, attr)

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.load(name)(*args, **kwargs)
