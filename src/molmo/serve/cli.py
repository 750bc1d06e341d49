"""`molmo serve` on the command line: its options (each with help and default, numbers checked at parse time),
then the port bound before the model loads, so a taken or forbidden port fails in one line and "serving on"
is printed only once the server holds its socket. The app itself is `molmo.serve.server`.

    molmo serve --port 8000
    molmo serve --model allenai/Molmo-7B-D-0924 --device cuda --served-model-name molmo
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import replace

from molmo.cli_args import add_device_arguments, non_negative_float, port, positive_float, positive_int
from molmo.serve.settings import ServerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServerSettings()
    parser.add_argument("--model", default=None,
                        help="checkpoint folder or Hub id, e.g. allenai/Molmo-7B-D-0924 (default: the embedded model)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit for a Hub id --model")
    parser.add_argument("--adapter", default=None, help="PEFT LoRA adapter folder or Hub id to apply to --model")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface; then set --api-key)")
    parser.add_argument("--port", type=port, default=8000, help="TCP port to listen on")
    add_device_arguments(parser)
    parser.add_argument("--api-key", default=os.environ.get("MOLMO_API_KEY"),
                        help="require 'Authorization: Bearer KEY' on /v1/* (default: $MOLMO_API_KEY)")
    parser.add_argument("--served-model-name", action="append", default=None, metavar="NAME",
                        help="an id clients may send as 'model' (repeatable; default: the folder name or Hub id)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a Host name served without an API key besides loopback (repeatable; '*': any)")
    parser.add_argument("--allow-remote-images", action="store_true", help="accept http(s) image URLs")
    parser.add_argument("--allow-private-image-hosts", action="store_true",
                        help="with --allow-remote-images, also fetch from loopback / private / link-local addresses")
    parser.add_argument("--skip-checksum", action="store_true", help="load weights without verifying checksums.json")
    parser.add_argument("--scheduler", default=d.scheduler, choices=["continuous", "static"],
                        help="continuous: requests join and leave a running batch at each step; static: batches "
                             "wait for their longest answer")
    parser.add_argument("--max-batch-size", type=positive_int, default=d.max_batch_size,
                        help="requests generated together")
    parser.add_argument("--batch-window-ms", type=non_negative_float, default=d.batch_window_s * 1000,
                        help="how long a static batch waits for more requests")
    parser.add_argument("--max-queue", type=positive_int, default=d.max_queue,
                        help="requests waiting before the server answers 429")
    parser.add_argument("--max-tokens", type=positive_int, default=d.max_tokens, help="the most a request may ask for")
    parser.add_argument("--max-body-mb", type=positive_float, default=d.max_body_bytes / 2**20,
                        help="largest request body, in MiB")
    parser.add_argument("--max-image-pixels", type=positive_int, default=d.max_image_pixels,
                        help="largest image (width x height) a request may send")
    parser.add_argument("--max-pixels-in-flight", type=positive_int, default=d.max_pixels_in_flight,
                        help="decoded image pixels held at once by all requests being pre-processed")
    parser.add_argument("--prep-workers", type=positive_int, default=d.prep_workers, help="pre-processing threads")
    parser.add_argument("--max-crops", type=positive_int, default=None,
                        help="high-resolution crop budget per image (default: the model's)")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(api_key=args.api_key or None, allow_remote_images=args.allow_remote_images,
                          served_model_names=tuple(args.served_model_name or ()),
                          allowed_hosts=tuple(args.allowed_host),
                          allow_private_image_hosts=args.allow_private_image_hosts,
                          max_body_bytes=int(args.max_body_mb * 2**20), max_image_pixels=args.max_image_pixels,
                          max_pixels_in_flight=max(args.max_pixels_in_flight, args.max_image_pixels),
                          max_tokens=args.max_tokens, max_crops=args.max_crops, scheduler=args.scheduler,
                          max_batch_size=args.max_batch_size, batch_window_s=args.batch_window_ms / 1000,
                          max_queue=args.max_queue, prep_workers=args.prep_workers)


def bind(host: str, port_: int) -> socket.socket:
    """A listening socket on host:port, or OSError with the reason (taken, not allowed, unknown host)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port_, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; a listening port stays taken
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"molmo serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    with sock:
        import uvicorn

        from molmo.api import Molmo, ModelNotFoundError
        from molmo.serve.commands import announce
        from molmo.serve.server import create_app

        if args.skip_checksum:
            os.environ["MOLMO_SKIP_CHECKSUM"] = "1"
        try:
            model = Molmo.from_pretrained(args.model, dtype=args.dtype, device=args.device, revision=args.revision,
                                          adapter=args.adapter, quantize=args.quantize)
        except (ModelNotFoundError, ValueError) as e:
            print(f"molmo serve: {e}", file=sys.stderr)
            return 2
        settings = settings_from_args(args)
        if args.served_model_name:  # the aliases replace the default name; the Hub id or folder name stays accepted
            settings = replace(settings, model_name=args.served_model_name[0],
                               served_model_names=tuple(args.served_model_name[1:]) + (model.name,))
        app = create_app(model, settings)
        announce(model, file=sys.stdout)
        print(f"molmo: serving {settings.model_name or model.name!r} on http://{args.host}:{args.port}/ "
              f"(OpenAI API under /v1)", flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0
