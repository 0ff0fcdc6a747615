"""Claiming and running jobs. The embedded worker runs inside the server process."""
