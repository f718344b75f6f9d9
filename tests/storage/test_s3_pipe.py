"""The pipe between a deposit's request and the S3 upload: bounded in bytes, not in chunks, so
a part's worth of the request keeps arriving while the previous part uploads."""

from __future__ import annotations

import threading

import pytest

from dossiers.storage.s3 import _EOF, _Aborted, _Pipe


def test_the_pipe_holds_up_to_its_limit_in_bytes_whatever_the_chunk_size():
    pipe = _Pipe(limit=1000)
    for _ in range(10):  # ten small chunks fit: the bound is bytes, not items
        assert pipe.put(b"x" * 100, timeout=0.1)
    assert not pipe.put(b"x", timeout=0.1)  # full
    assert pipe.read(250) == b"x" * 100  # a read returns what one chunk holds, at most n
    assert pipe.put(b"y" * 100, timeout=0.1)  # room again
    assert not pipe.put(b"y" * 100, timeout=0.1)


def test_a_chunk_larger_than_the_limit_goes_in_once_the_pipe_is_empty():
    pipe = _Pipe(limit=10)
    assert pipe.put(b"a" * 50, timeout=0.1)
    assert not pipe.put(b"b", timeout=0.1)
    assert pipe.read() == b"a" * 50
    assert pipe.put(b"b" * 50, timeout=0.1)


def test_a_waiting_writer_resumes_when_the_reader_reads_and_the_end_is_seen():
    pipe = _Pipe(limit=100)
    assert pipe.put(b"1" * 100)
    done = threading.Event()
    threading.Thread(target=lambda: (pipe.put(b"2" * 100), pipe.put(_EOF), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # blocked on the full pipe
    got = b""
    while chunk := pipe.read(64):
        got += chunk
    assert got == b"1" * 100 + b"2" * 100 and done.wait(2)


def test_drain_lets_writers_through_and_abort_stops_the_reader_at_once():
    pipe = _Pipe(limit=10)
    assert pipe.put(b"z" * 10)
    released = threading.Event()
    threading.Thread(target=lambda: (pipe.put(b"w" * 10), released.set()), daemon=True).start()
    assert not released.wait(0.2)
    pipe.drain()  # the upload failed: the request's writer must not hang
    assert released.wait(2)

    pipe = _Pipe(limit=100)
    pipe.put(b"queued data the upload will never need")
    pipe.abort()
    with pytest.raises(_Aborted):
        pipe.read()
