"""The ``expportrait`` console script. Each subcommand lives in ``expportrait/commands/<name>.py``
and defines ``add_arguments(parser)`` and ``run(args) -> int``; its one-line help is ``SHORT_HELP``
here. Modules are imported only when their command runs, so ``expportrait --help`` stays fast."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

# command name -> module under expportrait.commands (ordered as shown in --help)
COMMANDS = {
    "demo": "demo",
    "reenact": "reenact",
    "track": "track",
    "render": "render",
    "transfer": "transfer",
    "train-transfer": "train_transfer",
    "prepare": "prepare",
    "train-vae": "train_vae",
    "train-generator": "train_generator",
    "evaluate": "evaluate",
    "assets": "assets",
    "media": "media",
    "faces": "faces",
    "app": "app",
    "live": "live",
}

# command name -> its one-line help (--help's list and the command's description); the one source
SHORT_HELP = {
    "demo": "embedded default: astronaut and an unseen person <- carphone, and carphone self reenactment",
    "reenact": "reenact a source portrait (image or video) with a driving video",
    "track": "fit the personalized head to a video or image (writes fit.safetensors)",
    "render": "render a fit's personalized head normal maps from a new view",
    "transfer": "identity-adaptive expression + pose transfer between two fits",
    "train-transfer": "train the expression transfer network (E, G) on fits",
    "prepare": "prepare a training dataset (track, crop, render conditions) from videos",
    "train-vae": "train the small Wan VAE of a preset (demo) on prepared clips",
    "train-generator": "train the conditioned Wan DiT generator (accelerate)",
    "evaluate": "PSNR/SSIM/L1/LPIPS/CSIM/AED/APD metrics of a generated video",
    "assets": "build or check the embedded head-model assets",
    "media": "list or fetch the multi-identity registry media (sample:NAME)",
    "faces": "list the faces in a photo or video frame, numbered for --face-index (writes a picture)",
    "app": "web app (Gradio): upload a source and a driving video, reenact, download",
    "live": "drive a portrait live from a webcam (or a video read frame by frame): window or recording",
}


def _available() -> dict[str, str]:
    return {name: mod for name, mod in COMMANDS.items()
            if importlib.util.find_spec(f"expportrait.commands.{mod}") is not None}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expportrait", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _available().items():
        p = sub.add_parser(name, help=SHORT_HELP.get(name, ""), description=SHORT_HELP.get(name))
        if load is None or load == name:
            module = importlib.import_module(f"expportrait.commands.{mod}")
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def _version() -> str:
    from expportrait import __version__
    return f"expportrait {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        parser.print_help()
        return 0 if not argv else 2
    from expportrait.errors import UserError
    try:
        return int(args._module.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
