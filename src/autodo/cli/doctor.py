"""`autodo doctor`: which sandbox confines agent commands here and why, and where autodo keeps its state."""

from __future__ import annotations

import os
import stat
import sys

import click
import sqlalchemy as sa
from pydantic import BaseModel

from autodo.agents.profiles import load_profiles

# app.py imports this module at its end, after defining these (the package always loads app first).
from autodo.cli.app import emit_json, reports_errors
from autodo.config import Settings
from autodo.errors import AutodoError
from autodo.policy.sandbox import Probe, SandboxMode, SandboxUnavailable, probe


class TierReport(BaseModel):
    tier: str
    available: bool
    reason: str


class ProfileSandbox(BaseModel):
    profile: str
    sandbox: str
    outcome: str  # the tier it gets and why, or why its tools are refused
    refused: bool


class HomeReport(BaseModel):
    path: str
    exists: bool
    mode: str | None
    owner_uid: int | None
    private: bool  # nobody but the owner can enter it: the database and the API token live here


class DoctorReport(BaseModel):
    """Everything `autodo doctor` prints."""

    sandbox_auto: str
    tiers: list[TierReport]
    profiles: list[ProfileSandbox]
    bwrap_path: str | None
    bwrap_version: str | None
    user_namespaces: str
    landlock_abi: int
    seccomp: str
    git_read_only_without_bwrap: bool
    process_cap: str
    running_as: str
    store_url: str
    home: HomeReport
    profiles_error: str | None = None
    ok: bool


def diagnose(settings: Settings) -> DoctorReport:
    """Probe the sandbox tiers and look at the home directory and the profiles."""
    found = probe()
    profiles, profiles_error = _profile_sandboxes(settings, found)
    home = _home(settings)
    return DoctorReport(
        sandbox_auto=found.explain("auto"),
        tiers=[TierReport(tier=s.tier, available=s.available, reason=s.reason) for s in (found.bwrap, found.landlock)],
        profiles=profiles,
        bwrap_path=found.bwrap_path,
        bwrap_version=found.bwrap_version,
        user_namespaces=found.user_namespaces,
        landlock_abi=found.landlock_abi,
        seccomp=found.seccomp,
        git_read_only_without_bwrap=found.git_read_only_without_bwrap,
        process_cap=found.process_cap,
        running_as=found.running_as,
        store_url=sa.make_url(settings.store_url).render_as_string(hide_password=True),
        home=home,
        profiles_error=profiles_error,
        ok=profiles_error is None and not any(p.refused for p in profiles) and (home.private or not home.exists),
    )


def _profile_sandboxes(settings: Settings, found: Probe) -> tuple[list[ProfileSandbox], str | None]:
    try:
        profiles = load_profiles(settings.profiles_path).profile.values()
    except AutodoError as error:
        return [], error.message
    return [_profile_sandbox(p.name, p.sandbox, found) for p in profiles], None


def _profile_sandbox(name: str, mode: SandboxMode, found: Probe) -> ProfileSandbox:
    try:
        found.choose(mode)
    except SandboxUnavailable:
        return ProfileSandbox(profile=name, sandbox=mode, outcome=found.explain(mode), refused=True)
    return ProfileSandbox(profile=name, sandbox=mode, outcome=found.explain(mode), refused=False)


def _home(settings: Settings) -> HomeReport:
    try:
        info = os.stat(settings.home)
    except FileNotFoundError:
        return HomeReport(path=str(settings.home), exists=False, mode=None, owner_uid=None, private=True)
    mode = stat.S_IMODE(info.st_mode)
    return HomeReport(
        path=str(settings.home), exists=True, mode=f"{mode:04o}", owner_uid=info.st_uid, private=not mode & 0o077
    )


def render(report: DoctorReport) -> str:
    """The report as text, most important first."""
    lines = [f'sandbox (profiles with sandbox = "auto"): {report.sandbox_auto}', "", "tiers:"]
    lines += [f"  {t.tier:<9} {'yes' if t.available else 'NO ':<4} {t.reason}" for t in report.tiers]
    lines += ['  none      -    only when a profile says sandbox = "none"; commands then run unconfined', ""]
    lines += ["profiles:"] + [f'  {p.profile}: sandbox = "{p.sandbox}" -> {p.outcome}' for p in report.profiles]
    if report.profiles_error:
        lines.append(f"  cannot read the profiles: {report.profiles_error}")
    lines += [
        "",
        f"bwrap:            {report.bwrap_path or 'not installed'}"
        + (f" ({report.bwrap_version})" if report.bwrap_version else ""),
        f"user namespaces:  {report.user_namespaces}",
        f"Landlock ABI:     {report.landlock_abi or 'not available'}",
        f"seccomp:          {report.seccomp}",
        f"process limit:    {report.process_cap}",
        f"running as:       {report.running_as}",
        "",
        f"store:            {report.store_url}",
        f"home:             {_home_line(report.home)}",
    ]
    return "\n".join(lines)


def _home_line(home: HomeReport) -> str:
    if not home.exists:
        return f"{home.path} (not created yet)"
    line = f"{home.path} (mode {home.mode}, owner uid {home.owner_uid})"
    if not home.private:
        line += f"; WARNING: other users can enter it and may read the database and API token: chmod 700 {home.path}"
    return line


@click.command()
# Its own flag rather than app.json_option: mypy cannot type an unannotated variable across the import cycle.
@click.option("as_json", "--json", is_flag=True, help="Print JSON instead of text.")
@reports_errors
def doctor(as_json: bool) -> None:
    """Check this machine: the sandbox tier agent commands get and why, the store and the home directory."""
    report = diagnose(Settings())
    emit_json(report) if as_json else click.echo(render(report))
    if not report.ok:
        sys.exit(1)
