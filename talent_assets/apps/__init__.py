"""Front ends: the ``talent`` CLI, the in-process runner, the demo, the HTTP API, SQL."""
