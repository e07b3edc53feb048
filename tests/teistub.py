"""A local stand-in for a remote inference server speaking text-embeddings-inference's /predict protocol.
It answers with VADER's view of each text, and can be made slow or stopped and started again on its port."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_ANALYZER = SentimentIntensityAnalyzer()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        time.sleep(self.server.stub.delay_s)
        rows = []
        for text in body["inputs"]:
            scores = _ANALYZER.polarity_scores(text)
            total = scores["neg"] + scores["neu"] + scores["pos"] or 1.0
            row = [
                {"label": "LABEL_0", "score": scores["neg"] / total},
                {"label": "LABEL_1", "score": scores["neu"] / total},
                {"label": "LABEL_2", "score": scores["pos"] / total},
            ]
            rows.append(sorted(row, key=lambda item: -item["score"]))
        payload = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.server.stub.calls += 1

    def log_message(self, *_: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, stub: TeiStub) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stub = stub


class TeiStub:
    def __init__(self) -> None:
        self.delay_s = 0.0
        self.calls = 0
        self.port = 0
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TeiStub:
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
