"""The directory where the processes of ``exchange serve`` keep their metrics (the client
library's multiprocess mode). Set up before any process imports ``prometheus_client``, which
chooses its mode at import: this module does not import it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(home: Path) -> Path:
    """Empty ``home/metrics`` (figures of a former run would be summed in) and name it in the
    environment, which the API processes, started afterwards, inherit."""
    if "prometheus_client" in sys.modules and os.environ.get(ENV) is None:
        raise RuntimeError("prometheus_client was imported before the metrics directory was set up")
    path = Path(home) / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[ENV] = str(path)
    return path
