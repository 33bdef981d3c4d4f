"""One log line per event, the same shape for our code and uvicorn's."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access logs would print one line per scrape; state changes are logged by the forwarder.
    logging.getLogger("uvicorn.access").disabled = True
    # The SDK logs request details at DEBUG; keep it quiet even when we debug.
    logging.getLogger("oci").setLevel(logging.WARNING)
    # httpx logs every request at INFO ("HTTP Request: GET ..."): one line per scrape.
    logging.getLogger("httpx").setLevel(logging.WARNING)
