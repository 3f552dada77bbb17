"""The built-in catalogue of well-known MCP servers (``resources/catalogue.json``), and filling one in.

The catalogue is data, not code: each item is a config.json server entry in which ``${input:ID}``
stands for a value the person gives (a folder, a token). ``fill`` substitutes them; a value holding a
*secret* input (only env and header values may) goes to the secret store, and the entry keeps a
``${secret:SERVER.KEY}`` reference instead.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_core.config import secret_name

CATALOGUE_PARTS = ("resources", "catalogue.json")
_INPUT = re.compile(r"\$\{input:([A-Za-z0-9_-]+)\}")


class CatalogueError(ValueError):
    """The catalogue file is missing or malformed, or an item was filled in without a required value."""


@dataclass(frozen=True)
class Input:
    """A value the person gives when adding an item."""

    id: str
    label: str
    required: bool = False
    secret: bool = False
    placeholder: str = ""


@dataclass(frozen=True)
class CatalogueItem:
    """One well-known server."""

    id: str
    title: str
    description: str
    homepage: str
    needs: str
    entry: dict[str, Any]
    inputs: tuple[Input, ...]

    def fill(self, values: dict[str, str], name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """The config entry with ``values`` put in, and the secrets (name → value) it refers to.

        Args:
            values: input id → value; empty optional inputs leave out the argument that holds them.
            name: the server's name in Toolgate (the secrets are named after it); the item's id by default.

        Raises:
            CatalogueError: a required value is empty.
        """
        name = name or self.id
        missing = [i.label for i in self.inputs if i.required and not values.get(i.id, "").strip()]
        if missing:
            raise CatalogueError(f"Fill in: {', '.join(missing)}.")
        secret_ids = {i.id for i in self.inputs if i.secret}
        secrets: dict[str, str] = {}

        def put(text: str) -> str:
            return _INPUT.sub(lambda m: values.get(m.group(1), "").strip(), text)

        def unfilled(text: str) -> bool:
            used = _INPUT.findall(text)
            return bool(used) and not any(values.get(input_id, "").strip() for input_id in used)

        entry: dict[str, Any] = {}
        for key, value in self.entry.items():
            if key == "args":
                entry["args"] = [put(arg) for arg in value if not unfilled(arg)]
            elif key in ("env", "headers"):
                kept = {}
                for var, text in value.items():
                    filled = put(text)
                    if any(m.group(1) in secret_ids for m in _INPUT.finditer(text)):
                        reference = secret_name(name, var)
                        secrets[reference] = filled
                        kept[var] = f"${{secret:{reference}}}"
                    elif not unfilled(text):
                        kept[var] = filled
                entry[key] = kept
            else:
                entry[key] = put(value) if isinstance(value, str) else value
        return entry, secrets


def catalogue_file() -> Path:
    """Where the catalogue is: in a frozen bundle, else in the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    root = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return root.joinpath(*CATALOGUE_PARTS)


def load_catalogue(path: Path | None = None) -> list[CatalogueItem]:
    """The catalogue's items, in the file's order.

    Raises:
        CatalogueError: the file cannot be read or an item lacks a field.
    """
    path = path or catalogue_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            CatalogueItem(
                id=item["id"],
                title=item["title"],
                description=item["description"],
                homepage=item.get("homepage", ""),
                needs=item.get("needs", ""),
                entry=item["entry"],
                inputs=tuple(Input(**raw) for raw in item.get("inputs", ())),
            )
            for item in data["servers"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogueError(f"The server catalogue {path} cannot be read: {exc}") from exc
