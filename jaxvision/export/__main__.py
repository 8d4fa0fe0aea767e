"""`python -m jaxvision.export --workdir W --out DIR [--format stablehlo|savedmodel] [--batch N]
[--platforms cpu,cuda,tpu]` (installed: `jaxvision-export`): see jaxvision.export."""

from __future__ import annotations

import sys

from jaxvision.export import FORMATS, PLATFORMS, export_run


def main(argv=None) -> None:
    from absl import flags

    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "the training run to export", flag_values=fv)
    flags.DEFINE_string("out", None, "output folder", flag_values=fv)
    flags.DEFINE_string("format", "stablehlo", f"one of {FORMATS}", flag_values=fv)
    flags.DEFINE_integer("batch", None, "a fixed batch size (default: symbolic)", flag_values=fv)
    flags.DEFINE_list("platforms", list(PLATFORMS), "platforms the artifact runs on",
                      flag_values=fv)
    argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print(f"{__doc__.strip()}\n\n{fv.get_help()}")
        sys.exit(0)
    try:
        fv(argv)
    except flags.Error as error:
        sys.exit(f"export: bad flag: {error}")
    if not fv.workdir or not fv.out:
        sys.exit("export: --workdir and --out are required")
    try:
        out = export_run(fv.workdir, fv.out, format=fv.format, batch=fv.batch,
                         platforms=tuple(fv.platforms))
    except ValueError as error:
        sys.exit(f"export: {error}")
    print(f"wrote {out}")


def cli() -> None:
    """Entry point of `jaxvision-export` and `python -m jaxvision.export`."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every file at INFO
    main()


if __name__ == "__main__":
    cli()
