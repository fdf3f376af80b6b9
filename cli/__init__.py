"""The `rapport` command: the practice admin's interface, calling the use cases in `app`."""
