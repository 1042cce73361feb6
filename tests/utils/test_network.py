"""pysf.utils.network.is_udp_port_available."""

from __future__ import annotations

import logging
import socket

from pysf.utils.network import is_udp_port_available


def test_port_taken_then_free(caplog):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("", 0))
    port = holder.getsockname()[1]
    try:
        with caplog.at_level(logging.WARNING, logger="rl"):
            assert is_udp_port_available(port) is False
        assert any(str(port) in r.getMessage() for r in caplog.records), "says which port cannot be used"
    finally:
        holder.close()
    assert is_udp_port_available(port) is True
    # the check released the port again
    assert is_udp_port_available(port) is True


def test_out_of_range_port_is_unavailable():
    assert is_udp_port_available(70000) is False
