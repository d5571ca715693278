"""Load test of the web app on loopback: concurrent clients against a real `faceveil serve`.

A real server (`python -m faceveil serve --port 0` in its own process, default settings unless
given) is started and warmed up: its workers load their detector, untimed. Then --clients
threads, each with its own keep-alive HTTP connection, start together and send --per-client
different real pictures each (WIDER FACE validation photos from the shared data, 1024 px wide,
every one with at least one face of 32 px or more), in one of two modes:

- `anonymize`: one POST /api/anonymize per picture; the picture comes back in the answer;
- `jobs`: one POST /api/jobs with the client's pictures, GET /api/jobs/{id} every 0.2 s until
  it is done, then GET /api/jobs/{id}/result (a zip; the server then deletes the job).

A 429 (queue full) is retried after its Retry-After, and counted. Bounded: clients x pictures per
mode, a timeout per request and a --deadline for the whole run. The server's resident memory is
read from /proc every 0.1 s, and its peak (VmHWM) at the end.

Afterwards, untimed and with the server stopped, every answer is checked: it must decode as a PNG
of the input's size and hide the same faces as the library itself does with the same settings
(`faceveil.anonymize_image`, one inference thread like each server worker), and each picture's
faces of 32 px and more are scored with the shared data's metric (a face is hidden when 80% of
the central 60% x 60% of its box changed).

    .venv/bin/python bench/web_load.py                        # 20 clients x 5 pictures, both modes
    .venv/bin/python bench/web_load.py --clients 4 --per-client 2 --modes anonymize
    .venv/bin/python bench/web_load.py --markdown --json bench/out/web_load.json

Progress goes to stderr; machine facts and the results go to stdout. Exit status 1 when any
answer was a 5xx, wrong or missing, or the server's peak memory was over --max-rss-mb.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUBSET = Path("images") / "wider_face_val_subset.json"
MODES = ("anonymize", "jobs")


def images_module() -> Any:
    """bench/images.py, for the helpers the benchmarks share (machine facts, tables, data folder)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import images

    return images


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ server


class Server:
    """`faceveil serve` on a free loopback port, with its memory watched."""

    def __init__(self, extra: Sequence[str]) -> None:
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faceveil", "serve", "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.err.seek(0)
            raise SystemExit(f"error: faceveil serve did not start: {line!r} {self.err.read()[-2000:]}")
        host_port = line.split("//", 1)[1].split("/", 1)[0]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._sample, daemon=True)
        self._watch.start()

    def status(self, key: str) -> int:
        """A memory figure of the server process from /proc, in bytes (0 when unknown)."""
        try:
            for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if row.startswith(key + ":"):
                    return int(row.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append((time.perf_counter(), self.status("VmRSS")))

    def peak_between(self, t0: float, t1: float) -> int:
        return max((rss for t, rss in self.samples if t0 <= t <= t1), default=0)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Client(self) as c:
                status, _, body = c.request("GET", "/api/health")
            if status == 200 and json.loads(body)["ready"]:
                return
            time.sleep(0.2)
        raise SystemExit("error: the server's workers did not get ready")

    def stop(self) -> int:
        self._stop.set()
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Client:
    """One keep-alive connection."""

    def __init__(self, server: Server, timeout: float = 300.0) -> None:
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def multipart(files: Sequence[tuple[str, str, bytes]], fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f'{value}\r\n'.encode())
    for field_name, filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        parts.append(data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# -------------------------------------------------------------------------------------- load


@dataclass
class Outcome:
    picture: int  # index into the pictures
    status: int = 0
    data: bytes = b""
    error: str = ""


@dataclass
class ModeRun:
    mode: str
    round: int = 1
    outcomes: list[Outcome] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # per picture (anonymize) or per job
    requests: int = 0
    retries_429: int = 0
    server_errors: int = 0
    seconds: float = 0.0
    peak_rss: int = 0
    rss_before: int = 0
    rss_after: int = 0
    others_cpu: float | None = None
    stalled: dict[str, int] = field(default_factory=dict)  # how the stalled uploads ended
    stalled_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, status: int) -> None:
        with self.lock:
            self.requests += 1
            if status == 429:
                self.retries_429 += 1
            elif status >= 500:
                self.server_errors += 1


def send(client: Client, run: ModeRun, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, deadline: float = 0.0) -> tuple[int, dict, bytes]:
    """One request; a 429 is retried after its Retry-After (until the deadline)."""
    while True:
        status, h, data = client.request(method, path, body, headers)
        run.count(status)
        if status != 429 or time.monotonic() > deadline:
            return status, h, data
        time.sleep(float(h.get("retry-after", "1")))


def client_anonymize(server: Server, run: ModeRun, pictures: list[tuple[str, bytes]], mine: list[int],
                     barrier: threading.Barrier, deadline: float) -> None:
    with Client(server) as client:
        barrier.wait()
        for i in mine:
            outcome = Outcome(i)
            if time.monotonic() > deadline:
                outcome.error = "not sent: deadline"
                run.outcomes.append(outcome)
                continue
            name, data = pictures[i]
            body, ctype = multipart([("file", name, data)], {"format": "png"})
            started = time.perf_counter()
            try:
                outcome.status, _, outcome.data = send(client, run, "POST", "/api/anonymize", body,
                                                       {"Content-Type": ctype}, deadline)
                run.latencies.append(time.perf_counter() - started)
                if outcome.status != 200:
                    outcome.error = outcome.data[:200].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            run.outcomes.append(outcome)


def client_jobs(server: Server, run: ModeRun, pictures: list[tuple[str, bytes]], mine: list[int],
                barrier: threading.Barrier, deadline: float) -> None:
    outcomes = [Outcome(i) for i in mine]
    with Client(server) as client:
        barrier.wait()
        started = time.perf_counter()
        try:
            body, ctype = multipart([("files", f"{k}_{pictures[i][0]}", pictures[i][1])
                                     for k, i in enumerate(mine)], {"format": "png"})
            status, _, answer = send(client, run, "POST", "/api/jobs", body, {"Content-Type": ctype},
                                     deadline)
            if status != 202:
                raise RuntimeError(f"POST /api/jobs: {status} {answer[:200]!r}")
            job = json.loads(answer)
            while job["state"] in ("queued", "running"):
                if time.monotonic() > deadline:
                    raise RuntimeError("deadline")
                time.sleep(0.2)
                status, _, answer = send(client, run, "GET", f"/api/jobs/{job['id']}")
                if status != 200:
                    raise RuntimeError(f"GET job: {status} {answer[:200]!r}")
                job = json.loads(answer)
            status, _, archive = send(client, run, "GET", f"/api/jobs/{job['id']}/result")
            if status != 200:
                raise RuntimeError(f"GET result: {status} {archive[:200]!r}")
            run.latencies.append(time.perf_counter() - started)
            with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                names = zf.namelist()
                for k, outcome in enumerate(outcomes):  # the zip keeps the upload order
                    outcome.status = 200
                    outcome.data = zf.read(names[k]) if k < len(names) else b""
        except Exception as exc:  # reported per picture
            for outcome in outcomes:
                outcome.error = outcome.error or f"{type(exc).__name__}: {exc}"
    run.outcomes.extend(outcomes)


class Stalled:
    """`count` uploads that send their headers and a few bytes, then nothing (slow-loris), from
    four loopback addresses, held open while a mode runs. They must take no place in the queue
    (the real clients get no 429 from them) and the server cuts each off (408) after its
    --upload-timeout."""

    def __init__(self, server: Server, count: int) -> None:
        self.sockets = []
        self.opened = time.monotonic()
        for i in range(count):
            s = socket.create_connection((server.host, server.port), timeout=120,
                                         source_address=(f"127.0.0.{10 + i % 4}", 0))
            s.sendall((f"POST /api/jobs HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                       "Content-Type: multipart/form-data; boundary=stall\r\nContent-Length: 1000000"
                       "\r\n\r\n--stall\r\n").encode())
            self.sockets.append(s)

    def answers(self) -> dict[str, int]:
        """How each stalled upload ended, e.g. {'408': 34}."""
        ends: dict[str, int] = {}
        for s in self.sockets:
            try:
                first = s.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
                key = first.split(" ")[1] if first.startswith("HTTP/") else "closed"
            except OSError as exc:
                key = type(exc).__name__
            finally:
                s.close()
            ends[key] = ends.get(key, 0) + 1
        return ends


def run_mode(mode: str, server: Server, pictures: list[tuple[str, bytes]], clients: int, per_client: int,
             deadline: float, round_no: int, stalled: int = 0) -> ModeRun:
    images = images_module()
    run = ModeRun(mode, round_no)
    stall = Stalled(server, stalled) if stalled else None
    target = client_anonymize if mode == "anonymize" else client_jobs
    barrier = threading.Barrier(clients + 1)
    threads = []
    for c in range(clients):
        mine = list(range(c * per_client, (c + 1) * per_client))
        threads.append(threading.Thread(target=target, args=(server, run, pictures, mine, barrier, deadline),
                                        daemon=True))
    for t in threads:
        t.start()
    run.rss_before = server.status("VmRSS")
    meter = images.CpuMeter()
    cpu0 = server.cpu_seconds()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 60))
    t1 = time.perf_counter()
    run.seconds = t1 - t0
    others = meter.others_share()
    if others is not None:  # the server is not this process: take its CPU out as well
        server_share = (server.cpu_seconds() - cpu0) / (run.seconds * (os.cpu_count() or 1))
        run.others_cpu = max(0.0, others - server_share)
    time.sleep(0.3)
    run.peak_rss = server.peak_between(t0, time.perf_counter())
    run.rss_after = server.status("VmRSS")
    run.outcomes.sort(key=lambda o: o.picture)
    if stall is not None:
        run.stalled = stall.answers()
        run.stalled_seconds = time.monotonic() - stall.opened
    return run


# ------------------------------------------------------------------------------------ checks


@dataclass
class Check:
    correct: int = 0
    identical: int = 0  # pixel for pixel what the library makes
    wrong: list[str] = field(default_factory=list)
    faces: int = 0  # counted faces of 32 px and more
    hidden: int = 0


def check(runs: list[ModeRun], pictures: list[tuple[str, bytes]], entries: list[dict]) -> list[Check]:
    import numpy as np

    import faceveil
    from faceveil.evaluation import changed_pixels, face_covered
    from faceveil.media.images import read_image

    threads = max(1, (os.cpu_count() or 1) // 2)  # as each of the server's two workers (default)
    checks = [Check() for _ in runs]
    for i, (name, data) in enumerate(pictures):
        before = read_image(data).rgb
        reference = faceveil.anonymize_image(before, threads=threads)
        boxes = [b for b, ig in zip(entries[i]["boxes"], entries[i].get("ignore") or
                                    [False] * len(entries[i]["boxes"]), strict=True)
                 if not ig and b[3] - b[1] >= 32]
        expected = [face_covered(changed_pixels(before, reference), b) for b in boxes]
        for run, c in zip(runs, checks, strict=True):
            outcome = run.outcomes[i]
            if outcome.error or outcome.status != 200:
                c.wrong.append(f"{name}: {outcome.status} {outcome.error}")
                continue
            try:
                after = read_image(outcome.data).rgb
            except Exception as exc:
                c.wrong.append(f"{name}: answer does not decode: {exc}")
                continue
            if after.shape != before.shape:
                c.wrong.append(f"{name}: {after.shape} instead of {before.shape}")
                continue
            covered = [face_covered(changed_pixels(before, after), b) for b in boxes]
            c.faces += len(boxes)
            c.hidden += sum(covered)
            c.identical += bool(np.array_equal(after, reference))
            if covered == expected:
                c.correct += 1
            else:
                c.wrong.append(f"{name}: hides {sum(covered)} of {len(boxes)} faces, the library "
                               f"{sum(expected)}")
        if (i + 1) % 20 == 0 or i + 1 == len(pictures):
            log(f"  checked {i + 1}/{len(pictures)} pictures")
    return checks


# ------------------------------------------------------------------------------------ report


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rows_of(runs: list[ModeRun], checks: list[Check], per_client: int) -> list[dict[str, Any]]:
    rows = []
    for r, c in zip(runs, checks, strict=True):
        pictures = len(r.outcomes)
        rows.append({
            "mode": r.mode, "round": r.round, "pictures": pictures, "requests": r.requests,
            "seconds": round(r.seconds, 2), "requests_per_s": round(r.requests / r.seconds, 2),
            "pictures_per_s": round(pictures / r.seconds, 2),
            "latency_unit": "picture" if r.mode == "anonymize" else f"job of {per_client}",
            "p50_s": round(percentile(r.latencies, 0.5), 2), "p95_s": round(percentile(r.latencies, 0.95), 2),
            "max_s": round(max(r.latencies, default=float("nan")), 2),
            "retried_429": r.retries_429, "http_5xx": r.server_errors, "correct": c.correct,
            "pixel_identical": c.identical, "wrong": c.wrong, "faces_32px": c.faces, "faces_hidden": c.hidden,
            "rss_before_mb": round(r.rss_before / 2**20), "peak_rss_mb": round(r.peak_rss / 2**20),
            "rss_after_mb": round(r.rss_after / 2**20),
            "others_cpu": None if r.others_cpu is None else round(r.others_cpu, 3),
            "stalled_uploads": r.stalled, "stalled_seconds": round(r.stalled_seconds, 1),
        })
    return rows


def table(rows: list[dict[str, Any]], markdown: bool) -> str:
    header = ["mode", "round", "pictures", "requests", "s", "req/s", "pictures/s",
              "latency p50 / p95 / max (s)", "429 retried", "5xx", "correct", "faces hidden (>= 32 px)",
              "server RSS before / peak / after (MiB)", "others' CPU"]
    body = [[r["mode"], str(r["round"]), str(r["pictures"]), str(r["requests"]), f"{r['seconds']:.1f}",
             f"{r['requests_per_s']:.2f}",
             f"{r['pictures_per_s']:.2f}",
             f"{r['p50_s']:.2f} / {r['p95_s']:.2f} / {r['max_s']:.2f} per {r['latency_unit']}",
             str(r["retried_429"]), str(r["http_5xx"]), f"{r['correct']}/{r['pictures']}",
             f"{r['faces_hidden']}/{r['faces_32px']}",
             f"{r['rss_before_mb']} / {r['peak_rss_mb']} / {r['rss_after_mb']}",
             "-" if r["others_cpu"] is None else f"{r['others_cpu']:.0%}"] for r in rows]
    return images_module().render_table(header, body, markdown, text_columns=2)


def pick_pictures(data: Path, count: int) -> tuple[list[tuple[str, bytes]], list[dict]]:
    meta = json.loads((data / SUBSET).read_text())["images"]
    chosen = []
    for entry in sorted(meta, key=lambda e: e["file"]):
        ignore = entry.get("ignore") or [False] * len(entry["boxes"])
        if any(not ig and b[3] - b[1] >= 32 for b, ig in zip(entry["boxes"], ignore, strict=True)):
            chosen.append(entry)
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise SystemExit(f"error: only {len(chosen)} pictures with faces of 32 px and more; "
                         f"asked for {count}")
    return [(Path(e["file"]).name, (data / "images" / e["file"]).read_bytes()) for e in chosen], chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default %(default)s)")
    p.add_argument("--per-client", type=int, default=5, help="pictures per client (default %(default)s)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of every mode on the same server: does its memory settle? "
                        "(default %(default)s)")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="seconds for each mode at most (default %(default)g)")
    p.add_argument("--max-rss-mb", type=float, default=2048.0,
                   help="fail when the server's peak memory is over this (default %(default)g)")
    p.add_argument("--stalled", type=int, default=0, metavar="N",
                   help="also hold N uploads that send headers and then stall, during each mode "
                        "(default %(default)s); see --server-args '--upload-timeout S'")
    p.add_argument("--server-args", default="", help="extra `faceveil serve` flags, e.g. '--workers 1'")
    p.add_argument("--data", help="the shared data folder (default: $FACEVEIL_DATA or ../shared/data)")
    p.add_argument("--markdown", action="store_true", help="tables in markdown")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(args.modes) <= set(MODES) or not args.modes:
        p.error(f"--modes takes {', '.join(MODES)}")
    if args.clients < 1 or args.per_client < 1 or args.repeat < 1:
        p.error("--clients, --per-client and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    images = images_module()
    data = images.find_data(args.data)
    facts = images.machine_facts()
    pictures, entries = pick_pictures(data, args.clients * args.per_client)
    log(f"{len(pictures)} pictures ({sum(len(d) for _, d in pictures) / 2**20:.1f} MiB), "
        f"{args.clients} clients x {args.per_client}; starting the server")
    server = Server(args.server_args.split())
    runs: list[ModeRun] = []
    try:
        server.wait_ready()
        idle = server.status("VmRSS")
        log(f"server ready on port {server.port}, {idle / 2**20:.0f} MiB resident")
        for round_no, mode in [(k + 1, m) for k in range(args.repeat) for m in args.modes]:
            log(f"[{mode}, round {round_no}] {args.clients} clients x {args.per_client} pictures")
            run = run_mode(mode, server, pictures, args.clients, args.per_client,
                           time.monotonic() + args.deadline, round_no, args.stalled)
            log(f"  {run.seconds:.1f} s, {run.requests} requests, {len(run.latencies)} timed, "
                f"{run.retries_429} x 429, {run.server_errors} x 5xx, peak {run.peak_rss / 2**20:.0f} MiB"
                + (f", stalled uploads ended: {run.stalled}" if args.stalled else ""))
            runs.append(run)
        hwm = server.status("VmHWM")
        facts["loadavg_after_timing"] = [round(v, 2) for v in os.getloadavg()]
    finally:
        code = server.stop()
    log(f"server stopped (exit status {code}); checking the answers against the library")
    checks = check(runs, pictures, entries)
    rows = rows_of(runs, checks, args.per_client)

    bullet = "- " if args.markdown else ""
    settings = "defaults" + (f", {args.server_args}" if args.server_args else "")
    images.print_facts(facts, bullet, f"faceveil serve ({settings})"
                       f", {args.clients} clients x {args.per_client} WIDER FACE pictures, PNG answers")
    print()
    print(table(rows, args.markdown))
    print()
    print(f"{bullet}server peak resident memory (VmHWM, whole run, models included): {hwm / 2**20:.0f} MiB; "
          f"idle after warm-up: {idle / 2**20:.0f} MiB")
    for r in rows:
        print(f"{bullet}{r['mode']}, round {r['round']}: {r['pixel_identical']}/{r['pictures']} answers "
              "pixel-identical to the "
              f"library's output; {len(r['wrong'])} wrong or missing")
        for line in r["wrong"][:10]:
            print(f"    {line}")
    for r in rows:
        if r["stalled_uploads"]:
            print(f"{bullet}{r['mode']}, round {r['round']}: {sum(r['stalled_uploads'].values())} stalled "
                  f"uploads held during the run ended {r['stalled_uploads']} (HTTP status: count) within "
                  f"{r['stalled_seconds']:.0f} s; the clients' 429s: {r['retried_429']}")
    failed = [f"{r['mode']} round {r['round']}" for r in rows if r["wrong"] or r["http_5xx"]
              or set(r["stalled_uploads"]) - {"408"}]
    over = hwm > args.max_rss_mb * 2**20
    verdict = "PASS" if not failed and not over else "FAIL"
    print(f"{bullet}verdict: {verdict} (no 5xx, every answer correct, peak memory under "
          f"{args.max_rss_mb:.0f} MiB)" + (f"; failed: {', '.join(failed)}" if failed else "")
          + (f"; peak memory {hwm / 2**20:.0f} MiB over the limit" if over else ""))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"facts": facts, "results": rows, "peak_rss_mb": hwm / 2**20,
                                               "idle_rss_mb": idle / 2**20, "verdict": verdict}, indent=1))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
