"""The sampling side of APPO: trajectory buffers, env workers and the native sampling engine."""
