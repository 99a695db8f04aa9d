"""``talent enroll | name | merge | talents | forget``: the registry from the command line.

Each accepts ``--out DIR`` for the local layout of ``talent process --out DIR`` (successive
calls with one folder share one registry); without it, the configured bucket's warehouse
(or the running local stack's). Changes are recorded in ``talent_events`` with the user's
name as the actor.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from talent_assets.apps.cli_errors import CliError


def add_talent_commands(commands: Any) -> None:
    """Register the registry's subcommands on the ``talent`` parser."""
    out_help = "the folder of `talent process --out DIR` (default: the configured bucket)"
    enroll = commands.add_parser("enroll", help="name a talent from photos of one person")
    enroll.add_argument("name", help="the talent's name")
    enroll.add_argument("photos", nargs="+", type=Path, help="photos with one clear face each")
    enroll.set_defaults(func=_cmd_enroll)
    name = commands.add_parser("name", help="name (or rename) a talent")
    name.add_argument("talent_id")
    name.add_argument("name")
    name.set_defaults(func=_cmd_name)
    merge = commands.add_parser("merge", help="merge the second talent into the first")
    merge.add_argument("talent_id")
    merge.add_argument("other_talent_id")
    merge.set_defaults(func=_cmd_merge)
    talents = commands.add_parser("talents", help="list the talents: id, name, videos, time")
    talents.add_argument("--json", action="store_true", help="print JSON")
    talents.set_defaults(func=_cmd_talents)
    forget = commands.add_parser(
        "forget", help="erase a talent's faces, frames, rows and embeddings everywhere"
    )
    forget.add_argument("talent_id")
    forget.set_defaults(func=_cmd_forget)
    for command in (enroll, name, merge, talents, forget):
        command.add_argument("--out", type=Path, help=out_help)


def _registry(args: argparse.Namespace) -> Any:
    from talent_assets.devstack.stack import use_running_stack
    from talent_assets.infra.curation import Registry
    from talent_assets.infra.settings import Settings

    if args.out is None:
        use_running_stack()
    elif not (args.out / "warehouse").is_dir() and args.func is not _cmd_enroll:
        raise CliError(f"no talent registry in {args.out} (run `talent process --out` first)")
    return Registry.for_settings(Settings.from_env(), args.out)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _curation(call: Any, *args: Any) -> Any:
    from talent_assets.infra.curation import CurationError
    from talent_assets.infra.enrolment import EnrolmentError
    from talent_assets.infra.registry_lock import RegistryBusyError, RegistryLeaseLostError

    try:
        return call(*args)
    except (CurationError, EnrolmentError, RegistryBusyError, RegistryLeaseLostError) as err:
        raise CliError(str(err)) from None


def _cmd_enroll(args: argparse.Namespace) -> int:
    from talent_assets.infra.curation import enrol_talent
    from talent_assets.infra.enrolment import photo_face
    from talent_assets.infra.settings import Settings

    registry = _registry(args)
    pack = Settings.from_env().model_pack
    faces = []
    for photo in args.photos:
        if not photo.is_file():
            raise CliError(f"no such file: {photo}")
        faces.append(_curation(photo_face, photo.name, photo.read_bytes(), pack))
    talent_id = _curation(enrol_talent, registry, args.name, faces, _actor())
    print(f"{talent_id}  {' '.join(args.name.split())}")
    return 0


def _cmd_name(args: argparse.Namespace) -> int:
    from talent_assets.infra.curation import name_talent

    talent_id = _curation(name_talent, _registry(args), args.talent_id, args.name, _actor())
    print(f"{talent_id}  {' '.join(args.name.split())}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from talent_assets.infra.curation import merge_talents

    kept = _curation(merge_talents, _registry(args), args.talent_id, args.other_talent_id, _actor())
    print(f"merged {args.other_talent_id} into {kept}")
    return 0


def _cmd_talents(args: argparse.Namespace) -> int:
    from talent_assets.infra.curation import list_talents, talent_summary

    talents = _curation(list_talents, _registry(args))
    if args.json:
        print(json.dumps([talent_summary(t) for t in talents], indent=2))
        return 0
    print(f"{'talent':<8}  {'name':<24}  {'videos':>6}  {'screen (s)':>10}")
    for t in talents:
        print(
            f"{t['talent_id']:<8}  {(t['name'] or '-')[:24]:<24}  {len(t['videos']):>6}  "
            f"{t['screen_time_s']:>10.1f}"
        )
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    from talent_assets.infra.curation import forget_talent

    forgotten, erased = _curation(forget_talent, _registry(args), args.talent_id, _actor())
    people = sum(e.people for e in erased)
    files = sum(e.files for e in erased)
    print(
        f"forgot {forgotten}: {people} people in {len(erased)} videos, {files} images "
        f"deleted, hidden in {sum(e.frames_hidden for e in erased)} other frames"
    )
    return 0
