"""The `emer` command line: health, analyze, annotate, extract-labels, eval, loadtest (and serve,
where the server is installed)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import grpc
from emer_proto import emotion_pb2 as pb
from google.protobuf.json_format import MessageToDict

from clients.client import EmotionClient
from clients.eval_commands import register as register_eval
from clients.loadtest import register as register_loadtest
from clients.media_requests import media_kind_for, wants_upload
from clients.options import ClientOptions


def _to_dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _client(args: argparse.Namespace) -> EmotionClient:
    return EmotionClient(ClientOptions.from_env(args.address, args.timeout))


# --- serve ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """`emer serve ARGS` = `emer-serve ARGS`, where the server is installed."""
    try:
        from services.serve_command import main as serve_main
    except ImportError:
        print(
            "emer serve: the server is not installed here (this is the client distribution); "
            "install the server package (`make setup` in a checkout) and run emer-serve",
            file=sys.stderr,
        )
        return 2
    return serve_main(args.serve_args)


# --- health -----------------------------------------------------------------------------------


def cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        ok = client.health(timeout_s=args.timeout or 10.0)
    print("SERVING" if ok else "NOT_SERVING")
    return 0 if ok else 1


# --- analyze ----------------------------------------------------------------------------------


def _build_request(
    path: str | None, subtitle: str, request_id: str = "", segment_s: float = 0.0
) -> pb.AnalyzeRequest:
    media = Path(path).read_bytes() if path else b""
    kind = media_kind_for(path) if path else pb.MEDIA_KIND_UNSPECIFIED
    options = pb.AnalyzeOptions(segment_s=segment_s) if segment_s else None
    return EmotionClient.request(
        media, media_kind=kind, subtitle=subtitle, request_id=request_id, options=options
    )


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


def segment_line(seg: pb.Segment, top: int = 3) -> str:
    """One line per segment of a long clip: time range, basic category, top labels."""
    labels = ", ".join(f"{lab.word} ({lab.confidence:.2f})" for lab in list(seg.labels)[:top])
    category = seg.basic_category or "-"
    line = f"{_clock(seg.start_s):>6}-{_clock(seg.end_s):<6} {category:<9} {labels or '-'}"
    if seg.warnings:
        line += f"   [{len(seg.warnings)} warning{'s' if len(seg.warnings) > 1 else ''}]"
    return line


def _print_human(resp: pb.AnalyzeResponse) -> None:
    print(f"request {resp.request_id}  ({resp.media_duration_s:.1f} s of media)")
    for name in ("visual", "audio", "text"):
        clue = getattr(resp.clues, name)
        if clue.available:
            top = sorted(clue.emotion_scores.items(), key=lambda kv: -kv[1])[:2]
            scores = ", ".join(f"{k} {v:.2f}" for k, v in top)
            print(f"[{name}] {' '.join(clue.description)}  ({scores})")
        else:
            print(f"[{name}] unavailable: {clue.unavailable_reason}")
    if resp.transcript.text:
        print(f"[transcript, {resp.transcript.source}] {resp.transcript.text}")
    print(f"\nExplanation: {resp.explanation}\n")
    labels = ", ".join(f"{lab.word} ({lab.confidence:.2f})" for lab in resp.labels)
    print(
        f"Labels: {labels}   basic: {resp.basic_category}   "
        f"valence {resp.valence:+.2f} arousal {resp.arousal:+.2f}"
    )
    if resp.timeline:
        print(f"\nTimeline ({len(resp.timeline)} segments):")
        for seg in resp.timeline:
            print("  " + segment_line(seg))
    timings = " ".join(f"{t.stage}={t.ms:.0f}ms" for t in resp.timings)
    print(f"Timings: {timings}")
    for w in resp.warnings:
        print(f"warning: {w}")


def cmd_analyze(args: argparse.Namespace) -> int:
    if not args.file and not args.subtitle:
        print("emer analyze: give a media FILE and/or --subtitle TEXT", file=sys.stderr)
        return 2
    try:
        request = _build_request(args.file, args.subtitle or "", segment_s=args.segment_s)
    except OSError as e:
        print(f"emer analyze: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    with _client(args) as client:
        try:
            upload = wants_upload(request)  # large media go up in pieces
            if args.stream:
                events = (
                    client.analyze_upload_stream(request)
                    if upload
                    else client.analyze_stream(request)
                )
                for event in events:
                    if args.json:
                        print(json.dumps(_to_dict(event)), flush=True)
                    else:
                        _print_event(event)
            else:
                resp = client.analyze_upload(request) if upload else client.analyze(request)
                if args.json:
                    print(json.dumps(_to_dict(resp), indent=2))
                else:
                    _print_human(resp)
        except grpc.RpcError as e:
            print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    return 0


def _print_event(event: pb.AnalyzeEvent) -> None:
    kind = event.WhichOneof("event")
    if kind == "clue":
        c = event.clue
        name = pb.Modality.Name(c.modality).removeprefix("MODALITY_").lower()
        text = " ".join(c.description) if c.available else f"unavailable: {c.unavailable_reason}"
        print(f"[{name}] {text}", flush=True)
    elif kind == "transcript":
        print(f"[transcript] {event.transcript.text}", flush=True)
    elif kind == "explanation_delta":
        print(event.explanation_delta.text, end="", flush=True)
    elif kind == "labels":
        print("\nLabels: " + ", ".join(lab.word for lab in event.labels.labels), flush=True)
    elif kind == "segment":
        print(f"[segment {event.segment.index}] {segment_line(event.segment)}", flush=True)
    elif kind == "summary":
        print(f"done: {event.summary.request_id}", flush=True)


# --- annotate ---------------------------------------------------------------------------------


def _done_ids(out: Path, retry_errors: bool) -> set[str]:
    """Ids already answered in `out`. A torn last line (interrupted write) is cut off."""
    if not out.exists():
        return set()
    raw = out.read_bytes()
    if raw and not raw.endswith(b"\n"):
        keep = raw.rfind(b"\n") + 1
        with out.open("r+b") as f:
            f.truncate(keep)
        raw = raw[:keep]
    done = set()
    for line in raw.decode("utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "id" in item and not (retry_errors and "error" in item):
            done.add(str(item["id"]))
    return done


def _read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"id", "media", "subtitle"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"manifest {path} lacks column(s): {', '.join(sorted(missing))}")
        rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"manifest {path} has duplicate ids")
    return rows


def _annotate_one(client: EmotionClient, row: dict[str, str], base: Path) -> dict[str, Any]:
    item_id = row["id"]
    media_path = (base / row["media"]) if row["media"] else None
    try:
        request = _build_request(str(media_path) if media_path else None, row["subtitle"], item_id)
    except OSError as e:
        return {
            "id": item_id,
            "error": {"code": "NOT_FOUND", "message": f"{row['media']}: {e.strerror}"},
        }
    if not request.media and not request.subtitle:
        return {
            "id": item_id,
            "error": {"code": "INVALID_ARGUMENT", "message": "no media and no subtitle"},
        }
    try:
        resp = client.analyze_upload(request) if wants_upload(request) else client.analyze(request)
        return {"id": item_id, **_to_dict(resp)}
    except grpc.RpcError as e:
        return {"id": item_id, "error": {"code": e.code().name, "message": e.details()}}


def cmd_annotate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    manifest, out = Path(args.manifest), Path(args.out)
    try:
        rows = _read_manifest(manifest)
    except (OSError, ValueError) as e:
        print(f"emer annotate: {e}", file=sys.stderr)
        return 2
    done = _done_ids(out, args.retry_errors)
    todo = [r for r in rows if r["id"] not in done]
    if args.retry_errors and out.exists():
        # Drop the error lines we are about to retry so each id appears once.
        keep = [
            ln
            for ln in out.read_text().splitlines(keepends=True)
            if json.loads(ln).get("id") in done
        ]
        out.write_text("".join(keep))
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = 0
    lock = threading.Lock()
    stop = threading.Event()
    with (
        _client(args) as client,
        out.open("a", encoding="utf-8") as sink,
        tqdm(
            total=len(rows), initial=len(rows) - len(todo), unit="item", disable=args.quiet
        ) as bar,
        ThreadPoolExecutor(max_workers=args.concurrency) as pool,
    ):
        pending: set[Future[dict[str, Any]]] = set()
        queue: Iterable[dict[str, str]] = iter(todo)
        try:
            for row in queue:
                if stop.is_set():
                    break
                pending.add(pool.submit(_annotate_one, client, row, manifest.parent))
                if len(pending) >= args.concurrency * 2:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    errors += _write(finished, sink, lock, bar)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                errors += _write(finished, sink, lock, bar)
        except KeyboardInterrupt:
            # Keep every answer that already arrived; the rest is retried on the next run.
            stop.set()
            for fut in pending:
                fut.cancel()
            finished = {f for f in pending if f.done() and not f.cancelled()}
            _write(finished, sink, lock, bar)
            print(
                f"\ninterrupted: answers so far are in {out}; run again to resume", file=sys.stderr
            )
            return 130
    print(f"annotated {len(todo)} item(s) into {out}; {errors} error(s)", file=sys.stderr)
    return 1 if errors else 0


def _write(finished: set[Future[dict[str, Any]]], sink: Any, lock: threading.Lock, bar: Any) -> int:
    errors = 0
    for fut in finished:
        item = fut.result()
        errors += "error" in item
        with lock:
            # One write per line, flushed: an interruption never leaves half a record behind
            # (and a torn last line is cut off on resume).
            sink.write(json.dumps(item, ensure_ascii=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        bar.update(1)
    return errors


# --- extract-labels ---------------------------------------------------------------------------


def cmd_extract_labels(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        with open(args.input, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"name", args.column} <= set(reader.fieldnames or []):
                raise ValueError(f"{args.input} needs the columns name and {args.column}")
            rows = [(r["name"], r[args.column] or "") for r in reader]
    except (OSError, ValueError) as e:
        print(f"emer extract-labels: {e}", file=sys.stderr)
        return 2
    # The EMER description files name their columns by language; any other column is sent
    # with an empty language, which the server detects from the script.
    language = {"english": "en", "chinese": "zh"}.get(args.column.lower(), "")
    results: dict[str, list[str]] = {}
    failures: list[str] = []

    def one(row: tuple[str, str]) -> tuple[str, list[str] | str]:
        name, text = row
        if not text.strip():
            return name, []
        try:
            resp = client.extract_labels(text, request_id=name, language=language)
        except grpc.RpcError as e:
            return name, f"{e.code().name}: {e.details()}"
        return name, [lab.word for lab in resp.labels]

    with _client(args) as client, ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for name, out in tqdm(pool.map(one, rows), total=len(rows), unit="row", disable=args.quiet):
            if isinstance(out, str):
                failures.append(f"{name}: {out}")
            else:
                results[name] = out
    with open(args.output, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "openset"])
        for name, _ in rows:
            if name in results:
                # Written like the EMER gold files: a Python list literal.
                writer.writerow([name, str(results[name])])
    for line in failures:
        print(f"failed: {line}", file=sys.stderr)
    print(f"wrote {len(results)} row(s) to {args.output}; {len(failures)} failed", file=sys.stderr)
    return 1 if failures else 0


# --- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emer", description="emer-serve command line")
    parser.add_argument(
        "--address", help="server address (default $EMER_ADDRESS or 127.0.0.1:50051)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="deadline per call in seconds")
    sub = parser.add_subparsers(dest="command", required=True)

    # Its arguments (and --help) go to emer-serve as they are (see `main`).
    p = sub.add_parser(
        "serve", help="start the server (full install only): emer-serve", add_help=False
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("health", help="exit 0 only when the service is SERVING")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("analyze", help="analyse one media file and/or subtitle")
    p.add_argument("file", nargs="?", help="video, audio or image file")
    p.add_argument("--subtitle", default="", help="what the person says")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    p.add_argument("--stream", action="store_true", help="stream events as they are ready")
    p.add_argument(
        "--segment-s",
        type=float,
        default=0.0,
        help="segment length in seconds for long media (0 = the server's default)",
    )
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("annotate", help="analyse every row of a manifest CSV (id,media,subtitle)")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="JSON lines output; resumable")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--retry-errors", action="store_true", help="retry ids that ended in an error")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_annotate)
    p = sub.add_parser("extract-labels", help="labels for each description in a CSV")
    p.add_argument("--input", required=True, help="CSV with columns name and --column")
    p.add_argument(
        "--column",
        default="english",
        help="the description column: english (default) or chinese (sent as language zh; "
        "the labels are English wheel words either way); other names: language detected",
    )
    p.add_argument("--output", required=True, help="CSV with columns name,openset")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract_labels)

    register_eval(sub)
    register_loadtest(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        args.serve_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if getattr(args, "concurrency", 1) < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
