"""The file-system broker of the embedded default, made safe for a producer and a consumer in
different processes.

kombu's ``filesystem`` transport creates a message file under its final name and only then
writes it, while a consumer claims files by moving them, ignoring the producer's lock. Under a
burst (the API's outbox relay publishing while the worker consumes) the consumer takes a file
that is still empty, fails to decode it and Celery stops the worker ("Unrecoverable error:
JSONDecodeError"); the message is lost with it. Here a message is written under a hidden name
and renamed into the queue once complete (a rename within a folder is atomic), a consumer
claims a message by renaming it into the processed folder beside the queue (one claimant
wins, on the same file system), and a message that still cannot be read is set aside in
``rejected/`` and logged instead of stopping the worker.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

TRANSPORT = "workers.fsbroker:Transport"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        # A leading dot: no consumer's pattern (<stamp>_<uuid>.<queue>.msg) matches it.
        partial = folder / f".{name}.part"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, folder / name)
        except OSError as exc:
            try:
                partial.unlink()
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _get(self, queue):  # type: ignore[override]
        suffix = f".{queue}.msg"
        folder = Path(self.data_folder_in)
        claimed_in = Path(self.processed_folder)
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or name.partition(".")[2] != suffix[1:]:
                continue
            claimed = claimed_in / name
            try:
                os.rename(folder / name, claimed)
            except OSError:
                continue  # another consumer took it
            try:
                payload = claimed.read_bytes()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError) as exc:
                self._set_aside(claimed, exc)
                continue
            if not self.store_processed:
                try:
                    claimed.unlink()
                except OSError:
                    pass
            return message
        raise Empty()

    def _set_aside(self, path: Path, exc: Exception) -> None:
        rejected = path.parent.parent / "rejected"
        try:
            rejected.mkdir(exist_ok=True)
            os.replace(path, rejected / path.name)
        except OSError:
            pass
        log.error("broker message %s cannot be read (%s); set aside in %s", path.name, exc, rejected)


class Transport(filesystem.Transport):
    Channel = Channel
