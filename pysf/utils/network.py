"""Network helpers (Sample Factory's ``sample_factory.utils.network``)."""

from __future__ import annotations

import socket

from pysf.utils.utils import log

__all__ = ["is_udp_port_available"]


def is_udp_port_available(port: int) -> bool:
    """Whether a UDP socket can bind ``port`` on all interfaces right now (e.g. to pick ports for multiplayer
    env servers). Logs a warning saying why when it cannot. The check closes its socket again, so the port can
    still be taken by another process before the caller binds it."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("", port))
    except (OSError, OverflowError) as exc:  # OverflowError: port outside 0-65535
        log.warning("UDP port %s cannot be used: %s", port, exc)
        return False
    return True
