"""The command line that starts a Windows batch file (``npx.cmd``) through ``cmd.exe`` safely.

Only ``cmd.exe`` runs a ``.cmd``/``.bat`` file, and it re-reads the arguments with its own rules
(``&``, ``|``, ``%VAR%``…), so quoting them the usual way lets an argument run commands
(CVE-2024-24576, "BatBadBut"). This follows Rust's standard library (``make_bat_command_line`` in
``library/std/src/sys/pal/windows/args.rs``), the fix reviewed for that advisory: every argument with
anything but known-safe characters is quoted, ``"`` is doubled, and ``%`` is broken up so no variable
expands. The result is the text between ``cmd.exe /c "`` and the closing ``"``: Python's
``subprocess`` on Windows wraps a shell command line exactly that way.
"""

from __future__ import annotations

from collections.abc import Sequence

# ASCII punctuation that needs no quotes; everything else that is not a letter or digit gets them.
_UNQUOTED = frozenset("#$*+-./:?@\\_")
# `%cd:~,%` is an empty substring of a variable that always exists: it splits `%` from what follows,
# so `%PATH%` in an argument reaches the server as typed (needs command extensions, on by default).
_PERCENT = "%%cd:~,"


class UnsafeBatchArgumentError(ValueError):
    """An argument cannot be given to a batch file safely (a line break would end the command)."""


def batch_command_line(script: str, args: Sequence[str]) -> str:
    r"""The line ``cmd.exe /c "<line>"`` runs to start ``script`` with exactly ``args``.

    Raises:
        UnsafeBatchArgumentError: ``script`` holds a ``"`` or ends with ``\``, or an argument holds a
            line break or NUL.
    """
    if '"' in script or script.endswith("\\"):
        raise UnsafeBatchArgumentError(f"batch file path cannot be quoted: {script!r}")
    return " ".join([f'"{script}"', *(_quote(arg) for arg in args)])


def _quote(arg: str) -> str:
    if any(c in arg for c in "\r\n\0"):
        raise UnsafeBatchArgumentError("an argument for a batch file holds a line break")
    quote = not arg or arg.endswith("\\") or any(_needs_quotes(c) for c in arg)
    out: list[str] = ['"'] if quote else []
    backslashes = 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            out.append(c)
            continue
        if c == '"':
            out.append("\\" * backslashes + '"')
        elif c == "%":
            out.append(_PERCENT)
        backslashes = 0
        out.append(c)
    if quote:
        out.append("\\" * backslashes + '"')
    return "".join(out)


def _needs_quotes(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c in _UNQUOTED)
    return not c.isprintable()
