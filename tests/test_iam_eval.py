"""The small IAM evaluator the Bedrock and SCP tests rely on: its semantics, checked directly."""

from __future__ import annotations

import pytest

from infra.engine.iam_eval import ALLOW, DENY, IMPLICIT_DENY, Unsupported, arn_like, evaluate

FM = "arn:aws:bedrock:eu-west-3::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def test_explicit_deny_wins_over_allow_and_nothing_is_implicit_deny():
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert evaluate(policy(ALLOW_ALL, deny), "s3:GetObject", "arn:aws:s3:::b/k") == DENY
    assert evaluate(policy(ALLOW_ALL, deny), "ec2:RunInstances", "*") == ALLOW
    assert evaluate(policy(), "ec2:RunInstances", "*") == IMPLICIT_DENY


def test_action_and_not_action_are_case_insensitive_wildcards():
    s = {"Effect": "Deny", "NotAction": ["iam:*", "lightsail:Get*"], "Resource": "*"}
    assert evaluate(policy(ALLOW_ALL, s), "IAM:CreateRole", "*") == ALLOW
    assert evaluate(policy(ALLOW_ALL, s), "lightsail:GetRegions", "*") == ALLOW
    assert evaluate(policy(ALLOW_ALL, s), "lightsail:CreateInstances", "*") == DENY


def test_arn_wildcards_do_not_span_components():
    assert arn_like("arn:aws:bedrock:::foundation-model/x", "arn:*:bedrock:::foundation-model/*")
    assert not arn_like(FM, "arn:*:bedrock:::foundation-model/*")
    assert arn_like(FM, "arn:aws:bedrock:*:*:*")
    # The resource part keeps its own colons (model ids end in `:0`).
    assert arn_like(FM, "arn:aws:bedrock:eu-west-3::foundation-model/anthropic.*")
    assert not arn_like(FM, "arn:aws:bedrock:eu-west-1::foundation-model/*")


def test_not_resource():
    s = {"Effect": "Deny", "Action": "bedrock:InvokeModel", "NotResource": "arn:aws:bedrock:eu-*::foundation-model/*"}
    assert evaluate(policy(ALLOW_ALL, s), "bedrock:InvokeModel", FM) == ALLOW
    assert evaluate(policy(ALLOW_ALL, s), "bedrock:InvokeModel", FM.replace("eu-west-3", "us-east-1")) == DENY


def test_missing_key_fails_positive_and_passes_negated_operators():
    eq = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-3"}}}
    neq = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-3"}}}
    assert evaluate(policy(eq), "a:b", "*", {}) == IMPLICIT_DENY
    assert evaluate(policy(eq), "a:b", "*", {"AWS:requestedregion": "eu-west-3"}) == ALLOW  # key names: any case
    assert evaluate(policy(ALLOW_ALL, neq), "a:b", "*", {}) == DENY
    assert evaluate(policy(ALLOW_ALL, neq), "a:b", "*", {"aws:RequestedRegion": "eu-west-3"}) == ALLOW
    if_exists = {**eq, "Condition": {"StringEqualsIfExists": {"aws:RequestedRegion": "eu-west-3"}}}
    assert evaluate(policy(if_exists), "a:b", "*", {}) == ALLOW


def test_values_or_keys_and_null():
    s = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
        "Null": {"bedrock:InferenceProfileArn": "false"},
        "ArnNotLike": {"bedrock:InferenceProfileArn": ["arn:aws:bedrock:*:*:inference-profile/eu.*",
                                                       "arn:aws:bedrock:*:*:inference-profile/x.*"]}}}
    eu = "arn:aws:bedrock:eu-central-1:1:inference-profile/eu.m"
    us = "arn:aws:bedrock:us-east-1:1:inference-profile/us.m"
    assert evaluate(policy(ALLOW_ALL, s), "a:b", "*", {}) == ALLOW  # no profile: Null false fails
    assert evaluate(policy(ALLOW_ALL, s), "a:b", "*", {"bedrock:InferenceProfileArn": eu}) == ALLOW
    assert evaluate(policy(ALLOW_ALL, s), "a:b", "*", {"bedrock:InferenceProfileArn": us}) == DENY


def test_set_qualifiers_any_and_all_values():
    any_a = {"Effect": "Allow", "Action": "*", "Resource": "*",
             "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/a"}}}
    assert evaluate(policy(any_a), "a:b", "*", {"kms:ResourceAliases": ["alias/x", "alias/a"]}) == ALLOW
    assert evaluate(policy(any_a), "a:b", "*", {"kms:ResourceAliases": ["alias/x"]}) == IMPLICIT_DENY
    assert evaluate(policy(any_a), "a:b", "*", {}) == IMPLICIT_DENY  # missing key: ForAnyValue is false
    all_a = {**any_a, "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": "ai-*"}}}
    assert evaluate(policy(all_a), "a:b", "*", {"aws:TagKeys": ["ai-x", "ai-y"]}) == ALLOW
    assert evaluate(policy(all_a), "a:b", "*", {"aws:TagKeys": ["ai-x", "other"]}) == IMPLICIT_DENY
    assert evaluate(policy(all_a), "a:b", "*", {}) == ALLOW  # missing key: ForAllValues is true


def test_unsupported_operators_raise_instead_of_guessing():
    s = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"k": "1"}}}
    with pytest.raises(Unsupported):
        evaluate(policy(s), "a:b", "*", {"k": "0"})
