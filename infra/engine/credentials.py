"""The AWS session the commands that call AWS (`audit --live`, `seed`) start from."""

from __future__ import annotations

import functools

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import BotoCoreError, ProfileNotFound

from infra.program.errors import InputError


@functools.cache
def model_loader(data_path: str | None):
    """One botocore data loader per data path (AWS_DATA_PATH, or the profile's `data_path`) for the
    process: every session below with that path shares the service models it has parsed. A fresh
    session parses each model again (tens of ms per service), once per account of an organization
    scan, and once per command where a process runs several."""
    return botocore.loaders.create_loader(data_path)


def session_sharing_models(**kwargs) -> boto3.Session:
    """A boto3 session (kwargs as boto3.Session's) whose service models come from model_loader().

    The loader is chosen as botocore chooses its own (Session._register_data_loader): from the
    `data_path` config variable, read once the session knows its profile, so a named profile's
    data_path counts and an unrelated AWS_PROFILE does not."""
    core = botocore.session.Session(profile=kwargs.get("profile_name"))
    core.lazy_register_component("data_loader", lambda: model_loader(core.get_config_variable("data_path")))
    session = boto3.Session(botocore_session=core, **kwargs)
    paths = core.get_component("data_loader").search_paths  # boto3 adds its data directory per session
    paths[:] = dict.fromkeys(paths)  # keep one
    return session


def aws_session(profile: str | None):
    """A session with credentials, checked before anything is read or written."""
    try:
        session = session_sharing_models(profile_name=profile)
        credentials = session.get_credentials()
    except ProfileNotFound as exc:
        origin = "--profile" if profile else "AWS_PROFILE"
        raise InputError(f"{origin}: {exc}") from exc
    except BotoCoreError as exc:  # broken shared config, expired SSO token, ...
        raise InputError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise InputError("no AWS credentials found (environment, --profile, shared config, SSO or instance role)")
    return session
