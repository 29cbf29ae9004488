"""Decoding in a child process, so a decoder crash on a hostile clip is a ClipError, not the
end of the consumer.

decord 0.6.0 (FFmpeg 4.1 inside) raises catchable errors for empty, garbage, truncated and
most corrupt clips, but some damaged MP4s (a few bytes changed in the index) kill the
process with SIGSEGV while it opens them. A consumer that decoded such a clip in-process
would die, restart, be handed the same uncommitted record, and die again. Here one
long-lived child process decodes; when it dies or hangs on a clip, the clip gets
``ClipError("corrupt", ...)``, a fresh child is started for the next one, and the caller
carries on.

The child is ``python -m video.isolated`` talking over two pipes (pickled requests and
replies), not ``multiprocessing``, so it never re-imports the caller's main module.
"""

from __future__ import annotations

import importlib
import os
import queue
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from video.decode import CORRUPT, ClipError, DecodedClip

DEFAULT_TARGET = "video.decode:decode_clip"


class IsolatedDecoder:
    """``decode(source, **options)`` runs ``target`` (``"module:function"``, by default
    :func:`video.decode.decode_clip`) in a child process and returns its result; ClipError
    for a clip the decoder rejects, crashes on, or spends over ``timeout_s`` seconds on.
    Use it as a context manager, or call ``close``."""

    def __init__(self, timeout_s: float = 60.0, target: str = DEFAULT_TARGET):
        self.timeout_s = timeout_s
        self.target = target
        self._child: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self.restarts = 0  # children that died or hung and were replaced

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "video.isolated", str(to_child_r), str(to_parent_w), self.target],
            pass_fds=(to_child_r, to_parent_w), env=env, stdin=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(to_parent_w)
        self._requests = Connection(to_child_w, readable=False)
        self._replies = Connection(to_parent_r, writable=False)

    def decode(self, source: bytes | str | os.PathLike, **options) -> DecodedClip:
        """The target's result for ``source``; ClipError if it rejects, crashes or hangs."""
        if self._child is None or self._child.poll() is not None:
            self._start()
        try:
            self._requests.send((source, options))
            if not self._replies.poll(self.timeout_s):
                self._stop()
                self.restarts += 1
                raise ClipError(CORRUPT, f"the decoder took more than {self.timeout_s} s; it was stopped")
            status, *payload = self._replies.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._child.wait()
            self._stop()
            self.restarts += 1
            raise ClipError(CORRUPT, f"the decoder crashed on this clip ({_describe_exit(code)})") from None
        if status == "ok":
            return payload[0]
        if status == "clip_error":
            raise ClipError(*payload)
        raise payload[0]  # a bug on our side (bad options): the caller's exception, not a dead letter

    def _stop(self) -> None:
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
                self._child.wait()
            self._requests.close()
            self._replies.close()
            self._child = None

    def close(self) -> None:
        """Stop the child process (it also stops on its own when this process exits)."""
        self._stop()

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class IsolatedDecoderPool:
    """``size`` isolated decoders side by side: ``submit_all`` starts decoding a batch of clips
    in parallel child processes and returns at once, a future per clip that gives its result or
    its ClipError."""

    def __init__(self, size: int = 2, timeout_s: float = 60.0, target: str = DEFAULT_TARGET):
        if size < 1:
            raise ValueError(f"a decoder pool needs at least one decoder, got {size}")
        self.idle: queue.SimpleQueue[IsolatedDecoder] = queue.SimpleQueue()
        self.decoders = [IsolatedDecoder(timeout_s, target) for _ in range(size)]
        for decoder in self.decoders:
            self.idle.put(decoder)
        self.threads = ThreadPoolExecutor(size, thread_name_prefix="decode")

    def _decode_one(self, source: bytes | str | os.PathLike, options: dict) -> DecodedClip | ClipError:
        decoder = self.idle.get()
        try:
            return decoder.decode(source, **options)
        except ClipError as exc:
            return exc
        finally:
            self.idle.put(decoder)

    def submit_all(self, sources: list, **options) -> list[Future]:
        """Start decoding ``sources`` (in order, behind what was submitted before); each future
        gives a DecodedClip or a ClipError."""
        return [self.threads.submit(self._decode_one, source, options) for source in sources]

    def close(self) -> None:
        self.threads.shutdown()
        for decoder in self.decoders:
            decoder.close()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _serve(requests: Connection, replies: Connection, target: str) -> None:
    """The child's loop: call the target on each request, send back its result or error."""
    module, name = target.split(":")
    function = getattr(importlib.import_module(module), name)
    while True:
        try:
            source, options = requests.recv()
        except EOFError:
            return
        try:
            replies.send(("ok", function(source, **options)))
        except ClipError as exc:
            replies.send(("clip_error", exc.reason, exc.detail))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller to raise
            replies.send(("error", exc))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False), sys.argv[3])
