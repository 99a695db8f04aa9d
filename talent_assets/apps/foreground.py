"""Keep a started local stack in the foreground until Ctrl-C (``talent up``, ``talent demo
--keep``)."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from talent_assets.apps.cli_errors import CliError

if TYPE_CHECKING:
    from talent_assets.devstack.stack import LocalStack


def wait_until_interrupted(stack: LocalStack) -> None:
    """Return on SIGINT or SIGTERM; raise :class:`CliError` if Dagster exits meanwhile.

    Both signals are handled explicitly: a shell that starts us in the background ignores
    SIGINT, and Ctrl-C must still stop the stack cleanly rather than leave servers behind.
    The caller stops the stack.
    """
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            if stack.dagster is None or stack.dagster.poll() is not None:
                raise CliError(f"dagster dev exited; see {stack.root / 'logs' / 'dagster.log'}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
