"""A local stand-in for the Hugging Face hub: just the calls huggingface_hub 2.4 makes to download a model.

    with HubStub({"org/minilm": SST2_MODEL}) as hub:
        download_model("org/minilm", endpoint=hub.endpoint, cache_dir=...)
        hub.requests  # [("GET", "/api/models/org/minilm?blobs=True"), ("HEAD", ...), ...]

Answered (read from huggingface_hub's hf_api.py, file_download.py and _snapshot_download.py, and checked
against the requests it actually sends, which `requests` records):

- GET  /api/models/{repo}[/revision/{rev}][?blobs=true]  model info (`HfApi.model_info`, `repo_info`): id, sha
  and siblings, with size, blobId and lfs {size, sha256, pointerSize} when blobs=true (`files_metadata=True`).
- GET  /api/models/{repo}/tree/{rev}[?recursive=true]  the file listing `snapshot_download` asks for.
- HEAD /{repo}/resolve/{rev}/{file}  file metadata (`get_hf_file_metadata`): ETag (the git blob id),
  X-Repo-Commit, Content-Length, and for LFS files X-Linked-Etag (the sha256) and X-Linked-Size, as the real
  hub sends them; huggingface_hub names the cached blob after X-Linked-Etag, else ETag.
- GET  /{repo}/resolve/{rev}/{file}  the bytes, honouring `Range: bytes=N-` (206) as huggingface_hub resumes
  that way, optionally throttled to `bytes_per_s` so progress can be watched mid-file.

Unknown repos answer 404 with X-Error-Code RepoNotFound, unknown revisions RevisionNotFound, unknown files
EntryNotFound: the headers huggingface_hub's `hf_raise_for_status` turns into its typed errors. Nothing is
served over Xet (no X-Xet-* headers), so huggingface_hub takes its plain HTTP download path.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

# What the real hub keeps in LFS for a model repo (its default .gitattributes), plus anything over 10 MB.
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".msgpack", ".h5", ".onnx", ".ot", ".pt", ".pth", ".ckpt")
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK = 64 * 1024

FileSource = bytes | Path
RepoSource = Path | Mapping[str, FileSource]


class _File:
    def __init__(self, name: str, source: FileSource) -> None:
        self.name = name
        self.source = source
        data = source.read_bytes() if isinstance(source, Path) else source
        self.size = len(data)
        self.blob_id = hashlib.sha1(b"blob %d\0" % self.size + data).hexdigest()
        self.lfs = name.endswith(LFS_SUFFIXES) or self.size >= LFS_MIN_SIZE
        self.sha256 = hashlib.sha256(data).hexdigest() if self.lfs else None

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id

    def read(self) -> bytes:
        return self.source.read_bytes() if isinstance(self.source, Path) else self.source

    def info(self) -> dict[str, object]:
        entry: dict[str, object] = {"rfilename": self.name, "size": self.size, "blobId": self.blob_id}
        if self.sha256 is not None:
            entry["lfs"] = {"size": self.size, "sha256": self.sha256, "pointerSize": 134}
        return entry


class _Repo:
    def __init__(self, repo_id: str, source: RepoSource) -> None:
        files = HubStub.folder_files(source) if isinstance(source, Path) else dict(source)
        self.repo_id = repo_id
        self.files = {name: _File(name, data) for name, data in sorted(files.items())}
        digest = hashlib.sha1(repo_id.encode())
        for file in self.files.values():
            digest.update(f"{file.name}:{file.etag}".encode())
        self.sha = digest.hexdigest()

    def knows(self, revision: str) -> bool:
        return revision in {"main", self.sha}

    def info(self, blobs: bool) -> dict[str, object]:
        siblings = [f.info() if blobs else {"rfilename": f.name} for f in self.files.values()]
        return {
            "_id": self.sha[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "sha": self.sha,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": ["transformers", "text-classification"],
            "pipeline_tag": "text-classification",
            "library_name": "transformers",
            "siblings": siblings,
        }

    def tree(self) -> list[dict[str, object]]:
        entries = []
        for file in self.files.values():
            entry: dict[str, object] = {
                "type": "file",
                "oid": file.blob_id,
                "size": file.size,
                "path": file.name,
            }
            if file.sha256 is not None:
                entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 134}
            entries.append(entry)
        return entries


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-file (a cancelled download) is expected; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class HubStub:
    """A threaded HTTP server on 127.0.0.1 and a free port serving fake model repos; a context manager."""

    def __init__(self, repos: Mapping[str, RepoSource], *, bytes_per_s: float | None = None) -> None:
        """`repos` maps a repo id to a local folder (its top-level files are served) or to {filename: bytes or
        Path}. `bytes_per_s` throttles each file download (None: as fast as the loopback goes)."""
        self.repos = {repo_id: _Repo(repo_id, source) for repo_id, source in repos.items()}
        self.bytes_per_s = bytes_per_s
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="hub-stub", daemon=True
        )

    @staticmethod
    def folder_files(folder: Path) -> dict[str, FileSource]:
        return {path.name: path for path in sorted(folder.iterdir()) if path.is_file()}

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def downloaded(self) -> list[str]:
        """Names of the files whose bytes were requested (GET on resolve), in order."""
        return [
            path.rsplit("/resolve/", 1)[1].split("/", 1)[1]
            for method, path in self.requests
            if method == "GET" and "/resolve/" in path
        ]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                stub._record("GET", self.path)
                self._route(body=True)

            def do_HEAD(self) -> None:
                stub._record("HEAD", self.path)
                self._route(body=False)

            def _route(self, body: bool) -> None:
                url = urlsplit(self.path)
                path = unquote(url.path)
                query = parse_qs(url.query)
                if match := re.fullmatch(r"/api/models/(.+?)/tree/([^/]+)(?:/.*)?", path):
                    self._tree(match[1], match[2], body)
                elif match := re.fullmatch(r"/api/models/(.+?)(?:/revision/([^/]+))?", path):
                    blobs = query.get("blobs", ["false"])[0].lower() == "true"
                    self._info(match[1], match[2] or "main", blobs, body)
                elif match := re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path):
                    self._resolve(match[1], match[2], match[3], body)
                else:
                    self._error(404, "", "Not Found", body)

            def _repo(self, repo_id: str, revision: str, body: bool) -> _Repo | None:
                repo = stub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", "Repository not found", body)
                    return None
                if not repo.knows(revision):
                    self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, body)
                    return None
                return repo

            def _info(self, repo_id: str, revision: str, blobs: bool, body: bool) -> None:
                if repo := self._repo(repo_id, revision, body):
                    self._json(repo.info(blobs), body)

            def _tree(self, repo_id: str, revision: str, body: bool) -> None:
                if repo := self._repo(repo_id, revision, body):
                    self._json(repo.tree(), body)

            def _resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
                repo = self._repo(repo_id, revision, body)
                if repo is None:
                    return
                file = repo.files.get(filename)
                if file is None:
                    self._error(404, "EntryNotFound", f"{filename} does not exist on {revision!r}", body)
                    return
                start = 0
                if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                    start = min(int(match[1]), file.size)
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(file.size - start))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
                self.send_header("ETag", f'"{file.blob_id}"')
                if file.sha256 is not None:
                    self.send_header("X-Linked-Etag", f'"{file.sha256}"')
                    self.send_header("X-Linked-Size", str(file.size))
                self.send_header("X-Repo-Commit", repo.sha)
                self.end_headers()
                if body:
                    self._send_throttled(file.read()[start:])

            def _send_throttled(self, data: bytes) -> None:
                began = time.monotonic()
                for offset in range(0, len(data), CHUNK):
                    self.wfile.write(data[offset : offset + CHUNK])
                    if stub.bytes_per_s:
                        ahead = (offset + CHUNK) / stub.bytes_per_s - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)

            def _json(self, payload: object, body: bool) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, message: str, body: bool) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler
