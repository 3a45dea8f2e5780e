"""Coverage-guided fuzzing (atheris) of what the gateway does with a client's bytes before any
model runs: parsing the AnalyzeRequest / AnalyzeChunk message, converting and validating it,
and probing and decoding its media with PyAV and Pillow.

    .venv/bin/python scripts/fuzz_requests.py -max_total_time=600     # the long run (docs)
    .venv/bin/python scripts/fuzz_requests.py -max_total_time=45      # what `make test` runs

The seeds are made at start, into a temporary corpus: the demo inputs (a video, a WAV, a JPEG;
ours to redistribute), each truncated, with flipped bytes, and wrapped in a request message.
A "crash" is any exception other than the domain errors the gateway turns into a precise status
(InvalidInputError, PayloadTooLargeError: INVALID_ARGUMENT / RESOURCE_EXHAUSTED) or protobuf's
DecodeError (the proxy hook answers INVALID_ARGUMENT for it): anything else would reach the
client as INTERNAL for what is the client's own bad input. A hang is an input that takes longer
than -timeout (default here 20 s). libFuzzer writes the failing input as crash-* / timeout-*
in the working directory and exits non-zero.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "inputs"


def _seeds(folder: Path) -> None:
    from emer_proto import emotion_pb2 as pb

    kinds = {".mp4": pb.MEDIA_KIND_VIDEO, ".wav": pb.MEDIA_KIND_AUDIO, ".jpg": pb.MEDIA_KIND_IMAGE}
    n = 0
    for path in sorted(DEMO.iterdir()):
        if path.suffix not in kinds:
            continue
        data = path.read_bytes()
        flipped = bytearray(data)
        for i in range(64, len(flipped), max(1, len(flipped) // 50)):
            flipped[i] ^= 0x5A
        for media in (data, data[: len(data) // 3], bytes(flipped)):
            request = pb.AnalyzeRequest(
                media=media, media_kind=kinds[path.suffix], subtitle="Oh great, thanks."
            )
            # Mode byte, then the payload (see `one_input`).
            (folder / f"seed-{n}-media").write_bytes(b"\x00" + media)
            (folder / f"seed-{n}-request").write_bytes(b"\x01" + request.SerializeToString())
            n += 1


def one_input(data: bytes) -> None:
    """Mode 0: raw media bytes, probed and decoded under each kind hint. Mode 1: an
    AnalyzeRequest message, converted and validated, its media probed and decoded. Mode 2: an
    AnalyzeChunk message (an upload's piece)."""
    from emer_proto import emotion_pb2 as pb
    from google.protobuf.message import DecodeError

    from services.common.errors import InvalidInputError, PayloadTooLargeError
    from services.gateway.config import GatewayConfig
    from services.gateway.convert import request_from_proto
    from services.gateway.validation import validate
    from services.media.decode import DecodeOptions, MediaKind, decode_media
    from services.media.segments import probe_media

    if not data:
        return
    mode, payload = data[0] % 3, data[1:]
    config = GatewayConfig()
    options = DecodeOptions(max_frames=8, max_duration_s=config.max_duration_s)
    try:
        if mode == 0:
            kind = [None, MediaKind.VIDEO, MediaKind.AUDIO, MediaKind.IMAGE][len(payload) % 4]
            probe_media(payload, kind, options)
            decode_media(payload, kind, options)
        elif mode == 1:
            request = request_from_proto(pb.AnalyzeRequest.FromString(payload), "fuzz")
            validate(request, config)
            if request.media:
                probe_media(request.media, request.media_kind, options)
                decode_media(request.media, request.media_kind, options)
        else:
            chunk = pb.AnalyzeChunk.FromString(payload)
            chunk.HasField("request")
    except (InvalidInputError, PayloadTooLargeError, DecodeError):
        pass


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        import services.gateway.convert
        import services.media.decode  # noqa: F401
    args = list(sys.argv)
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=20")
    if not any(a.startswith("-rss_limit_mb=") for a in args):
        args.append("-rss_limit_mb=4096")
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus folder given
        corpus = Path(tempfile.mkdtemp(prefix="emer-fuzz-"))
        _seeds(corpus)
        args.append(str(corpus))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
