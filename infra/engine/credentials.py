"""The AWS session the commands that call AWS (`audit --live`, `seed`) start from."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound

from infra.program.errors import InputError


def aws_session(profile: str | None):
    """A session with credentials, checked before anything is read or written."""
    try:
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
    except ProfileNotFound as exc:
        origin = "--profile" if profile else "AWS_PROFILE"
        raise InputError(f"{origin}: {exc}") from exc
    except BotoCoreError as exc:  # broken shared config, expired SSO token, ...
        raise InputError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise InputError("no AWS credentials found (environment, --profile, shared config, SSO or instance role)")
    return session
