#!/usr/bin/env python3
"""A crowd of hostile or busy clients against `s4listen serve`, then one normal client: what the
service's robustness tests and soak measurements drive (tools/wyoming_client.py's helpers).

  wyoming_crowd.py URI FILE --kinds K=N,… [--over S] [--hold S] [--in-order]

The kinds connect over --over seconds (shuffled, or in the order given) and are held; after
--hold seconds one normal client streams FILE (the real client library). Prints one JSON object:
the normal client's events and time, and per kind what its clients were told (an error event's
code, another event's type, "closed", "reset", "held" when still connected at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlparse

import numpy as np

from wyoming_client import Stream, header, load, pcm


async def open_raw(uri: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parsed = urlparse(uri)
    if parsed.scheme == "unix":
        return await asyncio.open_unix_connection(parsed.path)
    return await asyncio.open_connection(parsed.hostname, parsed.port)


async def told(reader: asyncio.StreamReader, wait: float) -> str:
    """What the server says first: an error event's code, another event's type, "closed" (it
    closed without a word), "reset", or "nothing" after `wait` seconds."""
    try:
        line = await asyncio.wait_for(reader.readline(), wait)
    except TimeoutError:
        return "nothing"
    except ConnectionError:
        return "reset"
    if not line:
        return "closed"
    head = json.loads(line)
    try:
        data = await asyncio.wait_for(reader.readexactly(head.get("data_length", 0)), wait)
        await asyncio.wait_for(reader.readexactly(head.get("payload_length", 0)), wait)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        return f"{head['type']} (cut short)"
    if head["type"] != "error":
        return head["type"]
    return json.loads(data or b"{}").get("code", "error")


AUDIO = {"rate": 16000, "width": 2, "channels": 1}


async def hostile(uri: str, kind: str, wait: float) -> str:
    """One crowd client of `kind`; what it was told before the server let go of it."""
    reader, writer = await open_raw(uri)
    try:
        if kind == "idle":            # connects and says nothing
            pass
        elif kind == "trickle":       # a header one byte every 2 s, never finished
            async def trickle():
                for byte in header("describe"):
                    await asyncio.sleep(2)
                    writer.write(bytes([byte]))
            task = asyncio.create_task(trickle())
            answer = await told(reader, wait)
            task.cancel()
            return answer
        elif kind == "lying":         # declares a payload it never sends in full
            writer.write(header("audio-chunk", data=AUDIO, payload_length=1_000_000) + b"\0" * 100)
        elif kind == "huge-timestamp":  # the largest 64-bit timestamp, then loud noise
            noise = (np.random.default_rng(0).standard_normal(16000) * 0.3).astype(np.float32)
            writer.write(header("audio-start", data={**AUDIO, "timestamp": 2**63 - 1}))
            writer.write(header("audio-chunk", data=AUDIO, payload_length=32000) + pcm(noise, 2, 1))
        elif kind == "mute-reader":   # asks without end and never reads the answers
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if writer.is_closing() or reader.at_eof():
                    return "closed"
                writer.write(header("describe"))
                await asyncio.sleep(0.05)
            return "never read"
        elif kind == "busy":          # a ping every 100 ms, each answered: never idle
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                writer.write(header("ping"))
                answer = await told(reader, 5)
                if answer != "pong":
                    return answer
                await asyncio.sleep(0.1)
            return "pong"
        elif kind == "asker":         # describe at once, then waits for the answer
            writer.write(header("describe"))
        await writer.drain()
        return await told(reader, wait)
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


CROWD_KINDS = ["idle", "trickle", "lying", "huge-timestamp", "mute-reader", "busy", "asker"]


async def crowd(args) -> dict:
    kinds = []
    for part in args.kinds.split(","):
        kind, count = part.split("=")
        if kind not in CROWD_KINDS:
            sys.exit(f"unknown kind {kind}: {', '.join(CROWD_KINDS)}")
        kinds += [kind] * int(count)
    order = range(len(kinds)) if args.in_order else np.random.default_rng(1).permutation(len(kinds))
    gap = args.over / max(1, len(kinds))
    tasks = []
    for i in order:
        tasks.append((kinds[i], asyncio.create_task(hostile(args.uri, kinds[i], 3600))))
        await asyncio.sleep(gap)
    await asyncio.sleep(args.hold)
    started = time.monotonic()
    samples, rate = load([args.file], 1.0, None)
    normal = Stream(args.uri, samples, rate, 2, 1, 20, None)
    try:
        await normal.start()
        for chunk in normal.chunks():
            await normal.client.write_event(chunk)
    except ConnectionError:
        pass  # refused: stop() reads why
    await normal.stop()
    seconds = time.monotonic() - started
    # What the crowd was told by now; those still connected and waiting are "held".
    await asyncio.wait([task for _, task in tasks], timeout=1.0)
    told_by_kind: dict[str, dict[str, int]] = {}
    for kind, task in tasks:
        if not task.done():
            task.cancel()
            answer = "held"
        elif isinstance(task.exception(), OSError):
            answer = f"connect failed: {task.exception().strerror}"
        else:
            answer = task.result()
        told_by_kind.setdefault(kind, {}).setdefault(answer, 0)
        told_by_kind[kind][answer] += 1
    return {"crowd": len(kinds), "seconds": seconds, "events": normal.events, "told": told_by_kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uri")
    parser.add_argument("file", help="what the normal client streams once the crowd is in")
    parser.add_argument("--kinds", required=True, help=f"KIND=COUNT,… of {', '.join(CROWD_KINDS)}")
    parser.add_argument("--over", type=float, default=2.0, help="seconds over which the crowd connects")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds the crowd is held before the normal client starts")
    parser.add_argument("--in-order", action="store_true", help="connect the kinds in the order given (else shuffled)")
    print(json.dumps(asyncio.run(crowd(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
