"""The naive baseline of bench (d): a minimal ASGI app whose synchronous handler runs a transformers pipeline
on its one text. Run: NAIVE_MODEL=path uvicorn bench.naive_app:app --workers 1"""

import json
import os

import torch
from transformers import pipeline

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
classify = pipeline("sentiment-analysis", model=os.environ["NAIVE_MODEL"], dtype=torch.float32)


def handle(body: bytes) -> bytes:
    result = classify(json.loads(body)["text"])[0]
    return json.dumps({"label": result["label"], "score": result["score"]}).encode()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = handle(body)  # synchronous, on the event loop: one text at a time, as the naive service did
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
