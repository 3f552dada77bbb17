"""Desktop notifications where no tray icon can show them (a Linux desktop without a tray).

They go to the freedesktop notification service, ``org.freedesktop.Notifications`` on the session bus,
which GNOME Shell, KDE Plasma and every notification daemon serve, through jeepney (the pure-Python
D-Bus library keyring already uses there). Each is sent on a thread of its own, so a bus that does not
answer never holds up the window; one that cannot be sent is logged and dropped, as a tray balloon the
platform cannot show would be.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)

APP_NAME = "Toolgate"
# How long a call to the notification service may take before the notification is given up.
SEND_TIMEOUT_S = 2.0
_SERVICE = "org.freedesktop.Notifications"


def send(title: str, text: str, *, timeout_ms: int) -> threading.Thread | None:
    """Ask the desktop's notification service to show ``title`` and ``text`` for ``timeout_ms``.

    Returns:
        The thread sending it (done within ``SEND_TIMEOUT_S``), or None where there is no session bus
        to send it on (not Linux, or no ``DBUS_SESSION_BUS_ADDRESS``).
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    thread = threading.Thread(target=_send, args=(title, text, timeout_ms), name="desktop-notification", daemon=True)
    thread.start()
    return thread


def _send(title: str, text: str, timeout_ms: int) -> None:
    from jeepney import DBusAddress, DBusErrorResponse, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import unwrap_msg

    service = DBusAddress("/org/freedesktop/Notifications", bus_name=_SERVICE, interface=_SERVICE)
    # Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout)
    call = new_method_call(service, "Notify", "susssasa{sv}i", (APP_NAME, 0, "", title, text, [], {}, timeout_ms))
    try:
        with open_dbus_connection("SESSION") as connection:
            unwrap_msg(connection.send_and_get_reply(call, timeout=SEND_TIMEOUT_S))
    except (OSError, TimeoutError, ValueError, KeyError, DBusErrorResponse) as exc:
        logger.info("the desktop notification %r could not be shown: %s", title, exc)
