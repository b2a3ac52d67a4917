"""The rating fit flags shared by ``rank``, ``tournament`` and ``place`` (one definition, one parser)."""

from __future__ import annotations

import argparse

from qlora_eval.config import RatingConfig, parse_rating
from qlora_eval.rating.fit_options import FitOptions, fit_options


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--elo-intervals``, ``--ties``, ``--prior``, ``--anchor``, ``--position-bias``, ``--control``; unset = None."""
    group = parser.add_argument_group("rating fit")
    group.add_argument(
        "--elo-intervals",
        choices=["orderings", "bootstrap"],
        default=None,
        help="Elo intervals: bootstrap (default: prompts resampled, then replayed) or orderings (order noise only)",
    )
    group.add_argument(
        "--ties", choices=["half", "davidson"], default=None, help="BT ties: half a win each (default) or Davidson"
    )
    group.add_argument(
        "--prior", type=float, default=None, metavar="N", help="BT: N virtual games per pair (default 0; 1 bounds it)"
    )
    group.add_argument(
        "--anchor", default=None, metavar="MODEL=RATING", help="BT: put MODEL at RATING (default: mean 1000)"
    )
    group.add_argument(
        "--position-bias",
        choices=["on", "off"],
        default=None,
        help="BT: fit a first-position advantage (reported in Elo points; ratings free of it; default off)",
    )
    group.add_argument(
        "--control",
        default=None,
        metavar="length[,markdown]",
        help="BT: style control; controlled ratings and coefficients beside the raw ones (needs stored answers)",
    )


def fit_from_args(args: argparse.Namespace, base: FitOptions | None = None) -> FitOptions:
    """FitOptions from the flags; a flag left unset keeps ``base``'s value (a tournament's YAML) or the default."""
    base = base or FitOptions()
    return fit_options(
        elo_intervals=args.elo_intervals if args.elo_intervals is not None else base.elo_intervals.value,
        ties=args.ties if args.ties is not None else base.ties,
        prior=args.prior if args.prior is not None else base.prior,
        anchor=args.anchor if args.anchor is not None else _anchor_text(base),
        position_bias=args.position_bias if args.position_bias is not None else base.position_bias,
        control=args.control if args.control is not None else [c.value for c in base.controls],
    )


def rating_config_from_args(args: argparse.Namespace, base: RatingConfig) -> RatingConfig | None:
    """A tournament's ``rating:`` settings with the fit flags on top; None when no fit flag is given."""
    flags = {
        "elo_intervals": args.elo_intervals,
        "ties": args.ties,
        "prior": args.prior,
        "anchor": args.anchor,
        "position_bias": args.position_bias,
        "control": args.control,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return None
    merged = {
        "elo_intervals": base.elo_intervals,
        "ties": base.ties,
        "prior": base.prior,
        "anchor": base.anchor,
        "position_bias": base.position_bias,
        "control": list(base.control),
        **given,
    }
    return parse_rating(merged, "the command line")


def _anchor_text(options: FitOptions) -> str | None:
    return f"{options.anchor[0]}={options.anchor[1]}" if options.anchor is not None else None


def fit_command_parts(args: argparse.Namespace) -> list[str]:
    """The fit flags as typed (for the recorded command line)."""
    parts: list[str] = []
    for name in ("elo_intervals", "ties", "prior", "anchor", "position_bias", "control"):
        value = getattr(args, name)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", str(value)]
    return parts
