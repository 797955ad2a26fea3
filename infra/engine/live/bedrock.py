"""Bedrock: invocation logging, inference profiles in use, guardrails with cross-Region config."""

from __future__ import annotations

from infra.program.catalog import load_catalog
from infra.engine.live.core import Unit, pages

LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
PROFILE = "aws:bedrock/inferenceProfile:InferenceProfile"
GUARDRAIL = "aws:bedrock/guardrail:Guardrail"
# Geographic and global CRIS prefixes (residency-facts.md §2), plus whatever the catalog knows.
PROFILE_PREFIXES = {"us", "us-gov", "eu", "apac", "jp", "au", "ca", "in", "global"}


def _s3(cfg: dict | None) -> dict | None:
    return {"bucketName": cfg.get("bucketName"), "keyPrefix": cfg.get("keyPrefix")} if cfg else None


def _logging_config(raw: dict) -> dict:
    """The API's LoggingConfig in pulumi-aws's `loggingConfig` shape (cloudWatchConfig -> cloudwatchConfig)."""
    cw = raw.get("cloudWatchConfig")
    return {
        "cloudwatchConfig": {
            "logGroupName": cw.get("logGroupName"), "roleArn": cw.get("roleArn"),
            "largeDataDeliveryS3Config": _s3(cw.get("largeDataDeliveryS3Config")),
        } if cw else None,
        "s3Config": _s3(raw.get("s3Config")),
        **{k: raw.get(k) for k in ("textDataDeliveryEnabled", "imageDataDeliveryEnabled",
                                   "embeddingDataDeliveryEnabled", "videoDataDeliveryEnabled")},
    }


def _is_profile(model_id: str) -> bool:
    if model_id.startswith("arn:"):
        return "inference-profile/" in model_id
    prefixes = PROFILE_PREFIXES | {g.zm_plus.profile_prefix for g in load_catalog().geographies.values() if g.zm_plus}
    return model_id.count(".") >= 2 and model_id.split(".", 1)[0] in prefixes


def scan(unit: Unit) -> None:
    bedrock = unit.client()
    home = unit.region == unit.cfg.region

    with unit.step("model invocation logging"):
        raw = bedrock.get_model_invocation_logging_configuration().get("loggingConfig")
        if raw:
            config = _logging_config(raw)
            for s3 in (config["s3Config"], (config["cloudwatchConfig"] or {}).get("largeDataDeliveryS3Config")):
                if s3 and s3.get("bucketName"):
                    unit.add_bucket(s3["bucketName"])
            unit.add(LOGGING, unit.region, {"loggingConfig": config})
        elif home and unit.cfg.has("zm_plus"):
            # Absence is a finding for a ZM+ stack's home (source) region: record it as a
            # configuration with no destinations so the rules can judge it.
            unit.add(LOGGING, unit.region, {"loggingConfig": None})

    profiles: dict[str, dict] = {}
    with unit.step("application inference profiles"):
        for page in pages(bedrock, "list_inference_profiles", typeEquals="APPLICATION"):
            for p in page["inferenceProfileSummaries"]:
                profiles[p["inferenceProfileArn"]] = p

    with unit.step("inference profiles in use (CloudWatch AWS/Bedrock Invocations)"):
        used = set()
        for page in pages(unit.client("cloudwatch"), "list_metrics", Namespace="AWS/Bedrock", MetricName="Invocations"):
            for metric in page["Metrics"]:
                used |= {d["Value"] for d in metric.get("Dimensions") or [] if d.get("Name") == "ModelId"}
        for model_id in sorted(used):
            if _is_profile(model_id) and not any(model_id in (a, p["inferenceProfileId"]) for a, p in profiles.items()):
                with unit.step(f"inference profile {model_id}"):
                    p = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
                    profiles[p["inferenceProfileArn"]] = p

    for arn, p in sorted(profiles.items()):
        # The API does not say what an application profile was copied from (`modelSource`); its
        # `models` (one foundation-model ARN per destination region) say where it routes.
        unit.add(PROFILE, p["inferenceProfileId"], {
            "name": p.get("inferenceProfileName"), "description": p.get("description"),
        }, outputs={"models": [{"modelArn": m.get("modelArn")} for m in p.get("models") or []],
                    "type": p.get("type"), "status": p.get("status")}, arn=arn)

    guardrails: list[dict] = []
    with unit.step("guardrails"):
        guardrails = [g for page in pages(bedrock, "list_guardrails") for g in page["guardrails"]]
    for g in guardrails:
        with unit.step(f"guardrail {g['id']}"):
            versions = [v["version"] for page in pages(bedrock, "list_guardrails", guardrailIdentifier=g["id"])
                        for v in page["guardrails"]] or ["DRAFT"]
            for version in versions:
                d = bedrock.get_guardrail(guardrailIdentifier=g["id"], guardrailVersion=version)
                cross = d.get("crossRegionDetails") or {}
                arn = d.get("guardrailArn") or g["arn"]
                unit.add(GUARDRAIL, f"{g['id']}:{version}", {
                    "name": d.get("name"), "description": d.get("description"), "kmsKeyArn": d.get("kmsKeyArn"),
                    "crossRegionConfig": {"guardrailProfileIdentifier": cross.get("guardrailProfileArn")
                                          or cross.get("guardrailProfileId")} if cross else None,
                }, outputs={"guardrailArn": arn, "guardrailId": g["id"], "version": version, "status": d.get("status")},
                    arn=arn if version == "DRAFT" else f"{arn}:{version}", name=d.get("name"))
