"""Check that vit-hub and Python's huggingface_hub share the Hugging Face cache, both ways.

    /work/venv/bin/python scripts/check_hub_cache.py [--resolve target/debug/examples/resolve]

Serves two fixture repos (one model.safetensors, one sharded checkpoint) in the Hub's URL layout from
a loopback Hub plus a loopback "CDN" for LFS files, then:

1. vit-hub (the `resolve` example) downloads both into cache A; huggingface_hub reads every file back
   with `local_files_only=True` (no request reaches the server) and `scan_cache_dir` finds no problem;
2. huggingface_hub (`hf_hub_download`) downloads both into cache B; vit-hub resolves them with
   HF_HUB_OFFLINE=1 (by branch and by commit) to the very snapshot folders, with no request either;
3. caches A and B are identical: every path, symlink target and file content.

Without --resolve, builds the example with `cargo build -p vit-hub --example resolve`. Exits 1 on any
difference.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from safetensors.numpy import save

ROOT = Path(__file__).resolve().parent.parent
SINGLE, SHARDED = "test-org/tiny-vit", "test-org/tiny-vit-sharded"


def tensor_file(name: str, n: int, seed: int) -> bytes:
    return save({name: np.random.default_rng(seed).standard_normal(n).astype(np.float32)})


def fixtures() -> dict:
    """repo id -> (commit, {path: bytes})."""
    config = json.dumps({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "image_size": 32,
                         "patch_size": 8, "num_attention_heads": 2, "intermediate_size": 64}, indent=2).encode()
    processor = b'{"image_processor_type": "ViTImageProcessor", "size": {"height": 32, "width": 32}}\n'
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = json.dumps({"metadata": {}, "weight_map": {"a": shards[0], "b": shards[1]}}).encode()
    repos = {
        SINGLE: {"config.json": config, "preprocessor_config.json": processor,
                 "model.safetensors": tensor_file("w", 1500, 1)},
        SHARDED: {"config.json": config, "model.safetensors.index.json": index,
                  shards[0]: tensor_file("a", 700, 2), shards[1]: tensor_file("b", 900, 3)},
    }
    return {rid: (hashlib.sha1(rid.encode()).hexdigest(), files) for rid, files in repos.items()}


class Servers:
    """A loopback Hub (`/{repo}/resolve/{rev}/{file}`) and CDN (`/cdn/{sha256}`, with Range), counting requests."""

    def __init__(self, repos: dict):
        self.repos, self.requests = repos, 0
        self.blobs = {hashlib.sha256(b).hexdigest(): b for _, files in repos.values() for b in files.values()}
        self.cdn = self._start(self._cdn)
        self.hub = self._start(self._hub)

    def _start(self, route):
        servers = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head):
                servers.requests += 1
                status, headers, body = route(self.path, self.headers.get("Range"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def _hub(self, path, _range):
        parts = path.lstrip("/").split("/", 4)
        if len(parts) != 5 or parts[2] != "resolve":
            return 400, {}, b""
        rid, rev, name = f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote(parts[4])
        if rid not in self.repos:
            return 401, {"X-Error-Code": "RepoNotFound"}, b""
        commit, files = self.repos[rid]
        if rev not in ("main", commit):
            return 404, {"X-Error-Code": "RevisionNotFound"}, b""
        if name not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b""
        data = files[name]
        if name.endswith(".safetensors"):
            sha = hashlib.sha256(data).hexdigest()
            return 302, {"Location": f"{self.cdn}/cdn/{sha}", "X-Repo-Commit": commit, "X-Linked-Etag": f'"{sha}"',
                         "X-Linked-Size": str(len(data)), "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                         "Content-Length": "0"}, b""
        oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        return 200, {"ETag": f'"{oid}"', "X-Repo-Commit": commit}, data

    def _cdn(self, path, range_header):
        data = self.blobs.get(path.removeprefix("/cdn/"))
        if data is None:
            return 404, {}, b""
        start = int(range_header[len("bytes="):-1]) if range_header else 0
        if start == 0:
            return 200, {}, data
        return 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}, data[start:]


def rust_resolve(binary, reference, env) -> dict:
    out = subprocess.run([binary, reference], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"vit-hub resolve {reference} failed: {out.stderr.strip()}")
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def tree(cache: Path) -> dict:
    """relative path -> ('link', target) | ('file', sha256) | ('dir',), for the repos (locks and tag left out)."""
    out = {}
    for path in sorted(cache.rglob("*")):
        rel = path.relative_to(cache).as_posix()
        if not rel.startswith("models--"):
            continue
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir",)
        else:
            out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolve", help="the built `resolve` example of vit-hub")
    args = ap.parse_args()
    binary = args.resolve
    if binary is None:
        subprocess.run(["cargo", "build", "-q", "-p", "vit-hub", "--example", "resolve"], cwd=ROOT, check=True)
        binary = str(ROOT / "target/debug/examples/resolve")

    repos = fixtures()
    servers = Servers(repos)
    work = Path(tempfile.mkdtemp(prefix="check_hub_cache-"))
    cache_a, cache_b = work / "a", work / "b"
    # huggingface_hub reads its environment at import: set it first (and keep the user's token out).
    os.environ.update(HF_ENDPOINT=servers.hub, HF_HOME=str(work / "home"), HF_HUB_DISABLE_TELEMETRY="1",
                      HF_HUB_DISABLE_PROGRESS_BARS="1")
    for var in ("HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(var, None)
    import huggingface_hub
    from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    print(f"huggingface_hub {huggingface_hub.__version__}; hub {servers.hub}, cdn {servers.cdn}; work dir {work}")
    failures = []

    def check(ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    # What transformers asks for: every file, and the optional/alternative ones that may 404.
    wanted = {SINGLE: ["config.json", "preprocessor_config.json", "model.safetensors"],
              SHARDED: ["config.json", "preprocessor_config.json", "model.safetensors", "model.safetensors.index.json",
                        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]}

    print("1. vit-hub fills cache A, huggingface_hub reads it offline")
    env = dict(os.environ, HF_HUB_CACHE=str(cache_a))
    for rid, (commit, files) in repos.items():
        got = rust_resolve(binary, rid, env)
        check(got["commit"] == commit, f"{rid}: vit-hub resolved main to {got['commit'][:12]}")
        before = servers.requests
        for rev in ("main", commit):
            for name, data in files.items():
                path = hf_hub_download(rid, name, revision=rev, cache_dir=cache_a, local_files_only=True)
                check(Path(path).read_bytes() == data and Path(path).parent == Path(got["dir"]),
                      f"{rid}@{rev[:12]}: {name} read offline from vit-hub's snapshot")
        snap = snapshot_download(rid, cache_dir=cache_a, local_files_only=True)
        check(Path(snap) == Path(got["dir"]), f"{rid}: snapshot_download(local_files_only) gives the same folder")
        check(servers.requests == before, f"{rid}: no request reached the server")
    info = scan_cache_dir(cache_a)
    check(not info.warnings, f"scan_cache_dir(A): no warnings {[str(w) for w in info.warnings]}")
    for repo in info.repos:
        (revision,) = repo.revisions
        check(revision.refs == frozenset({"main"}) and revision.commit_hash == repos[repo.repo_id][0],
              f"scan_cache_dir(A): {repo.repo_id} has main -> {revision.commit_hash[:12]}, {revision.nb_files} files")

    print("2. huggingface_hub fills cache B, vit-hub reads it with HF_HUB_OFFLINE=1")
    for rid, (commit, files) in repos.items():
        for name in wanted[rid]:
            try:
                path = hf_hub_download(rid, name, cache_dir=cache_b)
            except EntryNotFoundError:
                continue
            check(Path(path).read_bytes() == files[name], f"{rid}: huggingface_hub downloaded {name}")
        py_dir = Path(hf_hub_download(rid, "config.json", cache_dir=cache_b, local_files_only=True)).parent
        before = servers.requests
        env = dict(os.environ, HF_HUB_CACHE=str(cache_b), HF_HUB_OFFLINE="1")
        for ref in (rid, f"{rid}@{commit}"):
            got = rust_resolve(binary, ref, env)
            check(Path(got["dir"]) == py_dir and got["commit"] == commit,
                  f"{ref[:40]}: vit-hub offline gives huggingface_hub's snapshot {py_dir.relative_to(cache_b)}")
        check(servers.requests == before, f"{rid}: no request reached the server")

    print("3. the two caches are identical")
    ta, tb = tree(cache_a), tree(cache_b)
    for rel in sorted(set(ta) | set(tb)):
        if ta.get(rel) != tb.get(rel):
            check(False, f"{rel}: vit-hub {ta.get(rel)} vs huggingface_hub {tb.get(rel)}")
    check(ta == tb, f"{len(ta)} entries (blobs, refs, snapshot links, .no_exist marks) match exactly")
    links = {k: v[1] for k, v in ta.items() if v[0] == "link"}
    sample = next(k for k in links if k.endswith("model.safetensors"))
    print(f"  e.g. {sample} -> {links[sample]}")

    if failures:
        print("FAILED: " + "; ".join(failures) + f" (caches kept in {work})")
        return 1
    shutil.rmtree(work)
    print("OK: the cache is shared both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
