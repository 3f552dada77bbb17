"""Files and folders only the current user can open, on Windows (on macOS and Linux the mode does it).

``restrict_to_user`` replaces the item's access list with one entry, the current user with full control,
and stops it inheriting the parent's entries; a folder's entry is inherited by what is created in it.
``others_allowed`` names whoever else the list lets in. pywin32 makes the calls (the ``mcp`` SDK needs it
on Windows too). Both only run on Windows: callers choose the POSIX mode elsewhere.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

if sys.platform == "win32":
    import ntsecuritycon
    import pywintypes
    import win32api
    import win32security


if sys.platform == "win32":

    def restrict_to_user(path: Path) -> None:
        """Let only the current user open ``path`` (a file or a folder).

        Raises:
            OSError: the access list cannot be set.
        """
        inherit = win32security.OBJECT_INHERIT_ACE | win32security.CONTAINER_INHERIT_ACE if path.is_dir() else 0
        dacl = win32security.ACL()
        dacl.AddAccessAllowedAceEx(win32security.ACL_REVISION, inherit, ntsecuritycon.FILE_ALL_ACCESS, _user_sid())
        try:
            win32security.SetNamedSecurityInfo(
                str(path),
                win32security.SE_FILE_OBJECT,
                win32security.DACL_SECURITY_INFORMATION | win32security.PROTECTED_DACL_SECURITY_INFORMATION,
                None,
                None,
                dacl,
                None,
            )
        except pywintypes.error as exc:
            raise OSError(errno.EACCES, f"cannot restrict {path} to the current user: {exc.strerror}") from exc

    def others_allowed(path: Path) -> list[str]:
        """Who other than the current user may open ``path`` (account names; empty when only the user may).

        Raises:
            OSError: the access list cannot be read.
        """
        try:
            info = win32security.GetNamedSecurityInfo(
                str(path), win32security.SE_FILE_OBJECT, win32security.DACL_SECURITY_INFORMATION
            )
        except pywintypes.error as exc:
            raise OSError(errno.EACCES, f"cannot read who may open {path}: {exc.strerror}") from exc
        dacl = info.GetSecurityDescriptorDacl()
        if dacl is None:  # no list at all: everyone may
            return ["Everyone"]
        user = _user_sid()
        others = []
        for index in range(dacl.GetAceCount()):
            (ace_type, _flags), _mask, sid = dacl.GetAce(index)
            if ace_type == win32security.ACCESS_ALLOWED_ACE_TYPE and sid != user:
                name, domain, _kind = win32security.LookupAccountSid(None, sid)
                others.append(f"{domain}\\{name}" if domain else name)
        return others

    def _user_sid() -> object:
        token = win32security.OpenProcessToken(win32api.GetCurrentProcess(), win32security.TOKEN_QUERY)
        return win32security.GetTokenInformation(token, win32security.TokenUser)[0]

else:

    def restrict_to_user(path: Path) -> None:
        """Windows only: elsewhere the file mode does this (raises OSError)."""
        raise OSError(errno.ENOTSUP, f"access lists are set on Windows only; {path} keeps its file mode")

    def others_allowed(path: Path) -> list[str]:
        """Windows only: elsewhere the file mode says this (raises OSError)."""
        raise OSError(errno.ENOTSUP, f"access lists are read on Windows only; see the file mode of {path}")
