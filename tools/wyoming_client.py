#!/usr/bin/env python3
"""A Wyoming client for testing `s4listen serve`, on the real client library (`pip install wyoming`).

Each subcommand prints one JSON object on standard output (the CLI tests parse it):

  describe URI                      the `info` answer: program and wake models
  stream URI FILE… [options]        one stream (audio-start … audio-stop) of the files one after
                                    another with --gap seconds of silence around each; prints every
                                    event the server sent for it. The audio goes at the files' own
                                    rate (no resampling on either side), as --width 2 or 4 byte
                                    samples on --channels channels (copies of the mono signal).
  pair URI FILE_A FILE_B            two clients at once, their chunks interleaved: each gets its own events
  bad URI CASE                      a broken client: malformed, short-payload, huge-payload,
                                    mid-chunk or burst (200 connections at once)

After audio-stop the client sends `ping`: the server answers in order, so the `pong` marks the
end of the stream's events (a stream with a detection gets no `not-detected`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import socket
import sys
import time
from urllib.parse import urlparse

import numpy as np
import soundfile
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.wake import Detect

TIMEOUT = 30.0


def load(files: list[str], gap: float, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """The files' mono samples (float, -1..1) one after another, `gap` seconds of silence around each."""
    pieces: list[np.ndarray] = []
    rate = None
    for path in files:
        audio, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
        if rate is not None and file_rate != rate:
            sys.exit(f"{path}: {file_rate} Hz, the others {rate} Hz")
        rate = file_rate
        audio = audio.mean(axis=1)
        if max_seconds is not None:
            audio = audio[: int(max_seconds * rate)]
        silence = np.zeros(int(gap * rate), dtype=np.float32)
        pieces += [silence, audio]
    pieces.append(np.zeros(int(gap * rate), dtype=np.float32))
    return np.concatenate(pieces), rate


def pcm(samples: np.ndarray, width: int, channels: int) -> bytes:
    """Interleaved little-endian signed integers of `width` bytes, the signal copied to each channel."""
    if width == 2:
        ints = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    elif width == 4:
        ints = np.clip(np.round(samples.astype(np.float64) * 2147483647), -2**31, 2**31 - 1).astype("<i4")
    else:
        raise ValueError(f"width {width}")
    return np.repeat(ints[:, None], channels, axis=1).tobytes()


def summary(event: Event) -> dict:
    return {"type": event.type, **{k: v for k, v in (event.data or {}).items() if k in ("name", "timestamp", "text", "code")}}


class Stream:
    """One client streaming one signal."""

    def __init__(self, uri: str, samples: np.ndarray, rate: int, width: int, channels: int, chunk_ms: float,
                 names: list[str] | None, audio_start: bool = True):
        self.client = AsyncClient.from_uri(uri)
        self.rate, self.width, self.channels = rate, width, channels
        self.data = pcm(samples, width, channels)
        self.step = max(1, int(rate * chunk_ms / 1000)) * width * channels
        self.names = names
        self.audio_start = audio_start
        self.timestamp = 0
        self.events: list[dict] = []

    async def start(self):
        await self.client.connect()
        await self.client.write_event(Detect(names=self.names).event())
        if self.audio_start:
            start = AudioStart(rate=self.rate, width=self.width, channels=self.channels, timestamp=self.timestamp)
            await self.client.write_event(start.event())

    def chunks(self):
        for offset in range(0, len(self.data), self.step):
            yield AudioChunk(rate=self.rate, width=self.width, channels=self.channels,
                             audio=self.data[offset:offset + self.step]).event()

    async def stop(self):
        try:
            await self.client.write_event(AudioStop().event())
            await self.client.write_event(Ping(text="end").event())
        except ConnectionError:
            pass  # the server closed the connection: what it said before is still to be read
        await self.read_until_pong()

    async def read_until_pong(self):
        while True:
            event = await asyncio.wait_for(self.client.read_event(), TIMEOUT)
            if event is None:
                self.events.append({"type": "closed"})
                break
            if event.type == "pong":
                break
            self.events.append(summary(event))
        await self.client.disconnect()


async def describe(args) -> dict:
    async with AsyncClient.from_uri(args.uri) as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), TIMEOUT)
    info = Info.from_event(event)
    program = info.wake[0]
    return {"program": program.name, "installed": program.installed, "version": program.version,
            "models": [{"name": m.name, "phrase": m.phrase, "description": m.description, "languages": m.languages,
                        "version": m.version, "attribution": m.attribution.name, "installed": m.installed}
                       for m in program.models]}


async def stream(args) -> dict:
    samples, rate = load(args.files, args.gap, args.max_seconds)
    s = Stream(args.uri, samples, rate, args.width, args.channels, args.chunk_ms, args.names, not args.no_audio_start)
    s.timestamp = args.timestamp
    await s.start()
    seconds_per_chunk = args.chunk_ms / 1000
    try:
        for chunk in s.chunks():
            await s.client.write_event(chunk)
            if args.realtime:
                await asyncio.sleep(seconds_per_chunk)
    except ConnectionError:
        pass  # refused mid-stream: stop() reads why
    await s.stop()
    return {"rate": rate, "seconds": len(samples) / rate, "events": s.events}


async def pair(args) -> dict:
    streams = []
    for path, rate_width_channels in ((args.first, (2, 1)), (args.second, (4, 2))):
        samples, rate = load([path], args.gap, None)
        streams.append(Stream(args.uri, samples, rate, *rate_width_channels, args.chunk_ms, None))
    for s in streams:
        await s.start()
    # Alternate the two clients' chunks, so both streams are open and in progress at once.
    iterators = [s.chunks() for s in streams]
    live = [True, True]
    while any(live):
        for i, (s, chunks) in enumerate(zip(streams, iterators)):
            chunk = next(chunks, None) if live[i] else None
            if chunk is None:
                live[i] = False
                continue
            await s.client.write_event(chunk)
    await asyncio.gather(*(s.stop() for s in streams))
    return {"clients": [{"rate": s.rate, "events": s.events} for s in streams]}


def connect(uri: str) -> socket.socket:
    parsed = urlparse(uri)
    if parsed.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(parsed.path)
    else:
        sock = socket.create_connection((parsed.hostname, parsed.port))
    sock.settimeout(TIMEOUT)
    return sock


def header(event_type: str, **fields) -> bytes:
    return (json.dumps({"type": event_type, **fields}) + "\n").encode()


def answer(sock: socket.socket) -> dict:
    """The first event the server sends back (its header and data), or that it closed."""
    received = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            received += part
    except (TimeoutError, ConnectionResetError):
        pass
    if not received:
        return {"type": "closed"}
    line, _, rest = received.partition(b"\n")
    head = json.loads(line)
    data = json.loads(rest[: head.get("data_length", 0)] or b"{}")
    return {"type": head["type"], "code": data.get("code"), "text": data.get("text"), "closed": True}


def bad(args) -> dict:
    if args.case == "burst":
        return burst(args.uri, 200)
    sock = connect(args.uri)
    if args.case == "malformed":
        sock.sendall(b"{this is not json\n")
    elif args.case == "short-payload":
        # Declares 10000 bytes of payload, sends 100, then says it has finished sending.
        sock.sendall(header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1}, payload_length=10000) + b"\0" * 100)
        sock.shutdown(socket.SHUT_WR)
    elif args.case == "huge-payload":
        # 100 MB declared; the server must refuse it from the header alone.
        sock.sendall(header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1}, payload_length=100_000_000))
    elif args.case == "mid-chunk":
        sock.sendall(header("audio-start", data={"rate": 16000, "width": 2, "channels": 1}))
        sock.sendall(header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1}, payload_length=3200) + b"\1" * 1000)
        sock.close()  # gone in the middle of the chunk
        return {"type": "disconnected"}
    elif args.case == "bad-rate":
        sock.sendall(header("audio-start", data={"rate": 500, "width": 2, "channels": 1}))
    elif args.case == "bad-width":
        sock.sendall(header("audio-start", data={"rate": 16000, "width": 3, "channels": 1}))
    return answer(sock)


def burst(uri: str, count: int) -> dict:
    """`count` connections opened as fast as possible, held until each is answered or accepted."""
    sockets, refused, failed = [], 0, 0
    for _ in range(count):
        try:
            sockets.append(connect(uri))
        except OSError:
            failed += 1
    # The server refuses those past its client limit with an error event; the rest stay open and
    # silent. So answers are awaited on all of them at once until none has come for 2 s (a loaded
    # machine may answer late, but not with such gaps), or 30 s have passed.
    waiting = list(sockets)
    now = time.monotonic()
    quiet_until, deadline = now + 2, now + 30
    while waiting and time.monotonic() < min(quiet_until, deadline):
        ready, _, _ = select.select(waiting, [], [], 0.1)
        for sock in ready:
            try:
                data = sock.recv(4096)
            except OSError:         # reset: closed without an answer
                data = b""
            if b"too-many-clients" in data or b"error" in data:
                refused += 1
            waiting.remove(sock)
            quiet_until = time.monotonic() + 2
    for sock in sockets:
        sock.close()
    return {"type": "burst", "connected": len(sockets), "refused": refused, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("describe")
    p.add_argument("uri")
    p = commands.add_parser("stream")
    p.add_argument("uri")
    p.add_argument("files", nargs="+")
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--chunk-ms", type=float, default=20)
    p.add_argument("--gap", type=float, default=1.0, help="seconds of silence before, between and after the files")
    p.add_argument("--max-seconds", type=float, help="only the first seconds of each file")
    p.add_argument("--names", nargs="*", help="wake words to ask for (detect)")
    p.add_argument("--realtime", action="store_true", help="pace the chunks in real time")
    p.add_argument("--no-audio-start", action="store_true", help="chunks without audio-start, as wyoming-satellite sends them")
    p.add_argument("--timestamp", type=int, default=0, help="audio-start's timestamp (ms)")
    p = commands.add_parser("pair")
    p.add_argument("uri")
    p.add_argument("first", help="streamed as 16-bit mono")
    p.add_argument("second", help="streamed as 32-bit stereo")
    p.add_argument("--chunk-ms", type=float, default=20)
    p.add_argument("--gap", type=float, default=1.0)
    p = commands.add_parser("bad")
    p.add_argument("uri")
    p.add_argument("case", choices=["malformed", "short-payload", "huge-payload", "mid-chunk", "bad-rate", "bad-width", "burst"])
    args = parser.parse_args()
    if args.command == "bad":
        result = bad(args)
    else:
        result = asyncio.run({"describe": describe, "stream": stream, "pair": pair}[args.command](args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
